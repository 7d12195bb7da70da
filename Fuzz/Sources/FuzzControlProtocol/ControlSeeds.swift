@testable import EdgeAgent
import FuzzSupport

/// Control-socket seeds: the request lines edgectl sends for each verb of CONTRACT.md section 3
/// (encoded by the same encoder), for the targets of examples/agent-sim.yaml, plus sessions of
/// several lines and lines a broken client could send.
enum ControlSeeds {
    static func all() throws -> [Seed] {
        func line(_ verb: String, _ target: String? = nil, _ args: [String: ControlValue] = [:]) -> [UInt8] {
            ControlCoding.encodeLine(ControlRequest(verb: verb, target: target, args: args))
        }
        let requests: [(String, [UInt8])] = [
            ("status", line("status")),
            ("lamp-set", line("lamp.set", "lamp-01", ["level": .number(80), "duration_s": .number(600)])),
            ("group-set", line("lamp.set", "rue-liberte", ["level": .number(0), "duration_s": .number(0.25)])),
            ("lamp-release", line("lamp.release", "lamp-01")),
            ("bollard-raise", line("bollard.raise", "bollard-1")),
            ("bollard-lower", line("bollard.lower", "bollard-1")),
            ("bollard-emergency", line("bollard.emergency-lower", "bollard-1")),
            ("bollard-clear", line("bollard.clear", "bollard-1")),
            ("bollard-hold", line("bollard.hold-down", "bollard-1", ["duration_s": .number(120)])),
            ("priority-request", line("priority.request", "north", ["vehicle": .string("bus-12"), "line": .string("L5"), "eta_s": .number(30)])),
            ("priority-cancel", line("priority.cancel", "north", ["vehicle": .string("bus-12")])),
            ("io-read", line("io.read", "bollard-1")),
            ("io-write", line("io.write", "lamp-01", ["point": .string("setpoint"), "value": .number(55)])),
            ("maintenance", line("maintenance", nil, ["on": .bool(true)])),
            ("ping", line("ping")),
            ("config-reload", line("config.reload")),
            ("debug-hang", line("debug.hang-loop", nil, ["duration_s": .number(1)])),
        ]
        var seeds = requests.map { Seed($0.0, $0.1) }
        seeds.append(Seed("session-maintenance", line("maintenance", nil, ["on": .bool(true)]) + line("io.write", "bollard-1", ["point": .string("motor_up"), "value": .number(1)])
            + line("bollard.raise", "bollard-1") + line("status")))
        seeds.append(Seed("session-override", line("lamp.set", "lamp-02", ["level": .number(100), "duration_s": .number(5)]) + line("priority.request", "north", ["vehicle": .string("v")])
            + line("priority.request", "north", ["vehicle": .string("v")]) + line("io.read", "lamp-02")))
        seeds.append(Seed("unknown-verb", #"{"verb":"bollard.fly","target":"bollard-1"}"# + "\n"))
        seeds.append(Seed("typed-values", #"{"verb":"lamp.set","target":"lamp-01","args":{"level":"80","duration_s":null,"x":[1,true,{"y":-1.5e3}]}}"# + "\r\n"))
        seeds.append(Seed("not-json", "status\n\n{\"verb\":\n"))
        seeds.append(Seed("no-newline", #"{"verb":"status"}"#))
        return seeds
    }
}
