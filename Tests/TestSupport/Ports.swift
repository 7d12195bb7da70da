#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Loopback helpers for tests: every test server binds 127.0.0.1 only.
public enum Loopback {
    /// Why a loopback socket could not be set up.
    public struct SocketError: Error, CustomStringConvertible {
        public let description: String
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back, close).
    public static func freePort() -> Int {
        do {
            let (fd, port) = try listener(backlog: nil)
            close(fd)
            return port
        } catch {
            preconditionFailure("\(error)")
        }
    }

    /// 127.0.0.1:`port` (network byte order inside).
    static func address(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    /// A close-on-exec TCP socket bound to 127.0.0.1 on a port the kernel picks, listening
    /// with `backlog` (nil: bound only), and that port.
    public static func listener(backlog: Int32? = 16, reuseAddress: Bool = false) throws(SocketError) -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(description: "socket(): errno \(errno)") }
        if reuseAddress {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var addr = address(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp -> Int32 in
                if Glibc.bind(fd, sp, len) != 0 { return -1 }
                if let backlog, listen(fd, backlog) != 0 { return -1 }
                return getsockname(fd, sp, &len)
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw SocketError(description: "cannot listen on 127.0.0.1: errno \(e)")
        }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// Binds `fd` to 127.0.0.1:`port`; whether it worked.
    public static func bind(_ fd: Int32, port: Int) -> Bool {
        var addr = address(port: port)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Connects `fd` to 127.0.0.1:`port` (blocking); whether it worked.
    public static func connect(_ fd: Int32, port: Int) -> Bool {
        var addr = address(port: port)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return connect(fd, port: port)
    }

    /// Waits until `port` accepts connections or `timeout` passes; returns whether it did.
    @discardableResult
    public static func waitListening(port: Int, timeout: Duration = .seconds(10)) -> Bool {
        Wait.until(timeout: timeout) { isListening(port: port) }
    }
}

/// Polling waits with a bound, for conditions observed across processes.
public enum Wait {
    /// Polls `condition` every `interval` until it is true or `timeout` passes.
    @discardableResult
    public static func until(timeout: Duration = .seconds(10), interval: Duration = .milliseconds(20), _ condition: () throws -> Bool) rethrows -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: Double(interval.components.attoseconds) / 1e18 + Double(interval.components.seconds))
        }
        return try condition()
    }
}
