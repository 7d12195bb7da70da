#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A TCP proxy on 127.0.0.1 between a Modbus TCP client (the agent) and a device (edge-sim), for
/// fault tests: it forwards bytes both ways, or resets connections, or goes silent; the mode can
/// change while it runs. One thread serves every connection with poll(); `stop()` or release
/// closes everything.
///
/// ```swift
/// let proxy = try FaultProxy(to: sim.port)        // agent bus: tcp 127.0.0.1:\(proxy.port)
/// proxy.mode = .reset                              // every connection: RST
/// proxy.mode = .forward
/// #expect(proxy.stats.resets > 0)
/// ```
public final class FaultProxy: @unchecked Sendable {
    /// What the proxy does with connections and bytes.
    public enum Mode: Sendable, Equatable {
        /// Bytes go through both ways.
        case forward
        /// Open connections and every new one are closed at once with RST (SO_LINGER 0).
        case reset
        /// Forwards, but every `n`-th chunk the client sends is dropped and its connection reset
        /// (RST) instead: a device that resets connections now and then, mid-transaction.
        case resetEvery(Int)
        /// Accepts and reads, forwards nothing either way (a device that hangs with its socket open).
        case silent
    }

    /// Counters since start.
    public struct Stats: Sendable, Equatable {
        public var accepted = 0
        /// Connections closed with RST by the proxy.
        public var resets = 0
        /// Chunks forwarded (client to device and back).
        public var forwarded = 0
        /// Chunks swallowed (silent mode, or the chunk that triggered a reset).
        public var dropped = 0
    }

    /// The port the agent connects to.
    public let port: Int
    /// The device's port on 127.0.0.1.
    public let target: Int

    private struct Pair {
        var client: Int32
        var upstream: Int32
    }

    private let lock = NSLock()
    private var currentMode: Mode
    private var counters = Stats()
    private var chunkCount = 0
    private var openCount = 0
    private let listener: Int32
    private let wakePipe: WakePipe
    private let done = DispatchSemaphore(value: 0)
    private var stopped = false
    private var pairs: [Pair] = []   // proxy thread only

    /// The proxy could not listen.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Listens on a free 127.0.0.1 port and proxies to 127.0.0.1:`target`.
    public init(to target: Int, mode: Mode = .forward) throws {
        self.target = target
        currentMode = mode
        let fd: Int32
        do {
            (fd, port) = try Loopback.listener(backlog: 16)
        } catch {
            throw Failure(description: error.description)
        }
        listener = fd
        do {
            wakePipe = try WakePipe()
        } catch {
            close(fd)
            throw Failure(description: error.description)
        }
        let thread = Thread { [self] in
            run()
            done.signal()
        }
        thread.name = "fault-proxy"
        thread.start()
    }

    deinit { stop() }

    /// The current mode; setting it applies at once (`.reset` resets open connections now).
    public var mode: Mode {
        get { lock.withLock { currentMode } }
        set {
            lock.withLock { currentMode = newValue }
            wake()
        }
    }

    /// Counters so far.
    public var stats: Stats { lock.withLock { counters } }

    /// Number of connections open through the proxy now.
    public var openConnections: Int { lock.withLock { openCount } }

    /// Closes every connection and the listener; joins the thread. Idempotent.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        wakePipe.wake()
        done.wait()
        wakePipe.close()
    }

    private func wake() { wakePipe.wake() }

    private func run() {
        var pfds: [pollfd] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let (mode, stopping) = lock.withLock { (currentMode, stopped) }
            if stopping { break }
            if mode == .reset, !pairs.isEmpty {
                for p in pairs { resetPair(p) }
                pairs.removeAll()
            }
            publishOpen()
            pfds.removeAll(keepingCapacity: true)
            pfds.append(pollfd(fd: wakePipe.readFD, events: Int16(POLLIN), revents: 0))
            pfds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for p in pairs {
                pfds.append(pollfd(fd: p.client, events: Int16(POLLIN), revents: 0))
                pfds.append(pollfd(fd: p.upstream, events: Int16(POLLIN), revents: 0))
            }
            let n = poll(&pfds, nfds_t(pfds.count), 1000)
            if n < 0 && errno != EINTR { break }
            if n <= 0 { continue }
            if pfds[0].revents != 0 {
                wakePipe.drain()
                continue
            }
            let polled = pairs.count
            if pfds[1].revents != 0 { acceptOne(mode) }
            var gone: Set<Int32> = []
            for (i, p) in pairs.prefix(polled).enumerated() {
                let c = pfds[2 + 2 * i], u = pfds[3 + 2 * i]
                if c.revents != 0 && !gone.contains(p.client) {
                    let got = buffer.withUnsafeMutableBytes { recv(p.client, $0.baseAddress, $0.count, 0) }
                    if got <= 0 {
                        gone.insert(p.client)
                        close(p.client); close(p.upstream)
                        continue
                    }
                    switch mode {
                    case .forward:
                        count(forwarded: true)
                        if !sendAll(p.upstream, buffer, got) { gone.insert(p.client); close(p.client); close(p.upstream) }
                    case .silent:
                        count(forwarded: false)
                    case .reset:
                        count(forwarded: false)
                        gone.insert(p.client)
                        resetPair(p)
                    case .resetEvery(let every):
                        let hit = lock.withLock { () -> Bool in
                            chunkCount += 1
                            return every > 0 && chunkCount % every == 0
                        }
                        if hit {
                            count(forwarded: false)
                            gone.insert(p.client)
                            resetPair(p)
                        } else {
                            count(forwarded: true)
                            if !sendAll(p.upstream, buffer, got) { gone.insert(p.client); close(p.client); close(p.upstream) }
                        }
                    }
                }
                if u.revents != 0 && !gone.contains(p.client) {
                    let got = buffer.withUnsafeMutableBytes { recv(p.upstream, $0.baseAddress, $0.count, 0) }
                    if got <= 0 {
                        gone.insert(p.client)
                        close(p.client); close(p.upstream)
                        continue
                    }
                    if mode == .silent {
                        count(forwarded: false)
                    } else {
                        count(forwarded: true)
                        if !sendAll(p.client, buffer, got) { gone.insert(p.client); close(p.client); close(p.upstream) }
                    }
                }
            }
            if !gone.isEmpty { pairs.removeAll { gone.contains($0.client) } }
        }
        for p in pairs { close(p.client); close(p.upstream) }
        pairs.removeAll()
        publishOpen()
        close(listener)
    }

    private func publishOpen() {
        let n = pairs.count
        lock.withLock { openCount = n }
    }

    private func count(forwarded: Bool) {
        lock.withLock {
            if forwarded { counters.forwarded += 1 } else { counters.dropped += 1 }
        }
    }

    private func acceptOne(_ mode: Mode) {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        lock.withLock { counters.accepted += 1 }
        if mode == .reset {
            FaultProxy.closeWithReset(fd)
            lock.withLock { counters.resets += 1 }
            return
        }
        let up = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard up >= 0, Loopback.connect(up, port: target) else {
            if up >= 0 { close(up) }
            FaultProxy.closeWithReset(fd)
            lock.withLock { counters.resets += 1 }
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(up, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        pairs.append(Pair(client: fd, upstream: up))
    }

    /// RST toward the client; the device side is closed normally.
    private func resetPair(_ p: Pair) {
        FaultProxy.closeWithReset(p.client)
        close(p.upstream)
        lock.withLock { counters.resets += 1 }
    }

    /// Closes `fd` so the peer gets RST, not FIN: SO_LINGER on with a zero timeout.
    static func closeWithReset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8], _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            sent += n
        }
        return true
    }
}

/// A tap on an RS-485 line made of two `socat` pty pairs: the agent opens `agentPath`, the device
/// (`edge-sim --rtu`) opens `devicePath`, and the tap copies bytes between the two inner ends.
/// It can inject garbage bytes into the line in either direction and corrupt the CRC of answers,
/// while it runs. One thread; `stop()` or release stops it and both socat processes.
///
/// ```
/// agent -- agentPath =socat= [tap] =socat= devicePath -- edge-sim
/// ```
public final class RTULineTap: @unchecked Sendable {
    /// Which way injected bytes travel.
    public enum Direction: Sendable {
        /// Into the agent's receiver (as if on top of an answer).
        case toAgent
        /// Into the device's receiver (as if on top of a request).
        case toDevice
    }

    /// What the tap does to the bytes it copies.
    public enum Mode: Sendable, Equatable {
        case forward
        /// Every answer toward the agent gets its last byte flipped (a bad CRC).
        case corruptAnswers
        /// Before every `n`-th chunk (either way), `bytes` random bytes are injected: line noise.
        case noise(every: Int, bytes: Int)
    }

    /// Counters since start.
    public struct Stats: Sendable, Equatable {
        public var toDevice = 0
        public var toAgent = 0
        public var corrupted = 0
        public var injectedBytes = 0
        public var injections = 0
    }

    public let agentPath: String
    public let devicePath: String
    private let agentSide: SocatPair
    private let deviceSide: SocatPair
    private let agentFD: Int32    // inner end of the agent's pair
    private let deviceFD: Int32   // inner end of the device's pair
    private let lock = NSLock()
    private var currentMode: Mode = .forward
    private var counters = Stats()
    private var chunks = 0
    private var pending: [(Direction, [UInt8])] = []
    private var stopped = false
    private let wakePipe: WakePipe
    private let done = DispatchSemaphore(value: 0)

    /// The tap could not be set up.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Makes both pty pairs in `dir` and starts copying.
    public init(in dir: ScratchDir) throws {
        agentSide = try SocatPair(in: dir, names: ("rtu-agent", "rtu-tap-a"))
        deviceSide = try SocatPair(in: dir, names: ("rtu-tap-d", "rtu-device"))
        agentPath = agentSide.pathA
        devicePath = deviceSide.pathB
        func openRaw(_ path: String) throws -> Int32 {
            let fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
            guard fd >= 0 else { throw Failure(description: "cannot open \(path): errno \(errno)") }
            var t = termios()
            if tcgetattr(fd, &t) == 0 {
                cfmakeraw(&t)
                tcsetattr(fd, TCSANOW, &t)
            }
            return fd
        }
        agentFD = try openRaw(agentSide.pathB)
        deviceFD = try openRaw(deviceSide.pathA)
        do {
            wakePipe = try WakePipe()
        } catch {
            throw Failure(description: error.description)
        }
        let thread = Thread { [self] in
            run()
            done.signal()
        }
        thread.name = "rtu-tap"
        thread.start()
    }

    deinit { stop() }

    public var mode: Mode {
        get { lock.withLock { currentMode } }
        set { lock.withLock { currentMode = newValue } }
    }

    public var stats: Stats { lock.withLock { counters } }

    /// Writes `bytes` into the line now, toward `direction`.
    public func inject(_ bytes: [UInt8], toward direction: Direction) {
        lock.withLock { pending.append((direction, bytes)) }
        wakePipe.wake()
    }

    /// Stops copying, closes the inner ends and both socat processes. Idempotent.
    public func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        wakePipe.wake()
        done.wait()
        wakePipe.close()
        close(agentFD)
        close(deviceFD)
        agentSide.stop()
        deviceSide.stop()
    }

    private func run() {
        var buffer = [UInt8](repeating: 0, count: 1024)
        var pfds = [pollfd(fd: wakePipe.readFD, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: agentFD, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: deviceFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let (stopping, injections) = lock.withLock { () -> (Bool, [(Direction, [UInt8])]) in
                defer { pending.removeAll() }
                return (stopped, pending)
            }
            if stopping { return }
            for (direction, bytes) in injections { emit(bytes, direction, injected: true) }
            for i in pfds.indices { pfds[i].revents = 0 }
            let n = poll(&pfds, 3, 1000)
            if n <= 0 { continue }
            if pfds[0].revents != 0 { wakePipe.drain() }
            for (index, direction) in [(1, Direction.toDevice), (2, Direction.toAgent)] where pfds[index].revents & Int16(POLLIN) != 0 {
                let got = read(pfds[index].fd, &buffer, buffer.count)
                guard got > 0 else { continue }
                var chunk = Array(buffer[0..<got])
                let mode = lock.withLock { () -> Mode in
                    chunks += 1
                    return currentMode
                }
                switch mode {
                case .forward:
                    break
                case .corruptAnswers:
                    if direction == .toAgent {
                        chunk[chunk.count - 1] ^= 0x5A
                        lock.withLock { counters.corrupted += 1 }
                    }
                case let .noise(every, count):
                    if every > 0, lock.withLock({ chunks % every == 0 }) {
                        emit((0..<count).map { _ in UInt8.random(in: 0...255) }, direction, injected: true)
                    }
                }
                emit(chunk, direction, injected: false)
            }
        }
    }

    private func emit(_ bytes: [UInt8], _ direction: Direction, injected: Bool) {
        let fd = direction == .toAgent ? agentFD : deviceFD
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, bytes.count - sent) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return
            }
            sent += n
        }
        lock.withLock {
            if injected {
                counters.injections += 1
                counters.injectedBytes += bytes.count
            } else if direction == .toAgent {
                counters.toAgent += 1
            } else {
                counters.toDevice += 1
            }
        }
    }
}
