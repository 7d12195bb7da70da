#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Loopback helpers for tests: every test server binds 127.0.0.1 only.
public enum Loopback {
    /// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back, close).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket() failed: \(errno)")
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp -> Int32 in
                if bind(fd, sp, len) != 0 { return -1 }
                return getsockname(fd, sp, &len)
            }
        }
        precondition(rc == 0, "bind/getsockname failed: \(errno)")
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// True when something accepts TCP connections on 127.0.0.1:`port`.
    public static func isListening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return rc == 0
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
