#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The uplink's contract against three brokers nobody here wrote: mosquitto (Debian 12),
/// RabbitMQ 3.10's MQTT plugin (Debian's rabbitmq-server) and amqtt 0.12 (PyPI). One broker
/// per argument, started once and stopped after; the centre is `mosquitto_sub`/`mosquitto_pub`.
/// Per broker: online status with seq, the retained status for a late subscriber, events and
/// telemetry with no seq lost across an agent kill -9 and restart, the will after the kill,
/// signed commands answered (executed and refused), the goodbye with seq on SIGTERM.
/// Differences found are in docs/BROKERS.md. The fail-over test kills one node of a two-node
/// RabbitMQ cluster mid-burst.
@Suite(.serialized)
struct InteropMatrixTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case mosquitto, rabbitmq, amqtt
        var testDescription: String { rawValue }
    }

    static func start(_ kind: Kind) throws -> any InteropBroker {
        switch kind {
        case .mosquitto: return try MosquittoBroker()
        case .rabbitmq: return try RabbitMQBroker()
        case .amqtt: return try AMQTTBroker()
        }
    }

    @Test(arguments: Kind.allCases)
    func theUplinkContractHoldsOn(_ kind: Kind) throws {
        let broker = try Self.start(kind)
        defer { broker.shutdown() }
        let rig = try FieldRig(brokerPort: broker.port)
        let (keyFile, pub) = try rig.centreKey()
        let otherKey = try rig.centreKey("other.key").keyFile
        let config = rig.agentConfig(telemetry: "1s").replacingOccurrences(
            of: "  outbox: {max_messages: 100000, max_age: 1d}",
            with: "  outbox: {max_messages: 100000, max_age: 1d}\n  keep_alive: 5s\n  centre_keys: {centre-test: \"\(pub)\"}")
        let centre = try UplinkSystemTests.Centre(port: broker.port)
        // The subscription is in place before the agent speaks (SUBACK is not observable here).
        Thread.sleep(forTimeInterval: 0.5)
        try rig.startAgent(config: config)
        let status = { centre.messages.filter { $0.0 == "edge/v1/test-gw/status" }.map(\.1) }
        #expect(Wait.until(timeout: .seconds(15)) { status().contains { $0["state"] as? String == "online" && $0["seq"] is Int } },
                "\(kind): no online status: \(centre.child.stdout.suffix(500))")

        // Retained status for a subscriber that comes later (a wildcard-free filter: RabbitMQ
        // 3.10 sends retained messages only to those).
        let late = try UplinkSystemTests.Centre(port: broker.port, topic: "edge/v1/test-gw/status")
        #expect(Wait.until(timeout: .seconds(10)) { late.messages.contains { $0.1["state"] as? String == "online" } },
                "\(kind): no retained status for a late subscriber")

        // A stream of events, the agent killed mid-stream (the will) and restarted: no seq lost.
        func churn(_ n: Int) throws {
            for i in 0..<n {
                _ = try rig.simControl("set pir-01 presence \(i % 2)")
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        try churn(8)
        #expect(Wait.until(timeout: .seconds(10)) { centre.seqs.count > 8 })
        rig.agent?.kill9()
        #expect(Wait.until(timeout: .seconds(30)) { status().contains { $0["state"] as? String == "offline" && $0["seq"] == nil } },
                "\(kind): no will after kill -9")
        try churn(4)   // events while the agent is down are not the agent's; it starts from its outbox
        try rig.startAgent(config: config)
        try churn(8)
        #expect(Wait.until(timeout: .seconds(15)) { status().filter { $0["state"] as? String == "online" }.count >= 2 })

        // Commands: executed and refused, each answered.
        func sign(_ id: String, key: String) throws -> String {
            let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", key, "--kid", "centre-test", "--gw", "test-gw",
                                                                          "--target", "gateway", "--action", "ping", "--args", "{}", "--id", id, "--valid", "60s"])
            return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        try UplinkSystemTests.publish(port: broker.port, topic: "edge/v1/test-gw/cmd", payload: try sign("i-ping", key: keyFile))
        try UplinkSystemTests.publish(port: broker.port, topic: "edge/v1/test-gw/cmd", payload: try sign("i-bad", key: otherKey))
        #expect(Wait.until(timeout: .seconds(10)) {
            centre.replies().contains { $0["id"] as? String == "i-ping" && $0["ok"] as? Bool == true }
                && centre.replies().contains { ($0["error"] as? [String: Any])?["code"] as? String == "bad_signature" }
        }, "\(kind): replies \(centre.replies())")

        // The goodbye, with seq, after every other seq.
        rig.agent?.signal(SIGTERM)
        #expect(rig.agent?.waitExit(timeout: .seconds(15)) == 0)
        #expect(Wait.until(timeout: .seconds(5)) { status().contains { $0["state"] as? String == "offline" && $0["seq"] is Int } },
                "\(kind): no offline status with seq")
        Thread.sleep(forTimeInterval: 0.5)
        let seqs = centre.seqs
        #expect(seqs.count > 20, "\(kind): \(seqs.count) messages")
        #expect(UplinkSystemTests.gaps(seqs).isEmpty, "\(kind): missing seqs \(UplinkSystemTests.gaps(seqs).prefix(20))")
    }

    /// A RabbitMQ cluster; the agent lists two nodes (`uplink.broker` as a list) and is
    /// connected to node B; the centre subscribes on node A. Node B is killed (SIGKILL) in the
    /// middle of a burst: the agent fails over to A and the centre has every seq.
    ///
    /// Three nodes, not two: RabbitMQ 3.10's MQTT plugin registers client ids in a Raft
    /// cluster and refuses every MQTT connection ("client ID registration timed out") once
    /// a majority of the nodes is gone, so a two-node cluster that loses one node takes no
    /// connection at all (seen here; docs/BROKERS.md). The third node only keeps the quorum.
    @Test func failoverWhenOneNodeOfARabbitMQClusterDiesLosesNoSeq() throws {
        let cluster = try RabbitMQBroker(nodeCount: 3)
        defer { cluster.shutdown() }
        let a = cluster.nodes[0], b = cluster.nodes[1]
        let rig = try FieldRig(brokerPort: b.mqttPort)
        let config = rig.agentConfig(telemetry: "1s")
            .replacingOccurrences(of: "  broker: mqtt://127.0.0.1:\(b.mqttPort)", with: "  broker: [\(b.url), \(a.url)]\n  reconnect: {initial: 200ms, max: 2s, jitter: 0.5}")
            .replacingOccurrences(of: "  outbox: {max_messages: 100000, max_age: 1d}", with: "  outbox: {max_messages: 100000, max_age: 1d}\n  keep_alive: 5s")
        let centre = try UplinkSystemTests.Centre(port: a.mqttPort)
        Thread.sleep(forTimeInterval: 0.5)
        try rig.startAgent(config: config)
        #expect(Wait.until(timeout: .seconds(15)) { (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true })
        #expect((try rig.status()["uplink"] as? [String: Any])?["broker"] as? String == b.url)
        #expect(Wait.until(timeout: .seconds(10)) { centre.seqs.count > 3 })
        // A burst: presence toggles every 20 ms make events (and lamp level changes).
        for i in 0..<60 {
            _ = try rig.simControl("set pir-01 presence \(i % 2)")
            if i == 25 { cluster.kill(node: 1) }
        }
        #expect(Wait.until(timeout: .seconds(30)) { (try? rig.status()["uplink"] as? [String: Any])?["broker"] as? String == a.url
                && (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true }, "no fail-over to node A: \(rig.agent?.stderr.suffix(1500) ?? "")\nRabbitMQ:\n\(cluster.logs.suffix(3000))")
        // Everything the agent stored reaches the centre: wait until the outbox is empty.
        #expect(Wait.until(timeout: .seconds(30)) { ((try? rig.status()["uplink"] as? [String: Any])?["outbox_depth"] as? Int) == 0 })
        let lastSeq = (try rig.status()["uplink"] as? [String: Any])?["last_seq"] as? Int ?? 0
        #expect(Wait.until(timeout: .seconds(10)) { (centre.seqs.max() ?? 0) >= lastSeq })
        let seqs = centre.seqs
        #expect(seqs.count > 25)
        #expect(UplinkSystemTests.gaps(seqs).isEmpty, "missing seqs at the centre: \(UplinkSystemTests.gaps(seqs).prefix(20))")
        let duplicates = seqs.count - Set(seqs).count
        print("rabbitmq fail-over: \(seqs.count) messages, \(Set(seqs).count) seqs, \(duplicates) duplicates, 0 lost")
    }
}
