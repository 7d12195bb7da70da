#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// The real edgectl binary: output, --json and the contract's exit codes.
@Suite(.serialized)
struct EdgectlTests {
    @Test func statusShowsTheGatewayAtAGlanceAndJSONParses() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["lamp-01"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        let r = try rig.edgectl(["status"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("gateway test-gw"))
        #expect(r.stdout.contains("uplink"))
        #expect(r.stdout.contains("lamp-01"))
        #expect(r.stdout.contains("bollard-1"))
        #expect(r.stdout.contains("loop"))
        let json = try rig.edgectl(["status", "--json"])
        #expect(json.status == 0)
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(obj?["gateway"] as? String == "test-gw")
    }

    /// A command the control loop does not take within 3 s is answered `timeout` and never
    /// runs later: with the loop hung for 5 s (test hook), `lamp set` is refused `timeout`, and
    /// once the loop runs again (its first step drains the queue, before the status snapshot
    /// that follows) the group has no override.
    @Test func aCommandAnsweredTimeoutNeverRunsAfterTheLoopRecovers() throws {
        let rig = try FieldRig()
        try rig.startAgent(environment: ["EDGE_AGENT_TEST_HOOKS": "1"])
        _ = try controlRequest(socketPath: rig.agentSocket, #"{"verb":"debug.hang-loop","args":{"duration_s":5}}"#, timeout: .milliseconds(100))
        let r = try rig.edgectl(["lamp", "set", "rue-liberte", "80", "--for", "10m"])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("timeout") && r.stderr.contains("not run"), "\(r.stderr)")
        var status: [String: Any] = [:]
        #expect(Wait.until(timeout: .seconds(15)) { (try? rig.status()).map { status = $0 } != nil })
        let group = (status["lighting"] as? [String: Any])?["rue-liberte"] as? [String: Any]
        #expect(group != nil && group?["override"] == nil, "the command answered timeout ran anyway: \(group ?? [:])")
    }

    @Test func lampSetOverridesAndReleaseReturnsToBase() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let set = try rig.edgectl(["lamp", "set", "lamp-01", "80", "--for", "10m"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 80 })
        #expect(try rig.device("lamp-02")["setpoint"] as? Int == 30)
        #expect(try rig.edgectl(["lamp", "release", "lamp-01"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        // Out of range is a usage error caught before the agent.
        #expect(try rig.edgectl(["lamp", "set", "lamp-01", "180"]).status == 2)
        // Unknown target: refused by the agent.
        let unknown = try rig.edgectl(["lamp", "set", "lamp-99", "50"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown_target"))
    }

    @Test func priorityRequestAndCancelDriveTheRequestCoil() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["junction"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        #expect(try rig.edgectl(["priority", "request", "north", "--vehicle", "bus-17", "--line", "L5"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
        #expect(try rig.edgectl(["priority", "cancel", "north", "--vehicle", "bus-17"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == false })
    }

    @Test func ioWriteNeedsMaintenanceMode() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let refused = try rig.edgectl(["io", "write", "lamp-01", "fade", "2"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("maintenance"))
        let read = try rig.edgectl(["io", "read", "lamp-01", "--json"])
        #expect(read.status == 0)
        #expect(read.stdout.contains("\"online\""))
    }

    @Test func bollardVerbsGoThroughTheInterlocksAndNameTheBlockingInput() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        func position() -> String? { ((try? rig.status()["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any])?["position"] as? String }
        #expect(Wait.until(timeout: .seconds(10)) { position() == "down" })
        // A vehicle on the loop: refused, exit 1, and the message names the input.
        _ = try rig.simControl("set bollard-1 loop 1")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.status()["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any])?["loop"] as? Bool == true })
        let blocked = try rig.edgectl(["bollard", "raise", "bollard-1"])
        #expect(blocked.status == 1)
        #expect(blocked.stderr.contains("vehicle loop occupied"), "\(blocked.stderr)")
        _ = try rig.simControl("set bollard-1 loop 0")
        // Emergency lowering outranks everything and holds until cleared.
        let emergency = try rig.edgectl(["bollard", "emergency-lower", "bollard-1"])
        #expect(emergency.status == 0, "\(emergency.stderr)")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.status()["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any])?["loop"] as? Bool == false })
        let held = try rig.edgectl(["bollard", "raise", "bollard-1", "--json"])
        #expect(held.status == 1)
        #expect(held.stderr.contains("emergency"), "\(held.stderr)")
        #expect(try rig.edgectl(["bollard", "clear", "bollard-1"]).status == 0)
        // Clear road, no emergency: the raise runs (pre-warning, then up) and lower brings it down.
        let raise = try rig.edgectl(["bollard", "raise", "bollard-1"])
        #expect(raise.status == 0, "\(raise.stderr)")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "up" })
        #expect(try rig.edgectl(["bollard", "lower", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.safetyViolations() == 0)
        // Unknown bollard: refused with the contract's code.
        let unknown = try rig.edgectl(["bollard", "raise", "bollard-9"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("unknown_target"))
    }

    @Test func maintenanceModeAllowsRawWritesAndAnOfflineDeviceIsNamed() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        #expect(try rig.edgectl(["maintenance", "on"]).status == 0)
        let write = try rig.edgectl(["io", "write", "lamp-01", "fade", "7"])
        #expect(write.status == 0, "\(write.stderr)")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("lamp-01")["fade"] as? Double).map { abs($0 - 7) < 0.01 } == true }, "\((try? rig.device("lamp-01")) ?? [:])")
        // The bollard's up coil stays the controller's, even in maintenance.
        let motor = try rig.edgectl(["io", "write", "bollard-1", "motor_up", "1"])
        #expect(motor.status == 1)
        #expect(try rig.device("bollard-1")["motor_up"] as? Bool == false)
        // A unit that does not answer: the technician is told which device is offline.
        _ = try rig.simControl("set lamp-02 offline 1")
        #expect(Wait.until(timeout: .seconds(8)) {
            ((try? rig.status()["devices"] as? [String: Any])?["lamp-02"] as? [String: Any])?["online"] as? Bool == false
        })
        let offline = try rig.edgectl(["io", "write", "lamp-02", "fade", "3"])
        #expect(offline.status == 1)
        #expect(offline.stderr.contains("lamp-02"), "\(offline.stderr)")
        #expect(offline.stderr.contains("device_offline") || offline.stderr.contains("offline"), "\(offline.stderr)")
        #expect(try rig.edgectl(["maintenance", "off"]).status == 0)
        #expect(try rig.edgectl(["io", "write", "lamp-01", "fade", "2"]).status == 1)
    }

    @Test func agentDownGivesExit3WithAClearMessage() throws {
        let scratch = ScratchDir()
        let r = try runCommand(BuildProducts.executable("edgectl"), ["--socket", scratch.file("none.sock"), "status"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("not running"))
        #expect(r.stderr.contains("systemctl status edge-agent"))
    }

    @Test func configCheckValidatesWithoutStarting() throws {
        let rig = try FieldRig()
        let good = rig.scratch.write("agent.yaml", rig.agentConfig())
        let ok = try runCommand(BuildProducts.executable("edgectl"), ["config", "check", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("ok"))
        let bad = rig.scratch.write("bad.yaml", rig.agentConfig().replacingOccurrences(of: "unit: 30", with: "unit: 300"))
        let r = try runCommand(BuildProducts.executable("edgectl"), ["config", "check", bad])
        #expect(r.status == 1)
        #expect(r.stderr.contains("bad.yaml:"))
        #expect(r.stderr.contains("devices.bollard-1.unit"))
    }
}

/// The control socket's access rules and the technician's live view, with real processes.
@Suite(.serialized)
struct EdgectlAccessTests {
    /// A copy of edgectl any user can run (the build folder may not be traversable by others).
    static func publicEdgectl(_ scratch: ScratchDir) throws -> String {
        let dest = scratch.file("edgectl")
        try? FileManager.default.removeItem(atPath: dest)
        try FileManager.default.copyItem(atPath: BuildProducts.executable("edgectl"), toPath: dest)
        chmod(scratch.path, 0o755)
        chmod(dest, 0o755)
        return dest
    }

    @Test func aPeerOutsideTheGroupIsRefusedWithTheGroupToJoin() throws {
        guard getuid() == 0, let setpriv = which("setpriv") else {
            Issue.record("needs root and setpriv (util-linux) to run edgectl as a second uid")
            return
        }
        let rig = try FieldRig()
        try rig.startAgent()
        let edgectl = try Self.publicEdgectl(rig.scratch)
        // 1. The socket file is 0660: another uid cannot even connect.
        var st = stat()
        #expect(stat(rig.agentSocket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o660)
        let r = try runCommand(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", edgectl, "--socket", rig.agentSocket, "bollard", "raise", "bollard-1"])
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("permission denied"))
        #expect(r.stderr.contains("group"))
        // 2. Even with the file mode loosened, the agent checks SO_PEERCRED itself.
        chmod(rig.agentSocket, 0o666)
        let r2 = try runCommand(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", edgectl, "--socket", rig.agentSocket, "bollard", "raise", "bollard-1"])
        #expect(r2.status == 1, "\(r2.stdout) \(r2.stderr)")
        #expect(r2.stderr.contains("uid 65534 may not use the control socket"))
        #expect(try rig.device("bollard-1")["motor_up"] as? Bool == false)
        #expect(rig.agent?.stderr.contains("control connection refused") == true)
    }

    /// The config with technicians in `staff` and the read-only group `users` (both Debian
    /// base groups, resolved by the agent when it loads the config).
    static func withGroups(_ rig: FieldRig, control: String = "staff", monitor: String? = "users") -> String {
        rig.agentConfig().replacingOccurrences(of: "  control_socket: \(rig.agentSocket)\n",
                                               with: "  control_socket: \(rig.agentSocket)\n  control_group: \(control)\n" + (monitor.map { "  monitor_group: \($0)\n" } ?? ""))
    }

    static var canSwitchUsers: Bool { getuid() == 0 && which("setpriv") != nil && getgrnam("staff") != nil && getgrnam("users") != nil }

    /// Real processes of a second uid (nobody) with real supplementary groups (setpriv): a
    /// member of the read-only group reads but cannot actuate; a member of the technicians'
    /// group, by a supplementary group only, actuates; a peer in neither is refused.
    @Test(.enabled(if: EdgectlAccessTests.canSwitchUsers, "needs root, setpriv and the groups staff and users"))
    func theReadOnlyGroupMayReadButNotActuate() throws {
        let setpriv = which("setpriv")!
        let staff = getgrnam("staff")!.pointee.gr_gid, users = getgrnam("users")!.pointee.gr_gid
        let rig = try FieldRig()
        try rig.startAgent(config: Self.withGroups(rig))
        let edgectl = try Self.publicEdgectl(rig.scratch)
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        func run(_ groups: [gid_t], primary: gid_t = 65534, _ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let g = groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.map(String.init).joined(separator: ",")]
            return try runCommand(setpriv, ["--reuid=65534", "--regid=\(primary)"] + g + [edgectl, "--socket", rig.agentSocket] + args)
        }
        // With a read-only group the socket is 0666: the agent's check is what keeps others out.
        var st = stat()
        #expect(stat(rig.agentSocket, &st) == 0 && st.st_mode & 0o777 == 0o666)

        // Read-only, by a supplementary group: status and io read work...
        let status = try run([users], ["status", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("\"gateway\""))
        #expect(try run([users], ["io", "read", "lamp-01", "--json"]).status == 0)
        // ...actuating does not, and nothing moves.
        for args in [["bollard", "raise", "bollard-1"], ["lamp", "set", "lamp-01", "80", "--for", "1m"], ["maintenance", "on"]] {
            let r = try run([users], args)
            #expect(r.status == 1, "\(args): \(r.stdout) \(r.stderr)")
            #expect(r.stderr.contains("may only read"), "\(r.stderr)")
            #expect(r.stderr.contains("join group staff"), "\(r.stderr)")
        }
        // Read-only by the primary group too.
        #expect(try run([], primary: users, ["status", "--json"]).status == 0)
        #expect(try run([], primary: users, ["bollard", "raise", "bollard-1"]).status == 1)
        #expect(try rig.device("bollard-1")["motor_up"] as? Bool == false)
        #expect(rig.agent?.stderr.contains("control request refused: read-only peer") == true)

        // Technicians by a supplementary group only (the primary gid is nobody's).
        let lower = try run([users, staff], ["bollard", "lower", "bollard-1"])
        #expect(lower.status == 0, "\(lower.stdout) \(lower.stderr)")
        // Neither group: refused at connect.
        let none = try run([], ["status"])
        #expect(none.status == 1 && none.stderr.contains("may not use the control socket"), "\(none.stderr)")
    }

    /// One user's flood of idle connections (more than the 16 the agent serves at once) takes
    /// 4 slots: the rest get `busy` at once, and another user is still served.
    @Test(.enabled(if: EdgectlAccessTests.canSwitchUsers, "needs root, setpriv and the groups staff and users"))
    func aFloodOfIdleConnectionsDoesNotLockOtherUsersOut() throws {
        let setpriv = which("setpriv")!
        let staff = getgrnam("staff")!.pointee.gr_gid
        let rig = try FieldRig()
        try rig.startAgent(config: Self.withGroups(rig, monitor: nil))
        let edgectl = try Self.publicEdgectl(rig.scratch)
        // Root opens 20 connections and sends nothing.
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        for _ in 0..<20 {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in rig.agentSocket.utf8.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            #expect(rc == 0)
            flood.append(fd)
        }
        // Accepted in order: the first 4 are served (and stay silent), the other 16 are told busy.
        var busy = 0
        for fd in flood[4...] {
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = recv(fd, &buffer, 512, 0)
            if n > 0, String(decoding: buffer[..<n], as: UTF8.self).contains("\"busy\"") { busy += 1 }
        }
        #expect(busy == 16, "root holds 4 connections, the other 16 are refused busy")
        for fd in flood[..<4] {
            var byte: UInt8 = 0
            #expect(recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) == -1 && errno == EAGAIN, "an admitted idle connection is left open")
        }
        // Another user is served while root's idle connections are open.
        let r = try runCommand(setpriv, ["--reuid=65534", "--regid=65534", "--groups=\(staff)", edgectl, "--socket", rig.agentSocket, "status", "--json"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        // Root itself is told why.
        let root = try rig.edgectl(["status"])
        #expect(root.status == 1 && root.stderr.contains("too many control connections of uid 0"), "\(root.stderr)")
    }

    @Test func localActuatingRequestsAreAuditedWithThePeerUid() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.edgectl(["bollard", "lower", "bollard-1"]).status == 0)
        let audit = (try? String(contentsOfFile: rig.scratch.file("state/audit.log"), encoding: .utf8)) ?? ""
        #expect(audit.contains("local:uid=\(getuid())"))
        #expect(audit.contains("\"action\":\"lower\""))
    }

    /// `watch --json` prints one status document per refresh, one per line (JSON Lines), and
    /// a script following it sees the gateway change.
    @Test func watchJSONPrintsOneStatusDocumentPerRefresh() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 100 })
        let r = try rig.edgectl(["watch", "--json", "--every", "100ms", "--count", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == 3, "\(r.stdout)")
        #expect(r.stdout.hasSuffix("\n"))
        #expect(!r.stdout.contains("\u{1B}"), "no terminal control codes in JSON output")
        for line in lines {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(obj?["gateway"] as? String == "test-gw", "\(line)")
            let group = (obj?["lighting"] as? [String: Any])?["rue-liberte"] as? [String: Any]
            #expect(group != nil, "\(line)")
        }
    }

    /// A technician fixing a config by hand sees every problem of the file in one run, from
    /// `edgectl config check` (exit 1) and from the agent at start (exit 78).
    @Test func configCheckAndTheAgentReportEveryProblemOfTheFile() throws {
        let rig = try FieldRig()
        let text = rig.agentConfig()
            .replacingOccurrences(of: "  timezone: Europe/Paris\n", with: "  timezone: Europe/Pariss\n")
            .replacingOccurrences(of: "    hold: 1s\n", with: "    hodl: 1s\n")
            .replacingOccurrences(of: "max_hold: 4s,", with: "max_hold: 4,")
        let file = rig.scratch.write("broken.yaml", text)
        func line(_ needle: String) -> Int { text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(needle) }! + 1 }
        let expected = [
            "\(file):\(line("timezone:")): gateway.timezone: unknown time zone \"Europe/Pariss\"",
            "\(file):\(line("hodl:")): lighting.rue-liberte.hodl: unknown key \"hodl\" (did you mean \"hold\"?)",
            "\(file):\(line("max_hold:")): priority.north.max_hold: bad duration \"4\"",
        ]
        let check = try rig.edgectl(["config", "check", file])
        #expect(check.status == 1)
        let lines = check.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(check.stderr)")
        for (i, e) in expected.enumerated() { #expect(lines.count > i && lines[i].hasPrefix(e), "line \(i): \(check.stderr)") }
        #expect(lines.last == "\(file): 3 problems")
        let json = try rig.edgectl(["config", "check", file, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect((obj?["errors"] as? [[String: Any]])?.map { $0["key"] as? String } == ["gateway.timezone", "lighting.rue-liberte.hodl", "priority.north.max_hold"])

        let agent = try runCommand(BuildProducts.executable("edge-agent"), ["--config", file], timeout: .seconds(20))
        #expect(agent.status == 78)
        for e in expected { #expect(agent.stderr.contains(e), "\(agent.stderr)") }
    }

    /// The contract: `--json` on every read verb, each printing JSON that parses.
    @Test func everyReadVerbTakesJSON() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let configFile = rig.scratch.write("checked.yaml", rig.agentConfig())
        for verb in [["status"], ["watch", "--count", "1"], ["io", "read", "lamp-01"], ["config", "check", configFile]] {
            let r = try rig.edgectl(verb + ["--json"])
            #expect(r.status == 0, "\(verb): \(r.stderr)")
            #expect((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) is [String: Any], "\(verb): \(r.stdout)")
        }
    }

    @Test func watchShowsAChangingLevelInARealTerminal() throws {
        guard let tmux = which("tmux") else {
            Issue.record("tmux is not installed (scripts/setup.sh installs it)")
            return
        }
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("lamp-01")["setpoint"] as? Int) == 30 })
        let session = "edgectl-watch-\(getpid())"
        let socket = rig.scratch.file("tmux.sock")
        defer { _ = try? runCommand(tmux, ["-S", socket, "kill-server"]) }
        // The tmux server outlives its client and would inherit Foundation's exit-watch
        // socket, so Process would never see the client exit: close every fd above 2 first.
        let start = try runCommand("/bin/bash", ["-c", "for fd in $(ls /proc/$$/fd); do [ $fd -gt 2 ] && eval \"exec $fd>&-\" 2>/dev/null; done; exec '\(tmux)' -S '\(socket)' new-session -d -s \(session) -x 120 -y 50 "
            + "\"'\(BuildProducts.executable("edgectl"))' --socket '\(rig.agentSocket)' watch --every 200ms\" </dev/null >/dev/null 2>&1"],
            timeout: .seconds(20))
        #expect(start.status == 0, "\(start.stderr)")
        func screen() -> String { (try? runCommand(tmux, ["-S", socket, "capture-pane", "-p", "-t", session]).stdout) ?? "" }
        func levelLine() -> String? { screen().split(separator: "\n").first { $0.contains("rue-liberte") }.map(String.init) }
        #expect(Wait.until(timeout: .seconds(10)) { levelLine()?.contains("30 %") == true }, "screen: \(screen())")
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(10)) { levelLine()?.contains("100 %") == true }, "screen: \(screen())")
        #expect(screen().contains("gateway test-gw"))
    }
}
