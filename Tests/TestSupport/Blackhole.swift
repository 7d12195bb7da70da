#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A misbehaving network path for uplink fault tests: a TCP listener on 127.0.0.1 that a
/// client (the agent) takes for its broker. What it does with a connection is decided when
/// the connection is accepted, by `mode`:
///
/// - `.silent`: accepts, reads and drops everything, never answers (a CONNECT never gets a
///   CONNACK): the client can only notice through its own timeouts (MQTT keep-alive).
/// - `.refuse`: accepts and closes at once (like a broker that is down).
/// - `.forward(port:)`: relays both ways to 127.0.0.1:`port` (a real broker); `freeze()`
///   later makes every open relay go silent mid-session (sockets stay open, nothing passes
///   either way), which is a network blackhole after the session was established.
///
/// Changing `mode` affects only connections accepted afterwards. Every thread and socket is
/// closed by `stop()` or when the value is released. Counters let a test see reconnects.
public final class Blackhole: Sendable {
    /// What happens to a newly accepted connection.
    public enum Mode: Sendable, Equatable {
        case silent
        case refuse
        case forward(port: Int)
    }

    public enum BlackholeError: Error, CustomStringConvertible {
        case socket(call: String, errno: Int32)
        case listen(Loopback.SocketError)
        public var description: String {
            switch self {
            case .socket(let call, let e): return "blackhole: \(call) failed: \(String(cString: strerror(e)))"
            case .listen(let error): return "blackhole: \(error)"
            }
        }
    }

    private let core: BlackholeCore

    /// Listens on a free 127.0.0.1 port until stopped.
    public init(mode: Mode) throws { core = try BlackholeCore(mode: mode) }

    deinit { core.stop() }

    /// The port the client connects to.
    public var port: Int { core.port }

    /// The behaviour given to connections accepted from now on.
    public var mode: Mode {
        get { core.mode }
        set { core.mode = newValue }
    }

    /// Connections accepted so far (every mode): each one is a connect attempt of the client.
    public var accepted: Int { core.accepted }

    /// Connections still open.
    public var openConnections: Int { core.openConnections }

    /// Bytes read and dropped (silent connections and frozen relays).
    public var bytesSwallowed: Int { core.bytesSwallowed }

    /// Every relay open now stops passing bytes in both directions and stays open.
    public func freeze() { core.freeze() }

    /// Closes every open connection (both sides of relays).
    public func cutAll() { core.cutAll() }

    /// Stops listening, closes every connection and waits for the threads. Idempotent.
    public func stop() { core.stop() }
}

/// The listener, its connections and their threads (which hold this, not the `Blackhole`, so
/// releasing the `Blackhole` stops them).
final class BlackholeCore: @unchecked Sendable {
    /// One accepted connection; `frozen` makes a relay drop what it reads.
    private final class Link: @unchecked Sendable {
        let client: Int32
        var upstream: Int32 = -1
        var frozen = false
        init(client: Int32) { self.client = client }
    }

    let port: Int
    private let lock = NSLock()
    private var currentMode: Blackhole.Mode
    private var links: [ObjectIdentifier: Link] = [:]
    private var acceptedCount = 0
    private var swallowedBytes = 0
    private var stopping = false
    private let listener: Int32
    /// Written once by `stop()`: every thread polls its read end and exits when it is readable.
    /// Woken once, at stop, and never drained: every thread polling it returns.
    private let stopPipe: WakePipe
    private let threads = DispatchGroup()

    init(mode: Blackhole.Mode) throws {
        currentMode = mode
        do {
            stopPipe = try WakePipe()
        } catch {
            throw Blackhole.BlackholeError.socket(call: "pipe", errno: error.errno)
        }
        // A port the kernel picks (ephemeral range), held for the blackhole's whole life: no
        // other test's client can be retrying a broker that used to be on it, and it is never
        // rebound.
        do {
            (listener, port) = try Loopback.listener(backlog: 16, reuseAddress: true)
        } catch {
            stopPipe.close()
            throw Blackhole.BlackholeError.listen(error)
        }
        threads.enter()
        let t = Thread { [self] in
            acceptLoop()
            threads.leave()
        }
        t.name = "blackhole-accept"
        t.start()
    }

    /// The behaviour given to connections accepted from now on.
    var mode: Blackhole.Mode {
        get { lock.withLock { currentMode } }
        set { lock.withLock { currentMode = newValue } }
    }

    /// Connections accepted so far (every mode): each one is a connect attempt of the client.
    var accepted: Int { lock.withLock { acceptedCount } }

    /// Connections still open.
    var openConnections: Int { lock.withLock { links.count } }

    /// Bytes read and dropped (silent connections and frozen relays).
    var bytesSwallowed: Int { lock.withLock { swallowedBytes } }

    /// Every relay open now stops passing bytes in both directions and stays open.
    func freeze() {
        lock.withLock { for l in links.values { l.frozen = true } }
    }

    /// Closes every open connection (both sides of relays).
    func cutAll() {
        lock.withLock {
            for l in links.values {
                shutdown(l.client, Int32(SHUT_RDWR))
                if l.upstream >= 0 { shutdown(l.upstream, Int32(SHUT_RDWR)) }
            }
        }
    }

    /// Stops listening, closes every connection and waits for the threads. Idempotent.
    func stop() {
        let first: Bool = lock.withLock {
            defer { stopping = true }
            return !stopping
        }
        guard first else { return }
        stopPipe.wake()
        cutAll()
        _ = threads.wait(timeout: .now() + .seconds(5))
        close(listener)
        stopPipe.close()
    }

    // MARK: - Threads

    private func acceptLoop() {
        while true {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0), pollfd(fd: stopPipe.readFD, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let client = accept(listener, nil, nil)
            if client < 0 { continue }
            let link = Link(client: client)
            let mode: Blackhole.Mode? = lock.withLock {
                if stopping { return nil }
                acceptedCount += 1
                links[ObjectIdentifier(link)] = link
                return currentMode
            }
            guard let mode else { close(client); return }
            threads.enter()
            let t = Thread { [self] in
                serve(link, mode: mode)
                lock.withLock { _ = links.removeValue(forKey: ObjectIdentifier(link)) }
                close(link.client)
                if link.upstream >= 0 { close(link.upstream) }
                threads.leave()
            }
            t.name = "blackhole-link"
            t.start()
        }
    }

    private func serve(_ link: Link, mode: Blackhole.Mode) {
        switch mode {
        case .refuse:
            return
        case .silent:
            swallow(link.client)
        case .forward(let port):
            let up = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard up >= 0 else { return }
            guard Loopback.connect(up, port: port) else { close(up); return }
            lock.withLock { link.upstream = up }
            relay(link)
        }
    }

    /// Reads and drops until the peer closes or the blackhole stops.
    private func swallow(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopPipe.readFD, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 2, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[1].revents != 0 { return }
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got <= 0 { return }
            lock.withLock { swallowedBytes += got }
        }
    }

    /// Copies both ways until either side closes; drops everything once the link is frozen.
    private func relay(_ link: Link) {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let up = link.upstream
        while true {
            var fds = [pollfd(fd: link.client, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: up, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stopPipe.readFD, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, 3, -1)
            if n < 0 { if errno == EINTR { continue } else { return } }
            if fds[2].revents != 0 { return }
            for (from, to) in [(0, up), (1, link.client)] where fds[from].revents != 0 {
                let source = from == 0 ? link.client : up
                let got = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
                if got <= 0 { return }
                if lock.withLock({ link.frozen }) {
                    lock.withLock { swallowedBytes += got }
                    continue
                }
                guard Self.sendAll(to, buffer, count: got) else { return }
            }
        }
    }

    // MARK: - Socket helpers

    private static func sendAll(_ fd: Int32, _ bytes: [UInt8], count: Int) -> Bool {
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue } else { return false } }
            offset += n
        }
        return true
    }
}
