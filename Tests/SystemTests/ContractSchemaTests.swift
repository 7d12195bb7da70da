#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// docs/asyncapi.yaml is the contract the centre generates code from: real messages captured
/// from a running agent (status online and offline, the will, telemetry, events, alarms,
/// replies ok and refused, and the signed commands the centre sent) are validated against it
/// by an independent validator (Python `jsonschema`, scripts/asyncapi-check.py). Any drift
/// between what the agent sends and the document fails here.
@Suite(.serialized)
struct ContractSchemaTests {
    static var root: URL { BuildProducts.packageRoot }

    static func check(_ capture: String, require: [String] = []) throws -> (status: Int32, out: String) {
        let python = which("python3") ?? "/usr/bin/python3"
        let r = try runCommand(python, [root.appendingPathComponent("scripts/asyncapi-check.py").path,
                                        root.appendingPathComponent("docs/asyncapi.yaml").path, capture,
                                        "--prefix", "edge/v1", "--require", require.joined(separator: ",")])
        return (r.status, r.stdout + r.stderr)
    }

    @Test func realMessagesOfEveryKindMatchTheAsyncAPIDocument() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (keyFile, pub) = try rig.centreKey()
        let otherKey = try rig.centreKey("other.key").keyFile
        // keep_alive 5s: the will follows a kill -9 within ~8 s.
        let config = rig.agentConfig(telemetry: "1s").replacingOccurrences(
            of: "  outbox: {max_messages: 100000, max_age: 1d}",
            with: "  outbox: {max_messages: 100000, max_age: 1d}\n  keep_alive: 5s\n  centre_keys: {centre-test: \"\(pub)\"}")
        let centre = try UplinkSystemTests.Centre(port: broker.port)
        try rig.startAgent(config: config)
        func has(_ topicSuffix: String, _ predicate: @escaping ([String: Any]) -> Bool = { _ in true }) -> Bool {
            centre.messages.contains { $0.0.hasSuffix(topicSuffix) && predicate($0.1) }
        }
        #expect(Wait.until(timeout: .seconds(10)) { has("/status") { $0["state"] as? String == "online" } })
        for i in 0..<4 {
            _ = try rig.simControl("set pir-01 presence \(i % 2)")
            Thread.sleep(forTimeInterval: 0.2)
        }
        #expect(Wait.until(timeout: .seconds(10)) { centre.messages.contains { $0.0.contains("/telemetry/") } })
        _ = try rig.simControl("set lamp-02 offline 1")
        #expect(Wait.until(timeout: .seconds(10)) { has("/alarm/lamp-02/comm_lost") { $0["active"] as? Bool == true } })
        _ = try rig.simControl("set lamp-02 offline 0")

        func sign(_ id: String, key: String) throws -> String {
            let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", key, "--kid", "centre-test", "--gw", "test-gw",
                                                                          "--target", "gateway", "--action", "ping", "--args", "{}", "--id", id, "--valid", "60s"])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try UplinkSystemTests.publish(port: broker.port, topic: "edge/v1/test-gw/cmd", payload: try sign("s-ping", key: keyFile))
        try UplinkSystemTests.publish(port: broker.port, topic: "edge/v1/test-gw/cmd", payload: try sign("s-badsig", key: otherKey))
        #expect(Wait.until(timeout: .seconds(10)) { centre.replies().count >= 2 })

        // Clean stop: offline with seq; then an unclean loss: the bare will.
        rig.agent?.signal(SIGTERM)
        #expect(rig.agent?.waitExit(timeout: .seconds(15)) == 0)
        #expect(Wait.until(timeout: .seconds(5)) { has("/status") { $0["state"] as? String == "offline" && $0["seq"] != nil } })
        try rig.startAgent(config: config)
        let onlines = { centre.messages.filter { $0.0.hasSuffix("/status") && $0.1["state"] as? String == "online" }.count }
        #expect(Wait.until(timeout: .seconds(10)) { onlines() >= 2 })
        rig.agent?.kill9()
        #expect(Wait.until(timeout: .seconds(30)) { has("/status") { $0["state"] as? String == "offline" && $0["seq"] == nil } })

        let (status, out) = try Self.check(centre.child.stdoutPath,
                                           require: ["status_online", "status_offline", "will", "telemetry", "event", "alarm",
                                                     "reply_ok", "reply_error", "command"])
        #expect(status == 0, "drift between the agent and docs/asyncapi.yaml:\n\(out)")
        #expect(out.contains("0 problems"), "\(out)")
    }

    /// The validator is not a rubber stamp: a payload with a field the document does not
    /// have, a missing field, or a topic outside the channels is refused.
    @Test func theValidatorRefusesDrift() throws {
        let dir = ScratchDir("asyncapi")
        let ok = #"edge/v1/gw-1/telemetry/lamp-01 {"seq":2,"ts":"2026-12-01T10:00:00.000Z","time_quality":"synchronised","values":{"level":30}}"#
        let good = dir.write("good.txt", ok + "\n")
        #expect(try Self.check(good, require: ["telemetry"]).status == 0)
        for drifted in [
            #"edge/v1/gw-1/telemetry/lamp-01 {"seq":2,"ts":"2026-12-01T10:00:00.000Z","time_quality":"synchronised","values":{"level":30},"quality":"good"}"#,
            #"edge/v1/gw-1/event/pir-01 {"seq":3,"ts":"2026-12-01T10:00:00.000Z","time_quality":"synchronised","data":{}}"#,
            #"edge/v1/gw-1/alarm/lamp-01/comm_lost {"seq":4,"ts":"2026-12-01 10:00:00","time_quality":"synchronised","active":true,"severity":"major","message":""}"#,
            #"edge/v1/gw-1/reply {"seq":5,"ts":"2026-12-01T10:00:00.000Z","time_quality":"synchronised","id":"c","ok":false}"#,
            #"edge/v1/gw-1/telemetry/lamp-01 {"seq":2,"ts":"2026-12-01T10:00:00.000Z","time_quality":"sort of","values":{}}"#,
            #"edge/v1/gw-1/metrics/lamp-01 {"seq":6,"ts":"2026-12-01T10:00:00.000Z","time_quality":"synchronised"}"#,
        ] {
            let file = dir.write("drift.txt", drifted + "\n")
            let (status, out) = try Self.check(file)
            #expect(status == 1, "accepted: \(drifted)\n\(out)")
        }
        // A required kind that was never captured fails too.
        #expect(try Self.check(good, require: ["alarm"]).status == 1)
    }
}
