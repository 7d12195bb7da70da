#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The centre's side of the uplink, with real processes: mosquitto, edge-sim, edge-agent, and
/// `mosquitto_sub` / `mosquitto_pub` as the centre (an MQTT client nobody here wrote).
@Suite(.serialized)
struct UplinkSystemTests {
    /// A `mosquitto_sub -v` process recording everything under the gateway's root.
    final class Centre {
        let child: ChildProcess
        init(port: Int, topic: String = "edge/v1/test-gw/#") throws {
            child = try ChildProcess(which("mosquitto_sub") ?? "/usr/bin/mosquitto_sub",
                                     ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-v", "-t", topic, "-i", "centre-\(UUID().uuidString.prefix(6))", "-c"])
        }
        /// (topic, payload object) for every received message.
        var messages: [(String, [String: Any])] {
            child.stdout.split(separator: "\n").compactMap { line in
                guard let space = line.firstIndex(of: " ") else { return nil }
                let topic = String(line[..<space])
                guard let obj = try? JSONSerialization.jsonObject(with: Data(line[line.index(after: space)...].utf8)) as? [String: Any] else { return nil }
                return (topic, obj)
            }
        }
        var seqs: [Int] { messages.compactMap { $0.1["seq"] as? Int } }
        func replies() -> [[String: Any]] { messages.filter { $0.0.hasSuffix("/reply") }.map(\.1) }
    }

    static func publish(port: Int, topic: String, payload: String) throws {
        let r = try runCommand(which("mosquitto_pub") ?? "/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", topic, "-m", payload])
        #expect(r.status == 0, "mosquitto_pub: \(r.stderr)")
    }

    /// Every seq from the first seen to the last, with no gap (duplicates allowed).
    static func gaps(_ seqs: [Int]) -> [Int] {
        guard let lo = seqs.min(), let hi = seqs.max() else { return [] }
        let have = Set(seqs)
        return (lo...hi).filter { !have.contains($0) }
    }

    @Test func statusIsRetainedOnlineWithSeqAndTheWillSaysOffline() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let agent = try rig.startAgent()
        let centre = try Centre(port: broker.port, topic: "edge/v1/test-gw/status")
        #expect(Wait.until(timeout: .seconds(10)) { centre.messages.contains { $0.1["state"] as? String == "online" } })
        let online = centre.messages.first { $0.1["state"] as? String == "online" }!.1
        #expect(online["seq"] is Int)
        #expect(online["boot_id"] is String)
        #expect((online["ts"] as? String)?.hasSuffix("Z") == true)
        // kill -9: the broker publishes the will.
        agent.kill9()
        #expect(Wait.until(timeout: .seconds(90)) { centre.messages.contains { $0.1["state"] as? String == "offline" } })
    }

    /// SIGTERM: the goodbye is a message like every other (seq, ts, the run's boot_id), after
    /// every seq of the run, acknowledged before the agent exits, and the retained status.
    @Test func sigtermSaysOfflineWithSeqAndTsBeforeExit() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let centre = try Centre(port: broker.port)
        let agent = try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { centre.messages.contains { $0.0 == "edge/v1/test-gw/status" && $0.1["state"] as? String == "online" } })
        #expect(Wait.until(timeout: .seconds(10)) { centre.seqs.count > 5 })
        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(15)) == 0, "\(agent.stderr)")
        // Delivered before exit: the subscriber has it (its own delivery may trail by a moment).
        #expect(Wait.until(timeout: .seconds(5)) { centre.messages.contains { $0.1["state"] as? String == "offline" } })
        let status = centre.messages.filter { $0.0 == "edge/v1/test-gw/status" }.map(\.1)
        let online = try #require(status.first { $0["state"] as? String == "online" })
        let offline = try #require(status.first { $0["state"] as? String == "offline" })
        let seq = try #require(offline["seq"] as? Int, "offline status without seq: \(offline)")
        #expect(seq > (online["seq"] as? Int ?? .max))
        #expect(seq >= centre.seqs.max() ?? 0, "the goodbye comes after every seq the centre saw")
        #expect((offline["ts"] as? String)?.hasSuffix("Z") == true, "\(offline)")
        #expect(offline["boot_id"] as? String == online["boot_id"] as? String)
        // The broker keeps it as the retained status (not the bare will).
        let late = try Centre(port: broker.port, topic: "edge/v1/test-gw/status")
        #expect(Wait.until(timeout: .seconds(5)) { !late.messages.isEmpty })
        #expect(late.messages.first?.1["seq"] as? Int == seq, "\(late.messages.map(\.1))")
    }

    /// A bollard found at rest when the agent starts is taken from its end switches at once:
    /// the centre sees it `down`, and no `position_unknown` alarm raised and cleared on the way.
    @Test func aBollardAtRestStartsDownWithoutAPositionAlarm() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let centre = try Centre(port: broker.port)
        let agent = try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) {
            centre.messages.contains { $0.0 == "edge/v1/test-gw/telemetry/bollard-1" }
        }, "no bollard telemetry")
        let bollard = centre.messages.filter { $0.0.hasSuffix("/bollard-1") || $0.0.contains("/bollard-1/") }
        #expect(!bollard.contains { $0.0.contains("position_unknown") }, "\(bollard.map(\.0))")
        let states = bollard.compactMap { ($0.1["data"] as? [String: Any])?["state"] as? String }
        #expect(states.first == "down", "first bollard.state events: \(states.prefix(3))")
        agent.kill9()
    }

    @Test func brokerOutageAndAgentSigkillLoseNoSeq() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let config = rig.agentConfig(telemetry: "1s")
        // The centre listens before the gateway says anything.
        let centre = try Centre(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        try rig.startAgent(config: config)
        // A steady stream: presence toggles make events, polls make telemetry.
        func churn(_ n: Int) throws {
            for i in 0..<n {
                _ = try rig.simControl("set pir-01 presence \(i % 2)")
                Thread.sleep(forTimeInterval: 0.15)
            }
        }
        try churn(6)
        #expect(Wait.until(timeout: .seconds(10)) { centre.seqs.count > 5 })
        // Broker down for a while, events keep coming, broker back.
        broker.kill()
        try churn(10)
        try broker.start()
        let centre2 = try Centre(port: broker.port)
        try churn(6)
        // Agent killed mid-stream and restarted.
        rig.agent?.kill9()
        try rig.startAgent(config: config)
        try churn(6)
        Thread.sleep(forTimeInterval: 3)
        // Between the two subscribers (the first reconnects by itself; the second joined right
        // after the broker came back, before the agent's reconnect backoff ran out) the centre
        // has every seq from the first to the last: nothing lost, duplicates allowed.
        let all = centre.seqs + centre2.seqs
        #expect(all.count > 20)
        #expect(Self.gaps(all).isEmpty, "missing seqs: \(Self.gaps(all).prefix(20))")
        #expect((try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true)
    }

    @Test func everyRefusalOfTheContractIsRepliedAndActuatesNothing() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (keyFile, pub) = try rig.centreKey()
        let otherKey = try rig.centreKey("other.key").keyFile
        let config = rig.agentConfig().replacingOccurrences(of: "  outbox: {max_messages: 100000, max_age: 1d}",
                                                            with: "  outbox: {max_messages: 100000, max_age: 1d}\n  centre_keys: {centre-test: \"\(pub)\"}")
        try rig.startAgent(config: config)
        let centre = try Centre(port: broker.port, topic: "edge/v1/test-gw/reply")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true })
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        _ = try rig.simControl("set bollard-1 loop 1")
        Thread.sleep(forTimeInterval: 0.5)
        let before = try rig.device("bollard-1")

        func sign(_ id: String, gw: String = "test-gw", target: String = "bollard-1", action: String = "raise", args: String = "{}", valid: String = "60s", key: String? = nil) throws -> String {
            let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", key ?? keyFile, "--kid", "centre-test", "--gw", gw, "--target", target, "--action", action, "--args", args, "--id", id, "--valid", valid])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let cmd = "edge/v1/test-gw/cmd"
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-badsig", key: otherKey))
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-othergw", gw: "cab-9999"))
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-expired", valid: "1ms"))
        try Self.publish(port: broker.port, topic: cmd, payload: "{not json")
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-unknown-target", target: "bollard-9"))
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-unknown-action", action: "fly"))
        try Self.publish(port: broker.port, topic: cmd, payload: try sign("c-range", target: "rue-liberte", action: "set_level", args: "{\"level\":180,\"duration_s\":60}"))
        let interlocked = try sign("c-interlock")
        try Self.publish(port: broker.port, topic: cmd, payload: interlocked)
        let ping = try sign("c-ping", target: "gateway", action: "ping")
        try Self.publish(port: broker.port, topic: cmd, payload: ping)
        try Self.publish(port: broker.port, topic: cmd, payload: ping)   // replay

        #expect(Wait.until(timeout: .seconds(10)) { centre.replies().count >= 10 })
        func code(_ id: String) -> String? {
            centre.replies().first { $0["id"] as? String == id && ($0["ok"] as? Bool) == false }.flatMap { ($0["error"] as? [String: Any])?["code"] as? String }
        }
        let errors = centre.replies().compactMap { ($0["error"] as? [String: Any])?["code"] as? String }
        #expect(errors.contains("bad_signature"))
        #expect(code("c-othergw") == "wrong_gateway")
        #expect(code("c-expired") == "expired")
        #expect(errors.contains("malformed"))
        #expect(code("c-unknown-target") == "unknown_target")
        #expect(code("c-unknown-action") == "unknown_action")
        #expect(code("c-range") == "out_of_range")
        #expect(code("c-interlock") == "interlock")
        #expect(centre.replies().contains { $0["id"] as? String == "c-ping" && $0["ok"] as? Bool == true })
        #expect(code("c-ping") == "replay")
        // The refused command's id is spent too; its replay says what became of it (not "executed").
        try Self.publish(port: broker.port, topic: cmd, payload: interlocked)
        func refusals(_ id: String) -> [[String: Any]] {
            centre.replies().filter { $0["id"] as? String == id && ($0["ok"] as? Bool) == false }.compactMap { $0["error"] as? [String: Any] }
        }
        #expect(Wait.until(timeout: .seconds(10)) { refusals("c-interlock").count == 2 })
        let again = refusals("c-interlock").last
        #expect(again?["code"] as? String == "replay")
        let message = again?["message"] as? String ?? ""
        #expect(message.hasPrefix("id c-interlock already used (refused: interlock at 20") && message.hasSuffix("Z)"), "\(message)")
        // Nothing moved.
        let after = try rig.device("bollard-1")
        #expect(after["position"] as? String == before["position"] as? String)
        #expect(after["motor_up"] as? Bool == false)
        #expect(try rig.device("lamp-01")["setpoint"] as? Int == 30)
        #expect(try rig.safetyViolations() == 0)
    }
}
