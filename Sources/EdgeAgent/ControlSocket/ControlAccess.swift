#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import FoundationEssentials

/// Who may do what on the control socket, with every group already resolved to its gid
/// (when the config was loaded: no user or group lookup ever runs on a connection thread).
///
/// Rules, first match wins:
/// - root and the agent's own uid: `actuate`;
/// - a peer in the actuating group (`gateway.control_group`; without it, the agent's primary
///   group): `actuate`;
/// - a peer in the read-only group (`gateway.monitor_group`): `read`;
/// - anyone else: no role, the connection is refused.
/// "In a group" counts the peer's primary gid (SO_PEERCRED) and its supplementary groups (the
/// `Groups:` line of `/proc/<pid>/status` of the connecting process).
public struct ControlAccess: Sendable, Equatable {
    public var agentUID: UInt32
    /// The gid of `control_group`, or the agent's primary gid without one.
    public var actuateGID: UInt32
    /// The gid of `monitor_group`, if set.
    public var readGID: UInt32?
    /// Names for messages (`control_group`, `monitor_group`).
    public var actuateGroupName: String?
    public var readGroupName: String?

    public init(agentUID: UInt32, actuateGID: UInt32, readGID: UInt32?, actuateGroupName: String? = nil, readGroupName: String? = nil) {
        self.agentUID = agentUID
        self.actuateGID = actuateGID
        self.readGID = readGID
        self.actuateGroupName = actuateGroupName
        self.readGroupName = readGroupName
    }

    /// The running process's access from its validated config (gids resolved at load).
    public init(gateway: AgentConfig.Gateway) {
        self.init(agentUID: getuid(), actuateGID: gateway.controlGroupID ?? getgid(), readGID: gateway.monitorGroupID,
                  actuateGroupName: gateway.controlGroup, readGroupName: gateway.monitorGroup)
    }

    /// The role of a peer with this uid, primary gid and supplementary gids; nil: none.
    public func role(uid: UInt32, gid: UInt32, groups: [UInt32]) -> ControlRole? {
        if uid == 0 || uid == agentUID { return .actuate }
        if gid == actuateGID || groups.contains(actuateGID) { return .actuate }
        if let readGID, gid == readGID || groups.contains(readGID) { return .read }
        return nil
    }

    /// How to get a role (or a higher one), for refusals.
    func howToJoin(_ role: ControlRole) -> String {
        let group = role == .read ? (readGroupName ?? actuateGroupName) : actuateGroupName
        guard let group else { return "run it as the agent's user or group" }
        return "join group \(group) (sudo usermod -aG \(group) USER), then log in again"
    }
}

/// Group lookups by name, reentrant (getgrnam_r): for the config loader only.
enum SystemGroups {
    /// The gid of group `name`; nil when no such group exists (or the lookup fails).
    static func gid(named name: String) -> UInt32? {
        var group = Glibc.group()
        var result: UnsafeMutablePointer<Glibc.group>?
        var size = 1024
        while size <= 1 << 20 {
            var buffer = [CChar](repeating: 0, count: size)
            let rc = getgrnam_r(name, &group, &buffer, size, &result)
            if rc == ERANGE { size *= 4; continue }
            guard rc == 0, result != nil else { return nil }
            return group.gr_gid
        }
        return nil
    }
}

/// A connecting process's supplementary groups, from `/proc/<pid>/status` (its real groups,
/// with no user-database lookup).
enum PeerGroups {
    /// The `Groups:` of a `/proc/<pid>/status` text; nil unless its `Uid:` line has `uid` as
    /// the real or effective uid (the pid was reused by another process, or the text is not a
    /// status file).
    static func parse(status: String, uid: UInt32) -> [UInt32]? {
        var groups: [UInt32]?
        var uidMatches = false
        for line in status.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("Uid:") {
                let ids = line.dropFirst(4).split(whereSeparator: { $0 == " " || $0 == "\t" }).prefix(2).compactMap { UInt32($0) }
                uidMatches = ids.contains(uid)
            } else if line.hasPrefix("Groups:") {
                var list: [UInt32] = []
                for field in line.dropFirst(7).split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                    guard let g = UInt32(field) else { return nil }
                    list.append(g)
                }
                groups = list
            }
        }
        return uidMatches ? groups : nil
    }

    /// The supplementary groups of process `pid` running as `uid`; nil when unreadable.
    static func of(pid: Int32, uid: UInt32) -> [UInt32]? {
        guard pid > 0 else { return nil }
        guard let status = FilePaths.readProcFile("/proc/\(pid)/status", limit: 1 << 16) else { return nil }
        return parse(status: status, uid: uid)
    }
}
