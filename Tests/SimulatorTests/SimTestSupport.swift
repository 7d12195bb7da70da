import Foundation
import Protocols
import Simulator
import TestSupport

/// An in-process simulator on a free loopback port with manual (virtual-time) physics.
final class ManualSim: @unchecked Sendable {
    let sim: FieldSimulator
    let client: ModbusClient

    init(_ yaml: String, responseTimeout: Duration = .seconds(2)) throws {
        var config = try SimConfig.parse(yaml: yaml, file: "test.yaml")
        config.tcp = SimConfig.Endpoint(host: "127.0.0.1", port: 0)
        config.control = nil
        sim = FieldSimulator(config: config)
        try sim.start(physics: .manual)
        guard let port = sim.tcpPort else { throw SimError("no TCP port") }
        client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: responseTimeout)
    }

    /// A control command's reply as an object.
    func run(_ command: String) -> [String: Any] {
        let line = sim.command(command)
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? ["unparsed": line]
    }

    func get(_ device: String) -> [String: Any] { run("get \(device)") }

    func violations() -> Int { run("stats")["safety_violations"] as? Int ?? -1 }

    deinit { sim.stop() }
}

let referenceUnits = """
tick: 10ms
units:
  1:  {type: ref-luminaire, name: lamp-01, rated_w: 60}
  20: {type: ref-presence, name: pir-01}
  30: {type: ref-bollard, name: bollard-1, travel_up: 200ms, travel_down: 100ms}
  40: {type: ref-signal-io, name: junction, ack_delay: 300ms}
gpio:
  presence-a: input
  bus-detect-north: input
  stopline-north: input
"""

/// Values of an mbpoll run (`[0]: \t100` lines).
func mbpollValues(_ output: String) -> [Int] {
    output.split(separator: "\n").compactMap { line -> Int? in
        guard line.hasPrefix("["), let colon = line.firstIndex(of: ":") else { return nil }
        return Int(line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
}
