#if canImport(Glibc)
import Glibc
#endif
@testable import EdgeAgent
import Foundation
import Logging
import Testing
import TestSupport

/// Control socket roles: the decision, the peer's groups from /proc, groups resolved at load,
/// and the per-uid connection limits and idle timeout on a real socket.
@Suite struct ControlAccessTests {
    static let access = ControlAccess(agentUID: 990, actuateGID: 50, readGID: 100, actuateGroupName: "edge-tech", readGroupName: "edge-view")

    @Test func theRoleOfAPeer() {
        let a = Self.access
        #expect(a.role(uid: 0, gid: 0, groups: []) == .actuate, "root")
        #expect(a.role(uid: 990, gid: 990, groups: []) == .actuate, "the agent's own user")
        #expect(a.role(uid: 1000, gid: 50, groups: []) == .actuate, "primary group: technicians")
        #expect(a.role(uid: 1000, gid: 1000, groups: [27, 50]) == .actuate, "supplementary group: technicians")
        #expect(a.role(uid: 1000, gid: 100, groups: []) == .read, "primary group: monitors")
        #expect(a.role(uid: 1000, gid: 1000, groups: [100]) == .read, "supplementary group: monitors")
        #expect(a.role(uid: 1000, gid: 1000, groups: [100, 50]) == .actuate, "both: the higher role")
        #expect(a.role(uid: 1000, gid: 1000, groups: [27, 44]) == nil)
        let noMonitors = ControlAccess(agentUID: 990, actuateGID: 990, readGID: nil)
        #expect(noMonitors.role(uid: 1000, gid: 1000, groups: [100]) == nil)
        #expect(noMonitors.role(uid: 1000, gid: 1000, groups: [990]) == .actuate, "without control_group: the agent's group")
    }

    @Test func readVerbsNeedReadAndEveryOtherVerbActuate() {
        #expect(ControlRole.read < .actuate)
        for verb in ["status", "io.read"] { #expect(ControlProtocol.requiredRole(verb: verb) == .read) }
        for verb in ControlProtocol.commandActions.keys { #expect(ControlProtocol.requiredRole(verb: verb) == .actuate, "\(verb)") }
    }

    @Test func procStatusGroupsAreParsed() {
        let status = """
        Name:\tedgectl
        Umask:\t0022
        State:\tS (sleeping)
        Uid:\t1000\t1000\t1000\t1000
        Gid:\t1000\t1000\t1000\t1000
        FDSize:\t64
        Groups:\t4 24 27 100 1001 
        NStgid:\t4242
        """
        #expect(PeerGroups.parse(status: status, uid: 1000) == [4, 24, 27, 100, 1001])
        #expect(PeerGroups.parse(status: status, uid: 1001) == nil, "another user's process (a reused pid)")
        #expect(PeerGroups.parse(status: status.replacingOccurrences(of: "Groups:\t4 24 27 100 1001 ", with: "Groups:\t"), uid: 1000) == [])
        #expect(PeerGroups.parse(status: status.replacingOccurrences(of: "100 1001", with: "10x"), uid: 1000) == nil)
        #expect(PeerGroups.parse(status: "", uid: 0) == nil)
        // This process, read from /proc: the kernel's list.
        var ours = [gid_t](repeating: 0, count: 256)
        let n = getgroups(256, &ours)
        #expect(PeerGroups.of(pid: getpid(), uid: getuid()).map(Set.init) == Set(ours.prefix(Int(max(n, 0)))))
        #expect(PeerGroups.of(pid: -1, uid: 0) == nil)
    }

    @Test func groupsAreResolvedWhenTheConfigIsLoaded() throws {
        #expect(SystemGroups.gid(named: "root") == 0)
        #expect(SystemGroups.gid(named: "no-such-group-edge") == nil)
        let fx = ConfigFixture()
        let c = try fx.load(fx.baseText.replacingOccurrences(of: "  control_group: root\n", with: "  control_group: root\n  monitor_group: root\n"))
        #expect(c.gateway.controlGroupID == 0 && c.gateway.monitorGroupID == 0 && c.gateway.monitorGroup == "root")
        #expect(ControlAccess(gateway: c.gateway).readGID == 0)
        #expect {
            try fx.load(fx.baseText.replacingOccurrences(of: "  control_group: root\n", with: "  control_group: root\n  monitor_group: no-such-group-edge\n"))
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.key == "gateway.monitor_group" && e.line == 8 && e.message.contains("no group \"no-such-group-edge\"")
        }
    }

    /// A real socket: one uid may hold `maxPerUser` connections, the next gets a `busy` line
    /// and is closed; an idle connection is closed after the idle timeout, freeing its slot.
    @Test func perUserLimitAndIdleTimeout() throws {
        let dir = ScratchDir("ctl-limits")
        let path = dir.file("c.sock")
        let server = ControlServer(path: path, access: ControlAccess(agentUID: getuid(), actuateGID: getgid(), readGID: nil),
                                   logger: Logger(label: "test.ctl"), maxConnections: 16, maxPerUser: 2, idleTimeout: .milliseconds(300)) { _, _ in
            .success(.string("pong"))
        }
        try server.start()
        defer { server.stop() }
        let a = try ControlClient(path: path)
        let b = try ControlClient(path: path)
        #expect(try a.send(ControlRequest(verb: "status")).ok)
        #expect(try b.send(ControlRequest(verb: "status")).ok)
        let c = try ControlClient(path: path)
        let refused = try c.send(ControlRequest(verb: "status"))
        #expect(refused.code == .busy)
        #expect(refused.message?.contains("uid \(getuid())") == true)
        // Idle past the timeout: the server closes a and b, and a new connection is served.
        #expect(Wait.until(timeout: .seconds(10)) { (try? ControlClient(path: path).send(ControlRequest(verb: "status")).ok) == true })
        #expect(throws: ControlSocketError.self) { try a.send(ControlRequest(verb: "status")) }
    }
}
