import CGPIOD
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import Synchronization

// The only file that touches libgpiod (v1 API, 1.6.x): every gpiod_* call and pointer is here.
//
// Event timestamps: libgpiod 1.6 speaks the kernel's v1 GPIO uAPI, whose event timestamps are
// CLOCK_MONOTONIC since Linux 5.7 (commit f8850206e160 "gpio: Switch timestamps to
// ktime_get_ns()") and CLOCK_REALTIME before. We rely on CLOCK_MONOTONIC; for an older kernel
// each timestamp is recognised by being nearer to the realtime clock than to the monotonic one,
// and moved onto the monotonic time base (`monotonicTimestamp`).
//
// Debounce: the v1 uAPI has no debounce, so edges go through `GPIODebouncer` on the event
// thread, exactly as in the simulated backends.

/// A libgpiod chip or line object. libgpiod objects are not thread-safe by themselves: a chip is
/// used only under the backend's state lock, a line only under its handle's lock or on the
/// event thread (reads of the event fd), and both are freed only after that thread is joined.
private struct GPIODRef: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// GPIO lines on a real gateway through libgpiod v1 (`/dev/gpiochipN`).
///
/// Inputs are requested for both-edge events (so a read and the edge stream see the same line);
/// outputs with their initial level. Active-low is passed to the kernel
/// (GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW), so all values here are logical. Each chip is opened
/// once and closed by `stop()`, which also releases every line. Call `stop()` before dropping it.
public final class LibGPIODBackend: GPIOBackend {
    /// The consumer label shown by `gpioinfo` for our lines.
    public let consumer: String
    private let logger: Logger
    private let wakePipe = GPIOWakePipe()
    private let state = Mutex(State())

    private struct State {
        /// Open chips by kernel name (`gpiochip0`).
        var chips: [String: GPIODRef] = [:]
        /// Configured chip name/path/label -> kernel name.
        var aliases: [String: String] = [:]
        var inputs: [LibGPIODInput] = []
        var outputs: [LibGPIODOutput] = []
        /// "chip:offset" of every line we hold.
        var taken: [String: String] = [:]
        var thread: pthread_t?
        var eventsStarted = false
        var stopping = false
        var stopped = false
    }

    public init(consumer: String = "edge-agent", logger: Logger) {
        self.consumer = consumer
        self.logger = logger
    }

    public func openInput(name: String, chip: String, offset: UInt32, activeLow: Bool, debounce: Duration) throws(GPIOError) -> any GPIOInput {
        let input = try state.withLock { (s) throws(GPIOError) -> LibGPIODInput in
            let (line, key) = try requestLine(&s, name: name, chip: chip, offset: offset)
            let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
            if gpiod_line_request_both_edges_events_flags(line.pointer, consumer, flags) != 0 {
                throw requestError(errno, line: line, name: name, chip: chip, offset: offset)
            }
            let level = gpiod_line_get_value(line.pointer)
            let fd = gpiod_line_event_get_fd(line.pointer)
            if level < 0 || fd < 0 {
                let code = errno
                gpiod_line_release(line.pointer)
                throw GPIOError.io(chip, offset: offset, line: name, errno: code, operation: "first read")
            }
            let input = LibGPIODInput(name: name, chip: chip, offset: offset, line: line, eventFD: fd,
                                      initial: level == 1, debounce: debounce)
            s.inputs.append(input)
            s.taken[key] = name
            return input
        }
        logger.debug("GPIO input opened", metadata: ["line": "\(name)", "chip": "\(chip)", "offset": "\(offset)", "active_low": "\(activeLow)"])
        wakePipe.wake()  // the event thread picks up the new line
        return input
    }

    public func openOutput(name: String, chip: String, offset: UInt32, activeLow: Bool, initial: Bool) throws(GPIOError) -> any GPIOOutput {
        let output = try state.withLock { (s) throws(GPIOError) -> LibGPIODOutput in
            let (line, key) = try requestLine(&s, name: name, chip: chip, offset: offset)
            let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
            if gpiod_line_request_output_flags(line.pointer, consumer, flags, initial ? 1 : 0) != 0 {
                throw requestError(errno, line: line, name: name, chip: chip, offset: offset)
            }
            let output = LibGPIODOutput(name: name, chip: chip, offset: offset, line: line)
            s.outputs.append(output)
            s.taken[key] = name
            return output
        }
        logger.debug("GPIO output opened", metadata: ["line": "\(name)", "chip": "\(chip)", "offset": "\(offset)", "active_low": "\(activeLow)", "initial": "\(initial)"])
        return output
    }

    public func startEvents(_ handler: @escaping @Sendable (GPIOEdge) -> Void) throws(GPIOError) {
        try state.withLock { (s) throws(GPIOError) in
            guard !s.stopped, !s.eventsStarted else {
                throw GPIOError(kind: .invalidRequest, chip: "*", message: "GPIO events already started or backend stopped")
            }
            s.eventsStarted = true
            s.thread = startGPIOThread(name: "gpio-events") { [self] in eventLoop(handler) }
        }
    }

    public func stop() {
        let thread = state.withLock { s -> pthread_t? in
            s.stopping = true
            defer { s.thread = nil }
            return s.thread
        }
        wakePipe.wake()
        if let thread { joinGPIOThread(thread) }
        state.withLock { s in
            guard !s.stopped else { return }
            for input in s.inputs { input.release() }
            for output in s.outputs { output.release() }
            for chip in s.chips.values { gpiod_chip_close(chip.pointer) }
            s.inputs = []
            s.outputs = []
            s.chips = [:]
            s.aliases = [:]
            s.taken = [:]
            s.stopped = true
        }
    }

    // MARK: Requests

    /// Opens (or reuses) the chip and looks the line up; returns the line and its "chip:offset"
    /// key with the chip's kernel name, so `gpiochip0`, `/dev/gpiochip0` and a label agree.
    private func requestLine(_ s: inout State, name: String, chip: String, offset: UInt32) throws(GPIOError) -> (line: GPIODRef, key: String) {
        guard !s.stopped, !s.stopping else {
            throw GPIOError(kind: .invalidRequest, chip: chip, offset: offset, line: name, message: "GPIO backend stopped: cannot open \(name)")
        }
        let chipRef: GPIODRef
        let kernelName: String
        if let known = s.aliases[chip], let open = s.chips[known] {
            chipRef = open
            kernelName = known
        } else {
            guard let p = gpiod_chip_open_lookup(chip) else {
                let code = errno
                switch code {
                case EACCES, EPERM: throw GPIOError.permissionDenied(chip, errno: code, what: "open")
                default: throw GPIOError.chipNotFound(chip, errno: code)
                }
            }
            kernelName = gpiod_chip_name(p).map { String(cString: $0) } ?? chip
            if let open = s.chips[kernelName] {
                gpiod_chip_close(p)  // the same chip under another name: keep one handle
                chipRef = open
            } else {
                chipRef = GPIODRef(pointer: p)
                s.chips[kernelName] = chipRef
            }
            s.aliases[chip] = kernelName
        }
        let key = "\(kernelName):\(offset)"
        if let holder = s.taken[key] {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name,
                            message: "GPIO line \(key) is configured twice, for \(holder) and \(name): fix the board file")
        }
        guard let line = gpiod_chip_get_line(chipRef.pointer, offset) else {
            let code = errno
            if code == EINVAL { throw GPIOError.lineNotFound(chip, offset: offset, line: name, errno: code) }
            throw GPIOError.io(chip, offset: offset, line: name, errno: code, operation: "line lookup")
        }
        return (GPIODRef(pointer: line), key)
    }

    private func requestError(_ code: Int32, line: GPIODRef, name: String, chip: String, offset: UInt32) -> GPIOError {
        switch code {
        case EBUSY:
            let holder = gpiod_line_consumer(line.pointer).map { String(cString: $0) }
            return .lineBusy(chip, offset: offset, line: name, errno: code, holder: holder)
        case EACCES, EPERM:
            return .permissionDenied(chip, offset: offset, line: name, errno: code, what: "request")
        default:
            return .io(chip, offset: offset, line: name, errno: code, operation: "line request")
        }
    }

    // MARK: Event thread

    /// Polls every input's event fd plus the wake pipe; reads, timestamps and debounces edges.
    private func eventLoop(_ handler: @Sendable (GPIOEdge) -> Void) {
        var lines = GPIOEdgeLines()
        lines.delivering = true
        var watched: [LibGPIODInput] = []
        var fds: [pollfd] = [pollfd(fd: wakePipe.readFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let (stopping, inputs) = state.withLock { s in (s.stopping, s.inputs) }
            if stopping { break }
            if inputs.count > watched.count {
                for input in inputs[watched.count...] {
                    _ = lines.add(name: input.name, debounce: input.debounce, initial: input.initial)
                    watched.append(input)
                    fds.append(pollfd(fd: input.eventFD, events: Int16(POLLIN), revents: 0))
                }
            }
            lines.emitInitial(now: .now(), handler)

            let rc = poll(&fds, nfds_t(fds.count), gpioPollTimeout(until: lines.nextDeadline))
            if rc < 0 {
                let code = errno
                if code == EINTR { continue }
                logger.error("GPIO event poll failed", metadata: ["errno": "\(code)", "reason": "\(GPIOError.reason(code))"])
                usleep(100_000)
                continue
            }
            if fds[0].revents != 0 { wakePipe.drain() }
            for k in 1..<max(1, fds.count) where fds[k].revents != 0 {
                let input = watched[k - 1]
                if fds[k].revents & Int16(POLLIN) != 0 {
                    var event = gpiod_line_event()
                    let code = input.readEvent(&event)
                    if code == 0 {
                        let at = Self.monotonicTimestamp(event.ts)
                        lines.observe(k - 1, value: event.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE), at: at, handler)
                        continue
                    }
                    if code == EAGAIN || code == EINTR { continue }
                }
                // POLLERR/POLLHUP/POLLNVAL or a failed read: stop watching this line, loudly.
                logger.error("GPIO line stopped delivering events", metadata: [
                    "line": "\(input.name)", "chip": "\(input.chip)", "offset": "\(input.offset)", "revents": "\(fds[k].revents)",
                ])
                fds[k].fd = -1
            }
            lines.settleDue(now: .now(), handler)
        }
    }

    /// Puts a v1 uAPI event timestamp on CLOCK_MONOTONIC (pre-5.7 kernels stamp CLOCK_REALTIME).
    static func monotonicTimestamp(_ ts: timespec) -> MonotonicNanos {
        let t = Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
        let mono = gpioClockNanos(CLOCK_MONOTONIC)
        let real = gpioClockNanos(CLOCK_REALTIME)
        if (t &- mono).magnitude <= (t &- real).magnitude { return MonotonicNanos(t) }
        return MonotonicNanos(t &- real &+ mono)
    }
}

/// An input requested for both-edge events.
private final class LibGPIODInput: GPIOInput {
    let name: String
    let chip: String
    let offset: UInt32
    let eventFD: Int32
    let initial: Bool
    let debounce: Duration
    /// nil once released by `stop()`.
    private let line: Mutex<GPIODRef?>

    init(name: String, chip: String, offset: UInt32, line: GPIODRef, eventFD: Int32, initial: Bool, debounce: Duration) {
        self.name = name
        self.chip = chip
        self.offset = offset
        self.eventFD = eventFD
        self.initial = initial
        self.debounce = debounce
        self.line = Mutex(line)
    }

    func read() throws(GPIOError) -> Bool {
        try line.withLock { (l) throws(GPIOError) -> Bool in
            guard let l else { throw GPIOError.io(chip, offset: offset, line: name, errno: nil, operation: "read (line released)") }
            let v = gpiod_line_get_value(l.pointer)
            if v < 0 { throw GPIOError.io(chip, offset: offset, line: name, errno: errno, operation: "read") }
            return v == 1
        }
    }

    /// Reads one queued event (event thread only); returns 0 or the errno.
    func readEvent(_ event: inout gpiod_line_event) -> Int32 {
        line.withLock { l in
            guard let l else { return EBADF }
            return gpiod_line_event_read(l.pointer, &event) == 0 ? 0 : errno
        }
    }

    func release() {
        line.withLock { l in
            if let p = l?.pointer { gpiod_line_release(p) }
            l = nil
        }
    }
}

/// An output requested with its initial level.
private final class LibGPIODOutput: GPIOOutput {
    let name: String
    let chip: String
    let offset: UInt32
    private let line: Mutex<GPIODRef?>

    init(name: String, chip: String, offset: UInt32, line: GPIODRef) {
        self.name = name
        self.chip = chip
        self.offset = offset
        self.line = Mutex(line)
    }

    func write(_ value: Bool) throws(GPIOError) {
        try line.withLock { (l) throws(GPIOError) in
            guard let l else { throw GPIOError.io(chip, offset: offset, line: name, errno: nil, operation: "write (line released)") }
            if gpiod_line_set_value(l.pointer, value ? 1 : 0) != 0 {
                throw GPIOError.io(chip, offset: offset, line: name, errno: errno, operation: "write")
            }
        }
    }

    func release() {
        line.withLock { l in
            if let p = l?.pointer { gpiod_line_release(p) }
            l = nil
        }
    }
}
