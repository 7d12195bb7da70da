#if canImport(Glibc)
import Glibc
#endif
public import Logging
import EdgeRuntime

// The libgpiod backend above the library's API: chips, line bookkeeping, errors, the event thread.
// Every gpiod_* call is in one wrapper file per libgpiod API, chosen at build time (Package.swift:
// `pkg-config --modversion libgpiod`, define GPIOD_V2):
//
// - GPIODv1.swift, libgpiod 1.6 (Debian 12): line handles; the kernel's v1 uAPI has no debounce,
//   and stamps events CLOCK_MONOTONIC only since Linux 5.7 (CLOCK_REALTIME before, moved onto the
//   monotonic time base here: `monotonicTimestamp`).
// - GPIODv2.swift, libgpiod 2.x (Debian 13): line requests with both-edge detection, the kernel's
//   debounce where it takes it (read back from the line info) and event timestamps requested on
//   CLOCK_MONOTONIC.
//
// Both provide `GPIODChip` (open by name, path, number or label; request an input or an output
// line; who holds a line) and `GPIODLineRequest` (value, write, event fd, read events, release).
// Edges the kernel does not debounce go through `GPIODebouncer` on the event thread, exactly as in
// the simulated backends.

/// A failed libgpiod call: the errno and the step it failed in.
struct GPIODFailure: Error {
    enum Step { case open, lineLookup, request, firstRead }
    let errno: Int32
    let step: Step
}

/// One edge read from the kernel: the logical level after it and when it happened.
struct GPIODEvent {
    let rising: Bool
    let at: MonotonicInstant
}

/// GPIO lines on a real gateway through libgpiod (`/dev/gpiochipN`), v1 or v2 API (see above).
///
/// Inputs are requested for both-edge events (so a read and the edge stream see the same line);
/// outputs with their initial level. Active-low is passed to the kernel, so all values here are
/// logical. Each chip is opened
/// once and closed by `stop()`, which also releases every line. Call `stop()` before dropping it.
public final class LibGPIODBackend: GPIOBackend {
    /// The consumer label shown by `gpioinfo` for our lines.
    public let consumer: String
    private let logger: Logger
    private let wakePipe = GPIOWakePipe()
    private let state = Locked(State())

    private struct State {
        /// Open chips by kernel name (`gpiochip0`).
        var chips: [String: GPIODChip] = [:]
        /// Configured chip name/path/label -> kernel name.
        var aliases: [String: String] = [:]
        var inputs: [LibGPIODInput] = []
        var outputs: [LibGPIODOutput] = []
        /// "chip:offset" of every line we hold.
        var taken: [String: String] = [:]
        var thread: OSThread?
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
            let (chipRef, key) = try lookupChip(&s, name: name, chip: chip, offset: offset)
            let request: GPIODLineRequest
            do throws(GPIODFailure) {
                request = try chipRef.requestInput(offset: offset, consumer: consumer, activeLow: activeLow, debounce: debounce)
            } catch {
                throw gpioError(error, chip: chipRef, name: name, chipName: chip, offset: offset)
            }
            // Debounced by the kernel (v2, when it took the period): edges pass through as they come.
            let input = LibGPIODInput(name: name, chip: chip, offset: offset, request: request,
                                      debounce: request.kernelDebounce ? .zero : debounce)
            s.inputs.append(input)
            s.taken[key] = name
            return input
        }
        logger.debug("GPIO input opened", metadata: [
            "line": "\(name)", "chip": "\(chip)", "offset": "\(offset)", "active_low": "\(activeLow)",
            "debounce": "\(debounce == .zero ? "none" : input.debounce == .zero ? "kernel" : "software")",
        ])
        wakePipe.wake()  // the event thread picks up the new line
        return input
    }

    public func openOutput(name: String, chip: String, offset: UInt32, activeLow: Bool, initial: Bool) throws(GPIOError) -> any GPIOOutput {
        let output = try state.withLock { (s) throws(GPIOError) -> LibGPIODOutput in
            let (chipRef, key) = try lookupChip(&s, name: name, chip: chip, offset: offset)
            let request: GPIODLineRequest
            do throws(GPIODFailure) {
                request = try chipRef.requestOutput(offset: offset, consumer: consumer, activeLow: activeLow, initial: initial)
            } catch {
                throw gpioError(error, chip: chipRef, name: name, chipName: chip, offset: offset)
            }
            let output = LibGPIODOutput(name: name, chip: chip, offset: offset, request: request)
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
            s.thread = OSThread.start(name: "gpio-events") { [self] in eventLoop(handler) }
        }
    }

    public func stop() {
        let thread = state.withLock { s -> OSThread? in
            s.stopping = true
            defer { s.thread = nil }
            return s.thread
        }
        wakePipe.wake()
        thread?.join()
        state.withLock { s in
            guard !s.stopped else { return }
            for input in s.inputs { input.release() }
            for output in s.outputs { output.release() }
            for chip in s.chips.values { chip.close() }
            s.inputs = []
            s.outputs = []
            s.chips = [:]
            s.aliases = [:]
            s.taken = [:]
            s.stopped = true
        }
    }

    // MARK: Requests

    /// Opens (or reuses) the chip; returns it with the line's "chip:offset" key under the chip's
    /// kernel name, so `gpiochip0`, `/dev/gpiochip0` and a label agree.
    private func lookupChip(_ s: inout State, name: String, chip: String, offset: UInt32) throws(GPIOError) -> (chip: GPIODChip, key: String) {
        guard !s.stopped, !s.stopping else {
            throw GPIOError(kind: .invalidRequest, chip: chip, offset: offset, line: name, message: "GPIO backend stopped: cannot open \(name)")
        }
        let chipRef: GPIODChip
        let kernelName: String
        if let known = s.aliases[chip], let open = s.chips[known] {
            chipRef = open
            kernelName = known
        } else {
            let opened: GPIODChip
            do throws(GPIODFailure) {
                opened = try GPIODChip.open(chip)
            } catch {
                switch error.errno {
                case EACCES, EPERM: throw GPIOError.permissionDenied(chip, errno: error.errno, what: "open")
                default: throw GPIOError.chipNotFound(chip, errno: error.errno)
                }
            }
            kernelName = opened.kernelName ?? chip
            if let open = s.chips[kernelName] {
                opened.close()  // the same chip under another name: keep one handle
                chipRef = open
            } else {
                chipRef = opened
                s.chips[kernelName] = chipRef
            }
            s.aliases[chip] = kernelName
        }
        let key = "\(kernelName):\(offset)"
        if let holder = s.taken[key] {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name,
                            message: "GPIO line \(key) is configured twice, for \(holder) and \(name): fix the board file")
        }
        return (chipRef, key)
    }

    private func gpioError(_ failure: GPIODFailure, chip: GPIODChip, name: String, chipName: String, offset: UInt32) -> GPIOError {
        let code = failure.errno
        switch failure.step {
        case .open:
            return .chipNotFound(chipName, errno: code)
        case .lineLookup:
            if code == EINVAL { return .lineNotFound(chipName, offset: offset, line: name, errno: code) }
            return .io(chipName, offset: offset, line: name, errno: code, operation: "line lookup")
        case .firstRead:
            return .io(chipName, offset: offset, line: name, errno: code, operation: "first read")
        case .request:
            switch code {
            case EBUSY:
                return .lineBusy(chipName, offset: offset, line: name, errno: code, holder: chip.holder(offset: offset))
            case EACCES, EPERM:
                return .permissionDenied(chipName, offset: offset, line: name, errno: code, what: "request")
            default:
                return .io(chipName, offset: offset, line: name, errno: code, operation: "line request")
            }
        }
    }

    // MARK: Event thread

    /// Polls every input's event fd plus the wake pipe; reads, timestamps and debounces edges.
    private func eventLoop(_ handler: @Sendable (GPIOEdge) -> Void) {
        var lines = GPIOEdgeLines()
        lines.delivering = true
        var watched: [LibGPIODInput] = []
        var events: [GPIODEvent] = []
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

            let rc = retryingOnInterrupt { poll(&fds, nfds_t(fds.count), gpioPollTimeout(until: lines.nextDeadline)) }
            if rc < 0 {
                let code = errno
                logger.error("GPIO event poll failed", metadata: ["errno": "\(code)", "reason": "\(GPIOError.reason(code))"])
                usleep(100_000)
                continue
            }
            if fds[0].revents != 0 { wakePipe.drain() }
            for k in 1..<max(1, fds.count) where fds[k].revents != 0 {
                let input = watched[k - 1]
                if fds[k].revents & Int16(POLLIN) != 0 {
                    events.removeAll(keepingCapacity: true)
                    let code = input.readEvents(&events)
                    for event in events { lines.observe(k - 1, value: event.rising, at: event.at, handler) }
                    if code == 0 || code == EAGAIN || code == EINTR { continue }
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
    static func monotonicTimestamp(_ ts: timespec) -> MonotonicInstant {
        monotonicTimestamp(nanoseconds: Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec))
    }

    /// The same for a timestamp in nanoseconds.
    static func monotonicTimestamp(nanoseconds t: Int64) -> MonotonicInstant {
        let mono = MonotonicInstant.now().nanoseconds
        let real = gpioClockNanos(CLOCK_REALTIME)
        if (t &- mono).magnitude <= (t &- real).magnitude { return MonotonicInstant(nanoseconds: t) }
        return MonotonicInstant(nanoseconds: t &- real &+ mono)
    }
}

/// An input requested for both-edge events.
private final class LibGPIODInput: GPIOInput {
    let name: String
    let chip: String
    let offset: UInt32
    let eventFD: Int32
    let initial: Bool
    /// The software debounce (zero when the kernel debounces the line).
    let debounce: Duration
    /// nil once released by `stop()`.
    private let request: Locked<GPIODLineRequest?>

    init(name: String, chip: String, offset: UInt32, request: GPIODLineRequest, debounce: Duration) {
        self.name = name
        self.chip = chip
        self.offset = offset
        self.eventFD = request.eventFD
        self.initial = request.initial
        self.debounce = debounce
        self.request = Locked(request)
    }

    func read() throws(GPIOError) -> Bool {
        try request.withLock { (r) throws(GPIOError) -> Bool in
            guard let r else { throw GPIOError.io(chip, offset: offset, line: name, errno: nil, operation: "read (line released)") }
            let v = r.value()
            if v < 0 { throw GPIOError.io(chip, offset: offset, line: name, errno: errno, operation: "read") }
            return v == 1
        }
    }

    /// Reads the queued events (event thread only); returns 0 or the errno.
    func readEvents(_ events: inout [GPIODEvent]) -> Int32 {
        request.withLock { r in
            guard let r else { return EBADF }
            return r.readEvents(&events)
        }
    }

    func release() {
        request.withLock { r in
            r?.release()
            r = nil
        }
    }
}

/// An output requested with its initial level.
private final class LibGPIODOutput: GPIOOutput {
    let name: String
    let chip: String
    let offset: UInt32
    private let request: Locked<GPIODLineRequest?>

    init(name: String, chip: String, offset: UInt32, request: GPIODLineRequest) {
        self.name = name
        self.chip = chip
        self.offset = offset
        self.request = Locked(request)
    }

    func write(_ value: Bool) throws(GPIOError) {
        try request.withLock { (r) throws(GPIOError) in
            guard let r else { throw GPIOError.io(chip, offset: offset, line: name, errno: nil, operation: "write (line released)") }
            let code = r.write(value)
            if code != 0 { throw GPIOError.io(chip, offset: offset, line: name, errno: code, operation: "write") }
        }
    }

    func release() {
        request.withLock { r in
            r?.release()
            r = nil
        }
    }
}
