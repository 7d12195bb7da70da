#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The Sparkplug B dialect (`uplink.dialect: sparkplug`) with real processes: mosquitto,
/// edge-sim, edge-agent, `mosquitto_sub`/`mosquitto_pub` as the host application, and an
/// independent decoder (scripts/sparkplug-check.py: pysparkplug's compiled Tahu schema) that
/// checks every captured message against the spec's edge-node assertions (docs/SPARKPLUG.md).
@Suite(.serialized)
struct SparkplugTests {
    static let group = "city"

    /// Everything under spBv1.0/#, as `topic qos retained hexpayload` lines.
    final class Host {
        let child: ChildProcess
        init(port: Int) throws {
            child = try ChildProcess(which("mosquitto_sub") ?? "/usr/bin/mosquitto_sub",
                                     ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", "spBv1.0/#", "-F", "%t %q %r %x", "-i", "host-\(UUID().uuidString.prefix(6))"])
        }
        var topics: [String] { child.stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") } }
        func count(_ type: String) -> Int { topics.filter { $0.split(separator: "/").dropFirst(2).first == Substring(type) }.count }

        /// Runs the independent checker; (exit status, problem lines, summary).
        func check() throws -> (status: Int32, problems: String, summary: [String: Any]) {
            let r = try runCommand(which("python3") ?? "/usr/bin/python3",
                                   [SparkplugTests.script, "check", child.stdoutPath, "--group", SparkplugTests.group, "--node", "test-gw"])
            let lines = r.stdout.split(separator: "\n")
            let summary = lines.last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
            return (r.status, lines.dropLast().joined(separator: "\n") + r.stderr, summary)
        }
    }

    static var script: String { BuildProducts.packageRoot.appendingPathComponent("scripts/sparkplug-check.py").path }

    static func config(_ rig: FieldRig, sparkplug: String = "{group_id: city}", extraUplink: String = "") -> String {
        rig.agentConfig(telemetry: "1s").replacingOccurrences(
            of: "  prefix: edge/v1\n",
            with: "  prefix: edge/v1\n  dialect: sparkplug\n  sparkplug: \(sparkplug)\n  keep_alive: 5s\n\(extraUplink)")
    }

    static func publish(_ port: Int, _ topic: String, file: String? = nil, message: String? = nil, retain: Bool = false) throws {
        var args = ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", topic]
        if let file { args += ["-f", file] }
        if let message { args += ["-m", message] }
        if retain { args.append("-r") }
        let r = try runCommand(which("mosquitto_pub") ?? "/usr/bin/mosquitto_pub", args)
        #expect(r.status == 0, "mosquitto_pub: \(r.stderr)")
    }

    static func python(_ args: [String]) throws {
        let r = try runCommand(which("python3") ?? "/usr/bin/python3", [script] + args)
        #expect(r.status == 0, "sparkplug-check \(args): \(r.stdout) \(r.stderr)")
    }

    static func uplink(_ rig: FieldRig) -> [String: Any] { ((try? rig.status())?["uplink"] as? [String: Any]) ?? [:] }

    func churn(_ rig: FieldRig, _ n: Int) throws {
        for i in 0..<n {
            _ = try rig.simControl("set pir-01 presence \(i % 2)")
            Thread.sleep(forTimeInterval: 0.1)
        }
    }

    /// NBIRTH, a DBIRTH per device (metrics, aliases, units), DDATA; kill -9: the broker
    /// publishes the NDEATH will with the NBIRTH's bdSeq; the next run's bdSeq is the next one.
    @Test func birthDataAndTheWillOnKill9WithBdSeqPersisted() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let host = try Host(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        let config = Self.config(rig)
        try rig.startAgent(config: config)
        #expect(Wait.until(timeout: .seconds(15)) { host.count("NBIRTH") == 1 && host.count("DBIRTH") >= 8 && host.count("DDATA") >= 3 },
                "\(host.topics.prefix(20)) \(rig.agent?.stderr.suffix(2000) ?? "")")
        try churn(rig, 6)
        #expect(Wait.until(timeout: .seconds(10)) { host.count("DDATA") >= 8 })
        rig.agent?.kill9()
        #expect(Wait.until(timeout: .seconds(20)) { host.count("NDEATH") == 1 })
        try rig.startAgent(config: config)
        #expect(Wait.until(timeout: .seconds(15)) { host.count("NBIRTH") == 2 && host.count("DDATA") >= 10 })
        rig.agent?.kill9()
        #expect(Wait.until(timeout: .seconds(20)) { host.count("NDEATH") == 2 })
        let (status, problems, summary) = try host.check()
        #expect(status == 0, "spec assertions failed:\n\(problems)")
        let bdSeqs = summary["bdseqs"] as? [Int] ?? []
        #expect(bdSeqs.count == 2 && bdSeqs[1] == (bdSeqs[0] + 1) % 256, "bdSeq not persisted and advanced: \(bdSeqs)")
        #expect(summary["will_bdseqs"] as? [Int] == bdSeqs, "\(summary)")
        #expect(Set(summary["devices_born"] as? [String] ?? []).isSuperset(of: ["lamp-01", "lamp-02", "pir-01", "bollard-1", "junction"]), "\(summary)")
        #expect((summary["units"] as? [String: String])?["level"] == "%", "\(summary)")
        #expect((summary["units"] as? [String: String])?["power_w"] == "W", "\(summary)")
        #expect((summary["events"] as? Int ?? 0) > 0, "\(summary)")
    }

    /// NCMD `Node Control/Rebirth`: a new NBIRTH (seq 0, same bdSeq) and the DBIRTHs.
    @Test func rebirthOnNodeControlRebirth() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let host = try Host(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        try rig.startAgent(config: Self.config(rig))
        #expect(Wait.until(timeout: .seconds(15)) { host.count("NBIRTH") == 1 && host.count("DDATA") >= 2 })
        let births = host.count("DBIRTH")
        let file = rig.scratch.file("rebirth.bin")
        try Self.python(["ncmd-rebirth", file])
        try Self.publish(broker.port, "spBv1.0/\(Self.group)/NCMD/test-gw", file: file)
        #expect(Wait.until(timeout: .seconds(10)) { host.count("NBIRTH") == 2 && host.count("DBIRTH") >= births + 8 })
        #expect(Wait.until(timeout: .seconds(10)) { host.topics.last?.contains("/DDATA/") == true })
        let (status, problems, summary) = try host.check()
        #expect(status == 0, "spec assertions failed:\n\(problems)")
        #expect(summary["rebirths"] as? Int == 1)
        let bdSeqs = summary["bdseqs"] as? [Int] ?? []
        #expect(bdSeqs.count == 2 && bdSeqs[0] == bdSeqs[1], "a rebirth keeps the session's bdSeq: \(bdSeqs)")
        // A clean stop says NDEATH itself (with the session's bdSeq), acknowledged before exit.
        rig.agent?.signal(SIGTERM)
        #expect(rig.agent?.waitExit(timeout: .seconds(15)) == 0)
        #expect(Wait.until(timeout: .seconds(5)) { host.count("NDEATH") == 1 })
        let after = try host.check()
        #expect(after.status == 0, "spec assertions failed:\n\(after.problems)")
        #expect(after.summary["will_bdseqs"] as? [Int] == [bdSeqs.first ?? -1])
    }

    /// The link is cut a while (a relay between agent and broker killed; the host stays
    /// subscribed): the broker publishes the NDEATH will; what the agent stored meanwhile
    /// follows the next NBIRTH (next bdSeq) as DDATA/NDATA with is_historical.
    @Test func theBacklogIsReplayedAsHistoricalAfterAnOutage() throws {
        let broker = try MosquittoBroker()
        let relay = try TCPRelay(to: broker.port)
        let rig = try FieldRig(brokerPort: relay.port)
        let host = try Host(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        try rig.startAgent(config: Self.config(rig))
        #expect(Wait.until(timeout: .seconds(15)) { host.count("NBIRTH") == 1 && host.count("DDATA") >= 3 })
        #expect(Wait.until(timeout: .seconds(10)) { Self.uplink(rig)["outbox_depth"] as? Int == 0 })
        relay.kill()
        #expect(Wait.until(timeout: .seconds(10)) { Self.uplink(rig)["connected"] as? Bool == false })
        #expect(Wait.until(timeout: .seconds(20)) { host.count("NDEATH") == 1 }, "no NDEATH will after the cut")
        try churn(rig, 10)
        #expect(Wait.until(timeout: .seconds(10)) { (Self.uplink(rig)["outbox_depth"] as? Int ?? 0) >= 5 })
        try relay.start()
        #expect(Wait.until(timeout: .seconds(30)) { Self.uplink(rig)["outbox_depth"] as? Int == 0 && Self.uplink(rig)["connected"] as? Bool == true })
        #expect(Wait.until(timeout: .seconds(10), interval: .milliseconds(500)) {
            ((try? host.check().summary["historical_metrics"]) as? Int ?? 0) >= 5
        }, "no historical metrics after the outage: \(host.topics.suffix(30))")
        let (status, problems, summary) = try host.check()
        #expect(status == 0, "spec assertions failed:\n\(problems)")
        let bdSeqs = summary["bdseqs"] as? [Int] ?? []
        #expect(bdSeqs.count == 2 && bdSeqs[1] == (bdSeqs[0] + 1) % 256, "a new connection has the next bdSeq: \(bdSeqs)")
        #expect(summary["will_bdseqs"] as? [Int] == [bdSeqs.first ?? -1], "\(summary)")
        rig.agent?.kill9()
    }

    /// A DCMD carrying the signed envelope (bytes metric `Command`) runs through the contract's
    /// checks and actuates; a plain DCMD write, and a forged envelope, are refused and reported.
    @Test func aSignedDCMDIsExecutedAndAnUnsignedWriteIsRefused() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (keyFile, pub) = try rig.centreKey()
        let otherKey = try rig.centreKey("other.key").keyFile
        let host = try Host(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        try rig.startAgent(config: Self.config(rig, extraUplink: "  centre_keys: {centre-test: \"\(pub)\"}\n"))
        #expect(Wait.until(timeout: .seconds(15)) { host.count("NBIRTH") == 1 && host.count("DBIRTH") >= 8 })
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        func dcmd(_ device: String, _ pythonArgs: [String], _ name: String) throws {
            let file = rig.scratch.file("\(name).bin")
            try Self.python(["dcmd", file] + pythonArgs)
            try Self.publish(broker.port, "spBv1.0/\(Self.group)/DCMD/test-gw/\(device)", file: file)
        }
        func envelope(_ id: String, key: String) throws -> String {
            let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", key, "--kid", "centre-test", "--gw", "test-gw", "--target", "lamp-01",
                                                                          "--action", "set_level", "--args", #"{"level":80,"duration_s":60}"#, "--id", id, "--valid", "60s"])
            #expect(r.status == 0, "\(r.stderr)")
            return rig.scratch.write("\(id).json", r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // Unsigned write first: refused, nothing moves.
        try dcmd("lamp-01", ["--int", "setpoint=100"], "unsigned")
        // A forged envelope: bad signature.
        try dcmd("lamp-01", ["--bytes-file", try envelope("sp-forged", key: otherKey)], "forged")
        func replies() -> [[String: Any]] { ((try? host.check().summary["replies"]) as? [[String: Any]]) ?? [] }
        #expect(Wait.until(timeout: .seconds(10), interval: .milliseconds(500)) { replies().count >= 2 }, "\(replies())")
        #expect(try rig.device("lamp-01")["setpoint"] as? Int == 30)
        // The signed one: executed.
        try dcmd("lamp-01", ["--bytes-file", try envelope("sp-1", key: keyFile)], "signed")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 80 })
        #expect(Wait.until(timeout: .seconds(10), interval: .milliseconds(500)) { replies().contains { $0["id"] as? String == "sp-1" && $0["ok"] as? Bool == true } },
                "\(replies())")
        let all = replies()
        let codes = all.compactMap { ($0["error"] as? [String: Any])?["code"] as? String }
        #expect(codes.contains("malformed") && codes.contains("bad_signature"), "\(all)")
        let refusal = all.first { ($0["error"] as? [String: Any])?["code"] as? String == "malformed" }
        #expect(((refusal?["error"] as? [String: Any])?["message"] as? String)?.contains("setpoint") == true, "\(all)")
        let (status, problems, _) = try host.check()
        #expect(status == 0, "spec assertions failed:\n\(problems)")
        #expect(try rig.safetyViolations() == 0)
        rig.agent?.kill9()
    }

    /// With a primary host configured, nothing is born and data is held until the host's
    /// STATE says online; then the births and the held data (historical) follow.
    @Test func dataIsHeldUntilThePrimaryHostIsOnline() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let host = try Host(port: broker.port)
        Thread.sleep(forTimeInterval: 0.3)
        try rig.startAgent(config: Self.config(rig, sparkplug: "{group_id: city, primary_host: scada-1}"))
        #expect(Wait.until(timeout: .seconds(15)) { Self.uplink(rig)["connected"] as? Bool == true })
        #expect(Wait.until(timeout: .seconds(10)) { (Self.uplink(rig)["outbox_depth"] as? Int ?? 0) >= 10 }, "the agent holds data")
        #expect(host.count("NBIRTH") == 0 && host.count("DDATA") == 0, "\(host.topics)")
        let ms = Int(Date().timeIntervalSince1970 * 1000)
        try Self.publish(broker.port, "spBv1.0/STATE/scada-1", message: #"{"online":true,"timestamp":\#(ms)}"#, retain: true)
        #expect(Wait.until(timeout: .seconds(10)) { host.count("NBIRTH") == 1 && host.count("DDATA") >= 3 })
        #expect(Wait.until(timeout: .seconds(10)) { Self.uplink(rig)["outbox_depth"] as? Int == 0 })
        let (status, problems, summary) = try host.check()
        #expect(status == 0, "spec assertions failed:\n\(problems)")
        #expect((summary["historical_metrics"] as? Int ?? 0) > 0, "\(summary)")
        rig.agent?.kill9()
    }
}
