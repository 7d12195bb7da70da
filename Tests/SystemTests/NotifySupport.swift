#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport

/// systemd's side of `Type=notify` for system tests: a real unix datagram socket bound at a
/// path (what `$NOTIFY_SOCKET` names), read on its own thread, each datagram kept with the
/// monotonic time it arrived. Closed (and the thread ended) when released.
final class NotifyListener: @unchecked Sendable {
    /// One datagram as received.
    struct Message: Sendable {
        var at: ContinuousClock.Instant
        var text: String
        /// The `KEY=value` assignments, one per line.
        var assignments: [String] { text.split(separator: "\n").map(String.init) }
    }

    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [Message] = []
    private var open = true
    private let done = DispatchSemaphore(value: 0)

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RigError("notify socket: errno \(errno)") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            close(fd)
            throw RigError("notify socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw RigError("bind \(path): errno \(e)")
        }
        let t = Thread { [self] in readLoop() }
        t.name = "notify-listener"
        t.start()
    }

    private func readLoop() {
        defer { done.signal() }
        var buf = [UInt8](repeating: 0, count: 4096)
        while lock.withLock({ open }) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) == 1 else { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard n > 0 else { continue }
            let m = Message(at: .now, text: String(decoding: buf[0..<n], as: UTF8.self))
            lock.withLock { received.append(m) }
        }
    }

    /// Every datagram so far, in arrival order.
    var messages: [Message] { lock.withLock { received } }

    /// Arrival times of `WATCHDOG=1` datagrams.
    var watchdogPings: [ContinuousClock.Instant] {
        messages.filter { $0.assignments.contains("WATCHDOG=1") }.map(\.at)
    }

    /// The first datagram carrying `assignment` (e.g. "READY=1").
    func first(_ assignment: String) -> Message? {
        messages.first { $0.assignments.contains(assignment) }
    }

    deinit {
        lock.withLock { open = false }
        _ = done.wait(timeout: .now() + 2)
        close(fd)
        unlink(path)
    }
}

/// Sends one request line to an agent's control socket and returns the reply line (or nil
/// when none came within `timeout`). Used for the test hooks edgectl has no verb for.
func controlRequest(socketPath: String, _ line: String, timeout: Duration = .seconds(5)) throws -> String? {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw RigError("control socket: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(socketPath.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard rc == 0 else { throw RigError("connect \(socketPath): errno \(errno)") }
    let out = Array((line + "\n").utf8)
    let sent = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    guard sent == out.count else { throw RigError("send to \(socketPath): errno \(errno)") }
    var reply = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline, !reply.contains(UInt8(ascii: "\n")) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 50) == 1 else { continue }
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        reply += buf[0..<n]
    }
    guard let end = reply.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
    return String(decoding: reply[..<end], as: UTF8.self)
}

extension Duration {
    /// Seconds as a Double, for readable expectations.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
