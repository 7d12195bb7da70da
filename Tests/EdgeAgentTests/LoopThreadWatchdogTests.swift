#if canImport(Glibc)
import Glibc
#endif
import EdgeAgent
import Foundation
import Logging
import Protocols
import Synchronization
import Testing
import TestSupport

/// SystemdWatchdog end to end: a real loop thread, a real notify datagram socket.
struct LoopThreadWatchdogTests {
    @Test func watchdogPingsOnlyWhileTheLoopTicks() throws {
        let dir = ScratchDir("wd")
        let path = dir.file("notify.sock")
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(rc == 0)

        let block = Atomic<Bool>(false)
        let gate = DispatchSemaphore(value: 0)
        let loop = LoopThread(name: "edge-loop-wd", period: .milliseconds(5), realtimePriority: 0, logger: Logger(label: "test")) { _, _ in
            if block.load(ordering: .sequentiallyConsistent) { gate.wait() }
        }
        loop.start()
        defer {
            block.store(false, ordering: .sequentiallyConsistent)
            gate.signal()
            loop.stop()
        }
        let notifier = try #require(SystemdNotifier.fromEnvironment(["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"], pid: getpid()))
        #expect(notifier.watchdogInterval == .milliseconds(200))
        let watchdog = SystemdWatchdog(notifier: notifier, health: LoopHealth(loops: [loop], atLeast: .milliseconds(100)), logger: Logger(label: "test"))
        #expect(watchdog.pingInterval == .milliseconds(100))

        // A ticking loop is pinged for (retried: a starved CI machine may delay the first ticks).
        let pinged = Wait.until(timeout: .seconds(5)) {
            if case .pinged = watchdog.step(now: .now()) { return true }
            return false
        }
        #expect(pinged)
        #expect(receive(fd) == "WATCHDOG=1")

        block.store(true, ordering: .sequentiallyConsistent)
        #expect(Wait.until(timeout: .seconds(5)) { !watchdog.health.isHealthy(now: .now()) })
        guard case .withheld(let stalls) = watchdog.step(now: .now()) else {
            Issue.record("a stalled loop must withhold the ping")
            return
        }
        #expect(stalls.map(\.loop) == ["edge-loop-wd"])
        #expect(receive(fd, timeoutMillis: 50) == nil)

        // Pings resume once the loop is back.
        block.store(false, ordering: .sequentiallyConsistent)
        gate.signal()
        var withholding = true
        #expect(Wait.until(timeout: .seconds(5)) {
            watchdog.check(now: .now(), withholding: &withholding)
            return !withholding
        })
        #expect(receive(fd) == "WATCHDOG=1")
    }

    private func receive(_ fd: Int32, timeoutMillis: Int32 = 5000) -> String? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMillis) == 1 else { return nil }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buf[0..<n], as: UTF8.self)
    }
}
