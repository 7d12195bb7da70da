#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
public import Logging
import EdgeRuntime

/// GPIO lines hosted by the field simulator (edge-sim), reached over its unix control socket.
///
/// Protocol (one text line each way, `\n`-terminated), on one stream connection:
/// - we send `gpio-watch`; the simulator answers with one JSON line per GPIO line,
///   `{"line":"presence-a","value":0}`, then one such line on every change;
/// - we send `gpio-out <line> 0|1` for every output write (physical level).
///
/// Received values are the lines' physical levels; inputs apply active-low and `GPIODebouncer`
/// (timestamp = receive time, CLOCK_MONOTONIC). Reads return the last value received (stale
/// while disconnected). The link thread starts at the first open or `startEvents`, and
/// reconnects after `reconnectDelay` whenever the simulator goes away; on every (re)connection
/// the desired level of every output is sent again. Lines are identified by name; chip/offset
/// are only checked for double use.
public final class SimulatorLinkGPIOBackend: GPIOBackend {
    public let socketPath: String
    private let reconnectDelay: Duration
    private let logger: Logger
    private let wakePipe = GPIOWakePipe()
    private let state = Locked(State())

    private struct State {
        /// The connected socket, -1 while disconnected. Written to only under the lock.
        var fd: Int32 = -1
        /// Last physical level received per line name.
        var received: [String: Bool] = [:]
        var lines = GPIOEdgeLines()
        var inputs: [String: (index: Int, activeLow: Bool)] = [:]
        /// Output name -> (active-low, desired physical level).
        var outputs: [String: (activeLow: Bool, level: Bool)] = [:]
        var taken: [String: String] = [:]
        var handler: (@Sendable (GPIOEdge) -> Void)?
        var thread: OSThread?
        var stopping = false
        var stopped = false
    }

    public init(socketPath: String, reconnectDelay: Duration = .milliseconds(500), logger: Logger) {
        self.socketPath = socketPath
        self.reconnectDelay = reconnectDelay
        self.logger = logger
    }

    /// True while the link to the simulator is up.
    public var isConnected: Bool { state.withLock { $0.fd >= 0 } }

    public func openInput(name: String, chip: String, offset: UInt32, activeLow: Bool, debounce: Duration) throws(GPIOError) -> any GPIOInput {
        try state.withLock { (s) throws(GPIOError) in
            try claim(&s, name: name, chip: chip, offset: offset)
            let known = s.received[name].map { $0 != activeLow }
            let index = s.lines.add(name: name, debounce: debounce, initial: known)
            s.inputs[name] = (index, activeLow)
            ensureThread(&s)
        }
        wakePipe.wake()  // the link thread delivers its initial level
        return LinkInput(name: name, backend: self)
    }

    public func openOutput(name: String, chip: String, offset: UInt32, activeLow: Bool, initial: Bool) throws(GPIOError) -> any GPIOOutput {
        try state.withLock { (s) throws(GPIOError) in
            try claim(&s, name: name, chip: chip, offset: offset)
            s.outputs[name] = (activeLow, initial != activeLow)
            if s.fd >= 0 { _ = sendAll(s.fd, Self.outLine(name, initial != activeLow)) }
            ensureThread(&s)
        }
        return LinkOutput(name: name, backend: self)
    }

    public func startEvents(_ handler: @escaping @Sendable (GPIOEdge) -> Void) throws(GPIOError) {
        try state.withLock { (s) throws(GPIOError) in
            guard s.handler == nil, !s.stopped else {
                throw GPIOError(kind: .invalidRequest, chip: socketPath, message: "GPIO events already started or backend stopped")
            }
            s.handler = handler
            s.lines.delivering = true
            ensureThread(&s)
        }
        wakePipe.wake()
    }

    public func stop() {
        let thread = state.withLock { s -> OSThread? in
            s.stopping = true
            s.stopped = true
            defer { s.thread = nil }
            return s.thread
        }
        wakePipe.wake()
        thread?.join()
        state.withLock { s in
            if s.fd >= 0 { close(s.fd) }
            s.fd = -1
        }
    }

    // MARK: Handles

    fileprivate func read(_ name: String) throws(GPIOError) -> Bool {
        try state.withLock { (s) throws(GPIOError) -> Bool in
            guard !s.stopped, let input = s.inputs[name] else {
                throw GPIOError.io(socketPath, offset: nil, line: name, errno: nil, operation: "read (line released)")
            }
            guard let level = s.received[name] else {
                throw GPIOError(kind: .simulatorUnreachable, chip: socketPath, line: name,
                                message: "no value received yet for GPIO line \(name) from the simulator at \(socketPath): is edge-sim running, and does its config define \(name)?")
            }
            return level != input.activeLow
        }
    }

    fileprivate func write(_ name: String, _ value: Bool) throws(GPIOError) {
        try state.withLock { (s) throws(GPIOError) in
            guard !s.stopped, let out = s.outputs[name] else {
                throw GPIOError.io(socketPath, offset: nil, line: name, errno: nil, operation: "write (line released)")
            }
            let level = value != out.activeLow
            s.outputs[name] = (out.activeLow, level)  // kept: sent again on reconnection
            guard s.fd >= 0 else {
                throw GPIOError(kind: .simulatorUnreachable, chip: socketPath, line: name,
                                message: "GPIO simulator at \(socketPath) unreachable: output \(name) will be set when it is back (is edge-sim running?)")
            }
            if let code = sendAll(s.fd, Self.outLine(name, level)) {
                throw GPIOError.io(socketPath, offset: nil, line: name, errno: code, operation: "write to simulator")
            }
        }
    }

    // MARK: Internals

    private func claim(_ s: inout State, name: String, chip: String, offset: UInt32) throws(GPIOError) {
        guard !s.stopped else {
            throw GPIOError(kind: .invalidRequest, chip: chip, offset: offset, line: name, message: "GPIO backend stopped: cannot open \(name)")
        }
        if s.inputs[name] != nil || s.outputs[name] != nil {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name, message: "GPIO line \(name) is already open")
        }
        if let holder = s.taken["\(chip):\(offset)"] {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name,
                            message: "GPIO line \(chip):\(offset) is configured twice, for \(holder) and \(name): fix the board file")
        }
        s.taken["\(chip):\(offset)"] = name
    }

    private func ensureThread(_ s: inout State) {
        guard s.thread == nil, !s.stopping else { return }
        s.thread = OSThread.start(name: "gpio-sim-link") { [self] in linkLoop() }
    }

    static func outLine(_ name: String, _ level: Bool) -> String { "gpio-out \(name) \(level ? 1 : 0)\n" }

    /// Writes all of `text`; returns the errno on failure.
    private func sendAll(_ fd: Int32, _ text: String) -> Int32? {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = retryingOnInterrupt { bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) } }
            if n < 0 { return errno }
            sent += n
        }
        return nil
    }

    private func connectOnce() -> (fd: Int32, errno: Int32) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return (-1, errno) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.count < capacity else {
            close(fd)
            return (-1, ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if rc != 0 {
            let code = errno
            close(fd)
            return (-1, code)
        }
        return (fd, 0)
    }

    private struct Message: Decodable {
        var line: String
        var value: Bool
        enum CodingKeys: String, CodingKey { case line, value }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            line = try c.decode(String.self, forKey: .line)
            if let n = try? c.decode(Int.self, forKey: .value) {
                value = n != 0
            } else {
                value = try c.decode(Bool.self, forKey: .value)
            }
        }
    }

    /// Connects (and reconnects), reads value lines, debounces, delivers edges.
    private func linkLoop() {
        let decoder = JSONDecoder()
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var outageLogged = false
        var fds = [pollfd(fd: wakePipe.readFD, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: -1, events: Int16(POLLIN), revents: 0)]
        let retryMillis = Int64(max(1, reconnectDelay.nanosecondsClamped / 1_000_000))
        var retryAt: MonotonicInstant?

        while true {
            // Connect when needed (not more often than reconnectDelay).
            if fds[1].fd < 0, retryAt.map({ MonotonicInstant.now() >= $0 }) ?? true {
                let (fd, code) = connectOnce()
                if fd >= 0 {
                    let resendFailed: Int32? = state.withLock { s in
                        if s.stopping { close(fd); return nil }
                        s.fd = fd
                        var hello = "gpio-watch\n"
                        for (name, out) in s.outputs.sorted(by: { $0.key < $1.key }) { hello += Self.outLine(name, out.level) }
                        return sendAll(fd, hello)
                    }
                    fds[1].fd = fd
                    buffer.removeAll(keepingCapacity: true)
                    retryAt = nil
                    outageLogged = false
                    logger.info("GPIO simulator link up", metadata: ["socket": "\(socketPath)"])
                    if let resendFailed {
                        logger.warning("GPIO simulator link: sending gpio-watch failed", metadata: ["socket": "\(socketPath)", "errno": "\(resendFailed)"])
                    }
                } else {
                    if !outageLogged {
                        logger.warning("GPIO simulator unreachable; retrying", metadata: [
                            "socket": "\(socketPath)", "reason": "\(GPIOError.reason(code))", "retry_ms": "\(retryMillis)",
                        ])
                        outageLogged = true
                    }
                    retryAt = MonotonicInstant.now() + reconnectDelay
                }
            }

            // Deliver what is due, then wait for data, a wake-up, a debounce deadline or a retry.
            let (stopping, handler, edges, deadline) = state.withLock { s in
                var out: [GPIOEdge] = []
                let now = MonotonicInstant.now()
                s.lines.settleDue(now: now) { out.append($0) }
                s.lines.emitInitial(now: now) { out.append($0) }
                return (s.stopping, s.handler, out, s.lines.nextDeadline)
            }
            if stopping { return }
            if let handler { for e in edges { handler(e) } }
            var wakeAt = deadline
            if fds[1].fd < 0, let retryAt, wakeAt.map({ retryAt < $0 }) ?? true { wakeAt = retryAt }
            let rc = poll(&fds, 2, gpioPollTimeout(until: wakeAt))
            if rc <= 0 { continue }
            if fds[0].revents != 0 { wakePipe.drain() }
            guard fds[1].fd >= 0, fds[1].revents != 0 else { continue }

            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { Glibc.read(fds[1].fd, $0.baseAddress, $0.count) } }
            if n < 0, errno == EAGAIN { continue }
            if n <= 0 {
                let code = n < 0 ? errno : 0
                state.withLock { s in
                    close(s.fd)
                    s.fd = -1
                }
                fds[1].fd = -1
                retryAt = MonotonicInstant.now() + reconnectDelay
                logger.warning("GPIO simulator link lost; reconnecting", metadata: [
                    "socket": "\(socketPath)", "reason": "\(code == 0 ? "closed by the simulator" : GPIOError.reason(code))",
                ])
                continue
            }
            let receivedAt = MonotonicInstant.now()
            buffer.append(contentsOf: chunk[0..<n])
            var messages: [Message] = []
            while let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let lineBytes = buffer[buffer.startIndex..<nl]
                buffer.removeSubrange(buffer.startIndex...nl)
                if lineBytes.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
                if let m = try? decoder.decode(Message.self, from: Data(lineBytes)) {
                    messages.append(m)
                } else {
                    logger.warning("GPIO simulator link: ignoring line", metadata: [
                        "socket": "\(socketPath)", "line": "\(String(decoding: lineBytes.prefix(200), as: UTF8.self))",
                    ])
                }
            }
            if buffer.count > 65536 { buffer.removeAll(keepingCapacity: true) }  // no newline in 64 KiB: not our protocol
            guard !messages.isEmpty else { continue }
            let (h2, received) = state.withLock { s in
                var out: [GPIOEdge] = []
                for m in messages {
                    s.received[m.line] = m.value
                    if let input = s.inputs[m.line] {
                        s.lines.observe(input.index, value: m.value != input.activeLow, at: receivedAt) { out.append($0) }
                    }
                }
                return (s.handler, out)
            }
            if let h2 { for e in received { h2(e) } }
        }
    }
}

private final class LinkInput: GPIOInput {
    let name: String
    let backend: SimulatorLinkGPIOBackend
    init(name: String, backend: SimulatorLinkGPIOBackend) {
        self.name = name
        self.backend = backend
    }
    func read() throws(GPIOError) -> Bool { try backend.read(name) }
}

private final class LinkOutput: GPIOOutput {
    let name: String
    let backend: SimulatorLinkGPIOBackend
    init(name: String, backend: SimulatorLinkGPIOBackend) {
        self.name = name
        self.backend = backend
    }
    func write(_ value: Bool) throws(GPIOError) { try backend.write(name, value) }
}
