#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Protocols
import Testing
import TestSupport

/// A unix datagram socket standing in for systemd's notify socket.
final class SDNotifyTestSocket {
    let fd: Int32
    /// The NOTIFY_SOCKET value that reaches it.
    let address: String

    /// `name` starting with "@": abstract namespace; otherwise a path.
    init(_ name: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        address = name
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let abstract = name.hasPrefix("@")
        let bytes = Array((abstract ? String(name.dropFirst()) : name).utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i + (abstract ? 1 : 0)] = b }
        }
        let base = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        let length = abstract ? base + 1 + bytes.count : MemoryLayout<sockaddr_un>.size
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        try #require(rc == 0, "bind \(name): errno \(errno)")
    }

    deinit { close(fd) }

    /// The next datagram, or nil after a bounded wait.
    func receive(timeoutMillis: Int32 = 5000) -> String? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMillis) == 1 else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buf[0..<n], as: UTF8.self)
    }
}

struct SDNotifyTests {
    @Test func notifiesAPathSocket() throws {
        let dir = ScratchDir("sdnotify")
        let sock = try SDNotifyTestSocket(dir.file("notify"))
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": sock.address], pid: getpid()))
        #expect(notifier.address == .path(sock.address))
        try notifier.notify("READY=1")
        #expect(sock.receive() == "READY=1")
        try notifier.notify("STATUS=3 loops ticking, uplink connected\nREADY=1")
        #expect(sock.receive() == "STATUS=3 loops ticking, uplink connected\nREADY=1")
    }

    @Test func notifiesAnAbstractSocket() throws {
        let name = "@edge-agent-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let sock = try SDNotifyTestSocket(name)
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": name, "WATCHDOG_USEC": "3000000"], pid: getpid()))
        #expect(notifier.address == .abstract(String(name.dropFirst())))
        #expect(notifier.watchdogInterval == .seconds(3))
        try notifier.notify("WATCHDOG=1")
        #expect(sock.receive() == "WATCHDOG=1")
    }

    @Test func environmentRules() {
        #expect(SystemdNotifier.fromEnvironment([:], pid: 42) == nil)
        #expect(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": ""], pid: 42) == nil)
        #expect(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "vsock:2:1234"], pid: 42) == nil)
        #expect(SystemdNotifier.fromEnvironment(["WATCHDOG_USEC": "1000000"], pid: 42) == nil, "no socket, nothing to send")
        let plain = SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify"], pid: 42)
        #expect(plain?.watchdogInterval == nil)
        let ours = SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "42"], pid: 42)
        #expect(ours?.watchdogInterval == .seconds(20))
        let other = SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "41"], pid: 42)
        #expect(other != nil && other?.watchdogInterval == nil, "the watchdog is for another process")
        let bad = SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "soon"], pid: 42)
        #expect(bad?.watchdogInterval == nil)
    }

    @Test func aMissingSocketIsAnErrorNamingIt() {
        let dir = ScratchDir("sdnotify")
        let path = dir.file("nobody-listens")
        let notifier = SystemdNotifier(address: .path(path))
        let error = #expect(throws: SystemdNotifyError.self) { try notifier.notify("READY=1") }
        #expect(error?.errno == ENOENT)
        #expect(error?.description.contains(path) == true)
    }
}
