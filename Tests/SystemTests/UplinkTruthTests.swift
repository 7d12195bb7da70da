#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// Issue 14, whole processes: the status and alarms overtake a backlog, alarm states re-assert
/// after a restart, safety runs with the state disk full, and an unsynchronised clock never
/// dims below base. Real mosquitto, edge-sim, edge-agent; `mosquitto_sub` as the centre.
@Suite(.serialized)
struct UplinkTruthTests {
    /// A `mosquitto_sub` printing `<unix time> <topic> <payload>` per message.
    final class TimedCentre {
        let child: ChildProcess
        init(port: Int, topics: [String]) throws {
            child = try ChildProcess(which("mosquitto_sub") ?? "/usr/bin/mosquitto_sub",
                                     ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-F", "%U %t %p", "-i", "centre-\(UUID().uuidString.prefix(6))"]
                                        + topics.flatMap { ["-t", $0] })
        }
        /// (arrival, topic, payload) of every message so far.
        var messages: [(at: Double, topic: String, body: [String: Any])] {
            child.stdout.split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ", maxSplits: 2)
                guard parts.count == 3, let at = Double(parts[0]),
                      let body = try? JSONSerialization.jsonObject(with: Data(parts[2].utf8)) as? [String: Any] else { return nil }
                return (at, String(parts[1]), body)
            }
        }
    }

    static func depth(_ rig: FieldRig) -> Int? {
        ((try? rig.status())?["uplink"] as? [String: Any])?["outbox_depth"] as? Int
    }

    static func setpoint(_ rig: FieldRig, _ lamp: String) -> Int? { ((try? rig.device(lamp))?["setpoint"] as? NSNumber)?.intValue }

    static func signer(_ rig: FieldRig) throws -> (key: String, pub: String) {
        let k = try rig.centreKey()
        return (k.keyFile, k.publicKey)
    }

    static func sign(_ key: String, id: String, target: String, action: String) throws -> String {
        let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", key, "--kid", "centre-test", "--gw", "test-gw", "--target", target,
                                                                      "--action", action, "--args", "{}", "--id", id, "--valid", "60s"])
        try #require(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func publish(_ port: Int, _ topic: String, _ payload: String) throws {
        let r = try runCommand(which("mosquitto_pub") ?? "/usr/bin/mosquitto_pub", ["-h", "127.0.0.1", "-p", "\(port)", "-q", "1", "-t", topic, "-m", payload])
        try #require(r.status == 0, "mosquitto_pub: \(r.stderr)")
    }

    /// 200,000 messages queued during an outage; the broker comes back: `status online` reaches
    /// the centre within 2 s of the first message of the drain, and a bollard alarm raised during
    /// the drain within 2 s of the fault, both while the backlog is still draining.
    @Test func statusOnlineAndANewAlarmOvertakeA200kBacklog() throws {
        let broker = try MosquittoBroker(start: false)
        let rig = try FieldRig(brokerPort: broker.port)
        let config = rig.agentConfig().replacingOccurrences(of: "max_messages: 100000,", with: "max_messages: 1000000,")
        // The outage: the agent runs without a broker, stops; 200,000 more messages queue up.
        let first = try rig.startAgent(config: config)
        first.signal(SIGTERM)
        try #require(first.waitExit(timeout: .seconds(15)) == 0, "\(first.stderr)")
        let fill = try runCommand(BuildProducts.executable("outbox-driver"), [rig.scratch.file("state"), "edge/v1/test-gw/telemetry/lamp-01", "fill", "200000"], timeout: .seconds(300))
        try #require(fill.status == 0, "fill: \(fill.stderr)")

        try broker.start()
        let centre = try TimedCentre(port: broker.port, topics: ["edge/v1/test-gw/status", "edge/v1/test-gw/alarm/#"])
        let counter = try TimedCentre(port: broker.port, topics: ["edge/v1/test-gw/telemetry/#"])
        Thread.sleep(forTimeInterval: 0.3)   // let the subscribers subscribe (not an assertion)
        try rig.startAgent(config: config)
        // The drain has begun once the first telemetry arrives.
        try #require(Wait.until(timeout: .seconds(30)) { !counter.child.stdout.isEmpty }, "the backlog does not drain")
        let drainStart = try #require(counter.messages.first?.at)
        #expect(Wait.until(timeout: .seconds(5)) { centre.messages.contains { $0.topic.hasSuffix("/status") && $0.body["state"] as? String == "online" } })
        let online = try #require(centre.messages.first { $0.topic.hasSuffix("/status") && $0.body["state"] as? String == "online" })
        #expect(online.at - drainStart <= 2.0, "status online arrived \(online.at - drainStart) s after the drain began")
        #expect(online.body["time_quality"] is String, "no time_quality: \(online.body)")

        // A new emergency during the drain.
        let depthBefore = try #require(Self.depth(rig))
        #expect(depthBefore > 100_000, "the backlog is already drained (\(depthBefore) left): nothing to overtake")
        let raisedAt = Date().timeIntervalSince1970
        _ = try rig.simControl("set bollard-1 motor_fault 1")
        #expect(Wait.until(timeout: .seconds(5)) { centre.messages.contains { $0.topic.hasSuffix("/alarm/bollard-1/motor_fault") && $0.body["active"] as? Bool == true } })
        let alarm = try #require(centre.messages.first { $0.topic.hasSuffix("/alarm/bollard-1/motor_fault") && $0.body["active"] as? Bool == true })
        let depthAfter = try #require(Self.depth(rig))
        #expect(alarm.at - raisedAt <= 2.0, "the alarm arrived \(alarm.at - raisedAt) s after the fault")
        #expect(depthAfter > 1000, "the backlog was drained before the alarm was seen (\(depthAfter) left)")
        print("UPLINK-LANES backlog=200000 online_after_drain_start=\(String(format: "%.3f", online.at - drainStart))s alarm_after_fault=\(String(format: "%.3f", alarm.at - raisedAt))s depth_at_fault=\(depthBefore) depth_after_alarm=\(depthAfter)")
        _ = try rig.simControl("set bollard-1 motor_fault 0")
    }

    /// A lamp failure that cleared while the agent was down is cleared at the centre within 10 s
    /// of the start, also in the broker's retained view.
    @Test func aLampFailureClearedWhileTheAgentWasDownIsClearedWithin10s() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let topic = "edge/v1/test-gw/alarm/lamp-01/lamp_failure"
        let centre = try TimedCentre(port: broker.port, topics: [topic])
        let agent = try rig.startAgent()
        _ = try rig.simControl("set lamp-01 lamp_failure 1")
        try #require(Wait.until(timeout: .seconds(10)) { centre.messages.contains { $0.body["active"] as? Bool == true } }, "no lamp_failure alarm")
        agent.kill9()
        _ = try rig.simControl("set lamp-01 lamp_failure 0")   // the lamp is replaced while the agent is down
        let start = Date().timeIntervalSince1970
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(12)) { centre.messages.contains { $0.at > start && $0.body["active"] as? Bool == false } }, "the centre still sees the lamp failure")
        let cleared = try #require(centre.messages.first { $0.at > start && $0.body["active"] as? Bool == false })
        #expect(cleared.at - start <= 10, "cleared \(cleared.at - start) s after the start")
        let retained = try TimedCentre(port: broker.port, topics: [topic])
        #expect(Wait.until(timeout: .seconds(5)) { retained.messages.last?.body["active"] as? Bool == false }, "the retained alarm is not cleared: \(retained.messages.map(\.body))")
        print("UPLINK-REASSERT lamp_failure cleared at the centre \(String(format: "%.2f", cleared.at - start)) s after start")
    }

    /// The state disk full: a signed `emergency_lower` still lowers the bollard; its reply
    /// arrives once the disk has room again, and the alarm is raised and cleared.
    @Test func emergencyLowerLowersTheBollardWithTheStateDiskFull() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let state = rig.scratch.file("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let disk: UplinkFaultTests.SmallDisk
        do {
            disk = try UplinkFaultTests.SmallDisk(mountingAt: state, size: "4m")
        } catch {
            Issue.record("cannot put the state folder on a small tmpfs (needs root: mount -t tmpfs): \(error)")
            return
        }
        defer {
            rig.agent?.kill9()
            disk.unmount()
        }
        let (key, pub) = try Self.signer(rig)
        let config = rig.agentConfig().replacingOccurrences(of: "  outbox: {max_messages: 100000, max_age: 1d}",
                                                            with: "  outbox: {max_messages: 100000, max_age: 1d}\n  centre_keys: {centre-test: \"\(pub)\"}")
        let centre = try TimedCentre(port: broker.port, topics: ["edge/v1/test-gw/reply", "edge/v1/test-gw/alarm/gateway/#"])
        try rig.startAgent(config: config)
        try #require(Wait.until(timeout: .seconds(10)) { ((try? rig.status())?["uplink"] as? [String: Any])?["connected"] as? Bool == true })
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        try #require(Wait.until(timeout: .seconds(5)) { (try? rig.device("bollard-1"))?["position"] as? String == "up" }, "the bollard did not rise")

        _ = try disk.fill()
        try Self.publish(broker.port, "edge/v1/test-gw/cmd", try Self.sign(key, id: "c-emergency", target: "bollard-1", action: "emergency_lower"))
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("bollard-1"))?["position"] as? String == "down" }, "emergency_lower did not lower the bollard with the disk full")
        try Self.publish(broker.port, "edge/v1/test-gw/cmd", try Self.sign(key, id: "c-raise", target: "bollard-1", action: "clear_emergency"))
        let alarms = { ((try? rig.status())?["alarms"] as? [[String: Any]]) ?? [] }
        #expect(Wait.until(timeout: .seconds(5)) { alarms().contains { $0["code"] as? String == "state_disk_failed" } }, "no state_disk_failed alarm in the status: \(alarms())")

        disk.free()
        #expect(Wait.until(timeout: .seconds(15)) {
            let replies = centre.messages.filter { $0.topic.hasSuffix("/reply") }.map(\.body)
            return replies.contains { $0["id"] as? String == "c-emergency" && $0["ok"] as? Bool == true }
                && replies.contains { $0["id"] as? String == "c-raise" && (($0["error"] as? [String: Any])?["code"] as? String) == "unavailable" }
        }, "the outcomes were not reported once the disk was back: \(centre.messages.map(\.body))")
        #expect(Wait.until(timeout: .seconds(10)) {
            let a = centre.messages.filter { $0.topic.hasSuffix("/state_disk_failed") }.map { $0.body["active"] as? Bool }
            return a.contains(true) && a.last == false
        }, "state_disk_failed not raised and cleared at the centre")
        #expect(try rig.safetyViolations() == 0)
    }

    /// A gateway started at "03:00" with no synchronised clock keeps its lamps at base (30), not
    /// the night level (10); once the clock is synchronised it dims to the night level.
    @Test func aGatewayStartedAt3amUnsynchronisedKeepsBaseAndDimsOnceSynced() throws {
        guard let faketime = UplinkFaultTests.libfaketime() else {
            Issue.record("libfaketime not found (apt-get install faketime): /usr/lib/*/faketime/libfaketimeMT.so.1")
            return
        }
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let config = rig.agentConfig()
            .replacingOccurrences(of: "timezone: Europe/Paris", with: "timezone: UTC")
            .replacingOccurrences(of: "    fade_down: 500ms\n", with: "    fade_down: 500ms\n    night: {base: 10, from: \"23:00\", to: \"05:00\"}\n    on: dusk\n    off: dawn\n")
        try #require(config.contains("night:") && config.contains("on: dusk"))
        _ = rig.scratch.write("agent.yaml", config + "\n")
        let real = Date().timeIntervalSince1970
        let threeAM = Int((real / 86_400).rounded(.down) * 86_400 + 3 * 3600 - real)
        let clock = UplinkFaultTests.FakeClock(rig.scratch.file("agent.faketime"), library: faketime, offset: threeAM)
        let flag = rig.scratch.file("synchronized")
        var env = clock.environment
        env["EDGE_AGENT_TIME_SYNC_FLAG"] = flag   // absent: unsynchronised
        let agent = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\"", BuildProducts.executable("edge-agent"), "--config", rig.configPath], environment: env)
        defer {
            agent.kill9()
            clock.removeSegments(of: agent)
        }
        let quality = { ((try? rig.status())?["uplink"] as? [String: Any])?["time_quality"] as? String }
        try #require(Wait.until(timeout: .seconds(15)) { quality() != nil || !agent.isRunning }, "the agent did not start: \(agent.stderr)")
        #expect(quality() == "unsynchronised")
        #expect(Wait.until(timeout: .seconds(5)) { Self.setpoint(rig, "lamp-01") == 30 }, "not at base while unsynchronised")
        // Give the schedule time to act (it runs every second): still base, never the night level.
        let schedule = { (((try? rig.status())?["lighting"] as? [String: Any])?["rue-liberte"] as? [String: Any])?["schedule"] as? Int }
        #expect(schedule() == 30, "schedule level \(schedule() ?? -1) while unsynchronised")
        #expect(Self.setpoint(rig, "lamp-01") == 30)

        _ = FileManager.default.createFile(atPath: flag, contents: Data())   // NTP has synchronised
        #expect(Wait.until(timeout: .seconds(10)) { Self.setpoint(rig, "lamp-01") == 10 }, "did not dim to the night level once synchronised: \(Self.setpoint(rig, "lamp-01") ?? -1)")
        #expect(quality() == "synchronised")
        // Presence still boosts.
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(5)) { Self.setpoint(rig, "lamp-01") == 100 })
    }
}
