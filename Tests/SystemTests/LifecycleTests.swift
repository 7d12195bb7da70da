#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The agent's lifecycle with whole processes (issue 13): reloads that every service takes
/// (keys, targets), commands during reloads, a reload that cannot open GPIO, and a start
/// without a usable uplink.
@Suite(.serialized)
struct LifecycleTests {
    typealias Centre = UplinkSystemTests.Centre
    static let cmd = "edge/v1/test-gw/cmd"

    static func sign(_ keyFile: String, kid: String = "centre-test", id: String, target: String, action: String, args: String = "{}") throws -> String {
        let r = try runCommand(BuildProducts.executable("edgectl"), ["sign", "--key", keyFile, "--kid", kid, "--gw", "test-gw", "--target", target,
                                                                      "--action", action, "--args", args, "--id", id, "--valid", "120s"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func withKeys(_ config: String, _ keys: String) -> String {
        config.replacingOccurrences(of: "  outbox: {max_messages: 100000, max_age: 1d}",
                                    with: "  outbox: {max_messages: 100000, max_age: 1d}\n  centre_keys: {\(keys)}")
    }

    /// `edgectl config reload` (its options after the subcommand: ArgumentParser does not take
    /// them before a nested command group).
    static func reload(_ rig: FieldRig) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(BuildProducts.executable("edgectl"), ["config", "reload", "--json", "--socket", rig.agentSocket], timeout: .seconds(20))
    }

    static func generation(_ rig: FieldRig) -> Int? { (try? rig.status())?["generation"] as? Int }

    static func reply(_ centre: Centre, _ id: String) -> [String: Any]? { centre.replies().first { $0["id"] as? String == id } }

    static func code(_ reply: [String: Any]?) -> String? { (reply?["error"] as? [String: Any])?["code"] as? String }

    @Test func keyRotationBySIGHUPTakesTheNewKeyAndRefusesTheOld() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (oldKey, oldPub) = try rig.centreKey("old.key")
        let (newKey, newPub) = try rig.centreKey("new.key")
        try rig.startAgent(config: Self.withKeys(rig.agentConfig(), "centre-test: \"\(oldPub)\""))
        let centre = try Centre(port: broker.port, topic: "edge/v1/test-gw/reply")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true })

        // Before the rotation the new key is not trusted.
        try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: Self.sign(newKey, kid: "centre-2", id: "k-new-early", target: "gateway", action: "ping"))
        #expect(Wait.until(timeout: .seconds(10)) { Self.reply(centre, "k-new-early") != nil })
        #expect(Self.reply(centre, "k-new-early")?["ok"] as? Bool == false)

        _ = rig.scratch.write("agent.yaml", Self.withKeys(rig.agentConfig(), "centre-2: \"\(newPub)\""))
        rig.agent?.signal(SIGHUP)
        #expect(Wait.until(timeout: .seconds(10)) { Self.generation(rig) == 2 }, "the reload did not take effect")

        try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: Self.sign(newKey, kid: "centre-2", id: "k-new", target: "rue-liberte", action: "set_level", args: "{\"level\":70,\"duration_s\":60}"))
        try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: Self.sign(oldKey, kid: "centre-test", id: "k-old", target: "gateway", action: "ping"))
        #expect(Wait.until(timeout: .seconds(10)) { Self.reply(centre, "k-new") != nil && Self.reply(centre, "k-old") != nil })
        #expect(Self.reply(centre, "k-new")?["ok"] as? Bool == true, "\(String(describing: Self.reply(centre, "k-new")))")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 70 })
        #expect(Self.reply(centre, "k-old")?["ok"] as? Bool == false)
        #expect(["unknown_key", "bad_signature"].contains(Self.code(Self.reply(centre, "k-old")) ?? ""), "\(String(describing: Self.reply(centre, "k-old")))")
    }

    @Test func aTargetAddedByReloadIsAccepted() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (key, pub) = try rig.centreKey()
        let full = Self.withKeys(rig.agentConfig(), "centre-test: \"\(pub)\"")
        // Without the approach `north` (and its three devices) first.
        let without = full.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("priority:") && !$0.hasPrefix("  north:") && !$0.contains("bus-in-n:") && !$0.contains("bus-out-n:") && !$0.contains("junction:") }
            .joined(separator: "\n")
        try rig.startAgent(config: without)
        let centre = try Centre(port: broker.port, topic: "edge/v1/test-gw/reply")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true })
        let request = "{\"vehicle\":\"bus-12\",\"line\":\"L5\",\"eta_s\":30}"
        try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: Self.sign(key, id: "t-before", target: "north", action: "priority_request", args: request))
        #expect(Wait.until(timeout: .seconds(10)) { Self.reply(centre, "t-before") != nil })
        #expect(Self.code(Self.reply(centre, "t-before")) == "unknown_target")

        _ = rig.scratch.write("agent.yaml", full)
        let r = try Self.reload(rig)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(Self.generation(rig) == 2)
        try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: Self.sign(key, id: "t-after", target: "north", action: "priority_request", args: request))
        #expect(Wait.until(timeout: .seconds(10)) { Self.reply(centre, "t-after") != nil })
        #expect(Self.reply(centre, "t-after")?["ok"] as? Bool == true, "\(String(describing: Self.reply(centre, "t-after")))")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
    }

    /// 50 commands, half from the control socket and half from the centre, while the config is
    /// reloaded 20 times back to back: every one is answered, exactly once, and none is lost.
    @Test func commandsDuringBackToBackReloadsAreAllAnsweredExactlyOnce() throws {
        let broker = try MosquittoBroker()
        let rig = try FieldRig(brokerPort: broker.port)
        let (key, pub) = try rig.centreKey()
        try rig.startAgent(config: Self.withKeys(rig.agentConfig(), "centre-test: \"\(pub)\""))
        let centre = try Centre(port: broker.port, topic: "edge/v1/test-gw/reply")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["uplink"] as? [String: Any])?["connected"] as? Bool == true })
        let payloads = try (0..<25).map { i in
            try Self.sign(key, id: "r-\(i)", target: "rue-liberte", action: "set_level", args: "{\"level\":\(40 + i),\"duration_s\":600}")
        }

        let reloads = Counter()
        let reloader = Thread {
            for _ in 0..<20 {
                if let r = try? Self.reload(rig), r.status == 0 { reloads.add() }
            }
        }
        let socketAnswers = Counter()
        let socketFailures = Lines()
        let socketUser = Thread {
            for i in 0..<25 {
                guard let r = try? rig.edgectl(["lamp", "set", "lamp-01", "\(50 + i)", "--for", "10m", "--json"]) else { continue }
                // Answered = run, or refused with a definitive reason (a device the new generation
                // has not polled yet is refused `device_offline`); never `timeout` (maybe run later).
                if r.status == 0 || (r.status == 1 && r.stderr.contains("refused:") && !r.stderr.contains("timeout")) {
                    socketAnswers.add()
                } else {
                    socketFailures.add("\(r.status) \(r.stdout) \(r.stderr)")
                }
            }
        }
        reloader.start()
        socketUser.start()
        for p in payloads {
            try UplinkSystemTests.publish(port: broker.port, topic: Self.cmd, payload: p)
        }
        #expect(Wait.until(timeout: .seconds(60)) { reloads.value == 20 && socketAnswers.value == 25 }, "reloads \(reloads.value), socket \(socketAnswers.value): \(socketFailures.all)")
        #expect(Wait.until(timeout: .seconds(30)) { Set(centre.replies().compactMap { $0["id"] as? String }).count >= 25 })
        Thread.sleep(forTimeInterval: 1)   // a duplicate reply would arrive by now
        let replies = centre.replies()
        for i in 0..<25 {
            let mine = replies.filter { $0["id"] as? String == "r-\(i)" }
            #expect(mine.count == 1, "r-\(i): \(mine)")
            #expect(mine.first?["ok"] as? Bool == true, "r-\(i): \(mine)")
        }
        #expect(Self.generation(rig) == 21)
        #expect(rig.agent?.isRunning == true)
    }

    @Test func aReloadWhoseGPIOCannotOpenKeepsTheOldSetupRunning() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        // The new config passes every check, but its board's GPIO chip is not there.
        _ = rig.scratch.write("board-real.yaml", """
        name: real-board
        description: a board whose GPIO chip is missing
        gpio:
          backend: libgpiod
          lines:
            presence-a: {chip: gpiochip9, offset: 0, direction: input, debounce: 5ms}
            bus-detect-north: {chip: gpiochip9, offset: 1, direction: input, debounce: 5ms}
            stopline-north: {chip: gpiochip9, offset: 2, direction: input, debounce: 5ms}
        """)
        let broken = rig.agentConfig().replacingOccurrences(of: "board: board.yaml", with: "board: board-real.yaml")
        #expect(try runCommand(BuildProducts.executable("edgectl"), ["config", "check", rig.scratch.write("broken.yaml", broken)]).status == 0)
        _ = rig.scratch.write("agent.yaml", broken)
        let r = try Self.reload(rig)
        #expect(r.status != 0, "the reload should have been refused: \(r.stdout)")
        #expect(Self.generation(rig) == 1)
        // The old setup still controls: presence on the simulated GPIO line boosts the lamps.
        _ = try rig.simControl("gpio presence-a 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 100 }, "presence no longer boosts: the old setup is gone")
        #expect(rig.agent?.isRunning == true)
    }

    /// Settled after start (10 s), and again after a SIGHUP reload, the agent gives its start-up
    /// pages back (`ResidentPages`: its code and read-only data, never relocated data) and goes on
    /// controlling: presence still boosts the lamps and a reload still takes effect.
    @Test func theAgentGivesBackItsStartUpPagesAndKeepsControlling() throws {
        let rig = try FieldRig()
        let agent = try rig.startAgent(arguments: ["--log-level", "debug"])
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let released = { agent.stderr.components(separatedBy: "start-up pages released").count - 1 }
        #expect(Wait.until(timeout: .seconds(30)) { released() >= 1 }, "no release logged: \(agent.stderr.suffix(2000))")
        let line = agent.stderr.split(separator: "\n").first { $0.contains("start-up pages released") }.map(String.init) ?? ""
        #expect(line.contains("refused=0"), "\(line)")
        #expect(!line.contains("kib=0 "), "nothing was resident to release: \(line)")
        _ = try rig.simControl("gpio presence-a 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 100 }, "presence no longer boosts after the release")
        agent.signal(SIGHUP)
        #expect(Wait.until(timeout: .seconds(10)) { Self.generation(rig) == 2 })
        #expect(Wait.until(timeout: .seconds(30)) { released() >= 2 }, "no release after the reload: \(agent.stderr.suffix(2000))")
        _ = try rig.simControl("gpio presence-a 0")
        #expect(try rig.edgectl(["status", "--json"]).status == 0)
        #expect(agent.isRunning, "the agent exited: \(agent.stderr.suffix(2000))")
    }

    /// The agent runs as an unprivileged user whose TLS key it cannot read: the uplink cannot be
    /// set up, yet lighting and the bollard answer `edgectl`, and the status names the alarm.
    @Test func anUnreadableTLSKeyStillLetsEdgectlRunTheLightingAndTheBollard() throws {
        let ca = try TestCA()
        let rig = try FieldRig()
        let key = rig.scratch.file("client.key")
        #expect(copyfile(ca.clientKey, key))
        chmod(key, 0o600)                 // root's, unreadable to the agent's user
        chmod(rig.scratch.path, 0o777)    // the agent's user writes its state and socket here
        chmod(rig.simSocket, 0o666)
        for f in ["ca.pem": ca.caCert, "client.pem": ca.clientCert] { #expect(copyfile(f.value, rig.scratch.file(f.key))); chmod(rig.scratch.file(f.key), 0o644) }
        let config = rig.agentConfig()
            .replacingOccurrences(of: "broker: mqtt://127.0.0.1:\(rig.brokerPort)", with: "broker: mqtts://127.0.0.1:\(rig.brokerPort)\n  tls: {ca: \(rig.scratch.file("ca.pem")), cert: \(rig.scratch.file("client.pem")), key: \(key)}")
        _ = rig.scratch.write("agent.yaml", config)
        chmod(rig.configPath, 0o644)
        chmod(rig.scratch.file("board.yaml"), 0o644)
        let agent = try ChildProcess("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                                                         BuildProducts.executable("edge-agent"), "--config", rig.configPath])
        defer { agent.kill9() }
        #expect(Wait.until(timeout: .seconds(15)) { (try? rig.edgectl(["status", "--json"]).status) == 0 || !agent.isRunning },
                "edge-agent did not come up: \(agent.stderr)")
        #expect(agent.isRunning, "the agent exited: \(agent.stderr)")
        let status = try rig.status()
        let alarms = (status["alarms"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String }
        #expect(alarms.contains("uplink_unavailable"), "\(alarms)")
        // Lighting from edgectl.
        #expect(try rig.edgectl(["lamp", "set", "lamp-01", "85", "--for", "1m"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 85 })
        // The bollard from edgectl: raised, then lowered.
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "up" })
        #expect(try rig.edgectl(["bollard", "lower", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.safetyViolations() == 0)
    }
}

/// Lines collected by a test's threads.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

private func copyfile(_ from: String, _ to: String) -> Bool {
    (try? FileManager.default.copyItem(atPath: from, toPath: to)) != nil
}
