#if canImport(Glibc)
import Glibc
#endif

/// A failed `sd_notify` datagram: the socket named by `$NOTIFY_SOCKET` and the errno.
public struct SystemdNotifyError: Error, CustomStringConvertible, Sendable {
    /// `$NOTIFY_SOCKET` as given (a path, or `@name` for an abstract socket).
    public var socket: String
    public var errno: Int32
    public var message: String
    public var description: String { message }
}

/// The systemd notification protocol without libsystemd: one datagram per state change to the
/// unix socket in `$NOTIFY_SOCKET` (a path, or an abstract name when it starts with `@`).
///
/// `fromEnvironment()` is nil when `NOTIFY_SOCKET` is unset (not run by systemd with
/// `Type=notify`): then there is nothing to send. `watchdogInterval` is set when `WATCHDOG_USEC`
/// is, and `WATCHDOG_PID` is unset or this process; send `WATCHDOG=1` at about half of it.
/// Other address kinds (`vsock:`) are not supported and read as unset.
public struct SystemdNotifier: Sendable, Equatable {
    /// Where datagrams go.
    public enum Address: Sendable, Equatable, CustomStringConvertible {
        case path(String)
        /// Linux abstract namespace (the name without the leading `@`).
        case abstract(String)

        public var description: String {
            switch self {
            case .path(let p): p
            case .abstract(let n): "@" + n
            }
        }
    }

    public var address: Address
    /// systemd's watchdog timeout for this service, when the watchdog is on for this process.
    public var watchdogInterval: Duration?

    public init(address: Address, watchdogInterval: Duration? = nil) {
        self.address = address
        self.watchdogInterval = watchdogInterval
    }

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` of this process.
    public static func fromEnvironment() -> SystemdNotifier? {
        var env: [String: String] = [:]
        for key in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        return fromEnvironment(env, pid: getpid())
    }

    /// The same from explicit variables, for process `pid` (testable; no global state).
    public static func fromEnvironment(_ env: [String: String], pid: Int32) -> SystemdNotifier? {
        guard let socket = env["NOTIFY_SOCKET"], !socket.isEmpty else { return nil }
        let address: Address
        if socket.hasPrefix("@") {
            address = .abstract(String(socket.dropFirst()))
        } else if socket.hasPrefix("/") {
            address = .path(socket)
        } else {
            return nil
        }
        var watchdog: Duration?
        if let usec = env["WATCHDOG_USEC"].flatMap({ Int64($0) }), usec > 0 {
            let forUs = env["WATCHDOG_PID"].map { $0.isEmpty || Int32($0) == pid } ?? true
            if forUs { watchdog = .microseconds(usec) }
        }
        return SystemdNotifier(address: address, watchdogInterval: watchdog)
    }

    /// Sends `state` (newline-separated `KEY=value` assignments: `READY=1`, `STATUS=…`,
    /// `WATCHDOG=1`, `STOPPING=1`) as one datagram. Calls socket(2) and sendto(2).
    public func notify(_ state: String) throws(SystemdNotifyError) {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw failure(errno, "socket") }
        defer { close(fd) }

        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let name: [UInt8]
        let offset: Int  // bytes before the name inside sun_path
        switch address {
        case .path(let p):
            name = Array(p.utf8)
            offset = 0
        case .abstract(let n):
            name = Array(n.utf8)
            offset = 1  // sun_path[0] == 0 marks the abstract namespace
        }
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        // A path needs its terminating NUL inside sun_path; an abstract name is not terminated.
        guard offset + name.count + (offset == 0 ? 1 : 0) <= capacity else { throw failure(ENAMETOOLONG, "address") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in name.enumerated() { raw[offset + i] = b }
        }
        let pathStart = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        let length = socklen_t(pathStart + offset + name.count + (offset == 0 ? 1 : 0))

        let bytes = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) { sa in
            sa.withMemoryRebound(to: sockaddr.self, capacity: 1) { sap in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sap, length) }
            }
        }
        guard sent >= 0 else { throw failure(errno, "sendto") }
        guard sent == bytes.count else { throw failure(EMSGSIZE, "sendto (short datagram)") }
    }

    private func failure(_ code: Int32, _ call: String) -> SystemdNotifyError {
        let reason = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return SystemdNotifyError(socket: address.description, errno: code,
                                  message: "sd_notify to \(address) failed in \(call): \(reason) (is NOTIFY_SOCKET from systemd still valid?)")
    }
}
