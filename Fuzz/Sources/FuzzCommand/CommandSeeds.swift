import EdgeAgent
import Foundation
import FuzzSupport

/// Command seeds made with the real code: envelopes signed by `CommandSigner` with the fuzz
/// centre key for every contract action (mode byte 0x00), the refusals the contract lists, and
/// raw command JSON in the time formats RFC 3339 allows (mode byte 0x01: the harness signs it).
enum CommandSeeds {
    static func all() throws -> [Seed] {
        let now = Gateway.now
        func command(_ id: String, _ target: String, _ action: String, _ args: [String: ControlValue] = [:],
                     gateway: String = Gateway.id, issued: Double = -5, expires: Double = 60, kid: String = FuzzFixture.centreKeyID) -> CentreCommand {
            CentreCommand(id: id, gateway: gateway, target: target, action: action, args: args,
                          issued: now.addingTimeInterval(issued), expires: now.addingTimeInterval(expires), keyID: kid)
        }
        let commands: [(String, CentreCommand)] = [
            ("set-level", command("c-1", "lamp-01", "set_level", ["level": .number(80), "duration_s": .number(600)])),
            ("group-level", command("c-2", "rue-liberte", "set_level", ["level": .number(0), "duration_s": .number(0.5)])),
            ("release", command("c-3", "lamp-01", "release")),
            ("raise", command("c-4", "bollard-1", "raise")),
            ("lower", command("c-5", "bollard-1", "lower")),
            ("emergency-lower", command("c-6", "bollard-1", "emergency_lower")),
            ("clear-emergency", command("c-7", "bollard-1", "clear_emergency")),
            ("hold-down", command("c-8", "bollard-1", "hold_down", ["duration_s": .number(900)])),
            ("priority-request", command("c-9", "north", "priority_request", ["vehicle": .string("bus-4711"), "line": .string("L5"), "eta_s": .number(42.5)])),
            ("priority-cancel", command("c-10", "north", "priority_cancel", ["vehicle": .string("bus-4711")])),
            ("ping", command("c-11", "gateway", "ping")),
            ("reload", command("c-12", Gateway.id, "reload_config")),
            ("nested-args", command("c-13", "lamp-01", "set_level", ["level": .number(50), "duration_s": .number(1), "x": .array([.null, .bool(true), .object(["k": .string("v")])])])),
            ("wrong-gateway", command("c-14", "gateway", "ping", gateway: "cab-9999")),
            ("expired", command("c-15", "gateway", "ping", issued: -120, expires: -60)),
            ("future", command("c-16", "gateway", "ping", issued: 3600, expires: 7200)),
            ("unknown-kid", command("c-17", "gateway", "ping", kid: "centre-2099")),
        ]
        var seeds: [Seed] = []
        for (name, c) in commands {
            seeds.append(Seed("env-" + name, [0] + (try CommandSigner.sign(command: c, privateKey: FuzzFixture.centrePrivateKey))))
        }
        // Envelopes broken on the way: not JSON, bad base64, a short signature, a missing field.
        let good = String(decoding: try CommandSigner.sign(command: commands[0].1, privateKey: FuzzFixture.centrePrivateKey), as: UTF8.self)
        seeds.append(Seed("env-not-json", [0] + Array("{\"kid\":\"fuzz-centre\",\"cmd\":".utf8)))
        seeds.append(Seed("env-bad-base64", [0] + Array(#"{"kid":"fuzz-centre","cmd":"e30=!","sig":"AAAA"}"#.utf8)))
        seeds.append(Seed("env-short-sig", [0] + Array(#"{"kid":"fuzz-centre","cmd":"e30=","sig":"AQID"}"#.utf8)))
        seeds.append(Seed("env-missing-sig", [0] + Array(good.replacingOccurrences(of: "\"sig\"", with: "\"sog\"").utf8)))

        // Raw command bytes, signed by the harness.
        let raw = [
            #"{"id":"r-1","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00.250Z"}"#,
            #"{"id":"r-2","gw":"cab-0042","target":"lamp-01","action":"set_level","args":{"level":100,"duration_s":604800},"issued":"2026-11-23T07:29:55+01:00","expires":"2026-11-23t06:31:00.123456789z"}"#,
            #"{"id":"r-3","gw":"cab-0042","target":"north","action":"priority_request","args":{"vehicle":"b","line":"1","eta_s":600},"issued":"2026-11-23 06:29:00-00:30","expires":"2026-11-23T06:31:00Z"}"#,
            #"{"id":"r-4","gw":"cab-0042","target":"bollard-1","action":"hold_down","args":{"duration_s":1e-3},"issued":"2024-02-29T23:59:60Z","expires":"9999-12-31T23:59:59.999Z"}"#,
            #"{"id":"r-5","gw":"cab-0042","target":"lamp-01","action":"set_level","args":{"level":-0.0,"duration_s":"600"},"issued":"0000-01-01T00:00:00Z","expires":"2026-11-23T06:31:00Z","extra":[1,{"a":null}]}"#,
        ]
        for (i, text) in raw.enumerated() {
            seeds.append(Seed("raw-\(i + 1)", [1] + Array(text.utf8)))
        }
        seeds.append(Seed("raw-short-key", [3] + Array(raw[0].utf8)))
        return seeds
    }
}
