public import EdgeRuntime
#if canImport(Glibc)
import Glibc
#endif

// The GPIO line API, in the spirit of the Linux GPIO consumer API: lines are handles opened
// from a backend, values are logical (active-low already applied), and a line has no default
// direction (it is opened either as an input or as an output).

/// A GPIO failure with the field context a technician needs: chip, line offset, line name, errno.
///
/// `description` is one sentence naming the chip/line and what to check on the gateway.
public struct GPIOError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, independent of the backend.
    public enum Kind: String, Sendable, Equatable {
        /// The chip name/path/label/number matches no chip on this gateway.
        case chipNotFound
        /// The chip exists but has no line at this offset (or the simulator has no such line).
        case lineNotFound
        /// The line is held by another consumer (EBUSY), or already opened by us.
        case lineUnavailable
        /// The process may not open the chip or request the line (EACCES/EPERM).
        case permissionDenied
        /// Any other system-call failure, or use of a released line.
        case io
        /// The field simulator's control socket cannot be reached (simulator-link backend).
        case simulatorUnreachable
        /// A call that is not valid in the backend's current state (e.g. events started twice).
        case invalidRequest
    }

    public var kind: Kind
    /// Chip name as configured (`gpiochip0`, a label, a path), or the simulator socket path.
    public var chip: String
    public var offset: UInt32?
    /// The line's name in the board file.
    public var line: String?
    /// The C errno, when a system call failed.
    public var errno: Int32?
    /// The complete technician-readable sentence.
    public var message: String

    public init(kind: Kind, chip: String, offset: UInt32? = nil, line: String? = nil, errno: Int32? = nil, message: String) {
        self.kind = kind
        self.chip = chip
        self.offset = offset
        self.line = line
        self.errno = errno
        self.message = message
    }

    public var description: String { message }
}

extension GPIOError {
    /// `gpiochip0:17 (presence-a)`.
    static func lineLabel(chip: String, offset: UInt32?, line: String?) -> String {
        var s = chip
        if let offset { s += ":\(offset)" }
        if let line { s += " (\(line))" }
        return s
    }

    /// `no such file or directory`: strerror with a lower-case first letter, for mid-sentence use.
    static func reason(_ code: Int32) -> String {
        guard let p = strerror(code) else { return "errno \(code)" }
        let s = String(cString: p)
        return s.prefix(1).lowercased() + s.dropFirst()
    }

    static func chipNotFound(_ chip: String, errno code: Int32) -> GPIOError {
        GPIOError(kind: .chipNotFound, chip: chip, errno: code,
                  message: "GPIO chip \(chip) not found (\(reason(code))): check the board file's chip names with gpiodetect")
    }

    static func permissionDenied(_ chip: String, offset: UInt32? = nil, line: String? = nil, errno code: Int32, what: String) -> GPIOError {
        GPIOError(kind: .permissionDenied, chip: chip, offset: offset, line: line, errno: code,
                  message: "no permission to \(what) GPIO \(lineLabel(chip: chip, offset: offset, line: line)) (\(reason(code))): the service user needs read/write access to /dev/\(chip) (group gpio or a udev rule)")
    }

    static func lineNotFound(_ chip: String, offset: UInt32, line: String, errno code: Int32?) -> GPIOError {
        let why = code.map { " (\(reason($0)))" } ?? ""
        return GPIOError(kind: .lineNotFound, chip: chip, offset: offset, line: line, errno: code,
                         message: "GPIO line \(lineLabel(chip: chip, offset: offset, line: line)) does not exist\(why): check the board file's offset with gpioinfo \(chip)")
    }

    static func lineBusy(_ chip: String, offset: UInt32, line: String, errno code: Int32?, holder: String?) -> GPIOError {
        let who = holder.map { "held by consumer \"\($0)\"" } ?? "held by another consumer"
        return GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: line, errno: code,
                         message: "GPIO line \(lineLabel(chip: chip, offset: offset, line: line)) is busy, \(who): see gpioinfo \(chip) and stop the other user")
    }

    static func io(_ chip: String, offset: UInt32?, line: String?, errno code: Int32?, operation: String) -> GPIOError {
        let why = code.map { " (\(reason($0)))" } ?? ""
        return GPIOError(kind: .io, chip: chip, offset: offset, line: line, errno: code,
                         message: "GPIO \(operation) failed on \(lineLabel(chip: chip, offset: offset, line: line))\(why)")
    }
}

/// One debounced level change of an input line.
public struct GPIOEdge: Sendable, Equatable {
    /// The line's name in the board file.
    public var line: String
    /// The new logical level (active-low already applied).
    public var value: Bool
    /// When the line reached this level (CLOCK_MONOTONIC): the kernel's event timestamp for
    /// libgpiod, the receive time for the simulator link, the injected time for the simulation.
    public var timestamp: MonotonicInstant
    /// True for the line's first known level (delivered once when events start or when the line
    /// is opened afterwards), not an observed transition.
    public var initial: Bool

    public init(line: String, value: Bool, timestamp: MonotonicInstant, initial: Bool = false) {
        self.line = line
        self.value = value
        self.timestamp = timestamp
        self.initial = initial
    }
}

/// An input line handle. `read()` returns the current logical level (not debounced).
public protocol GPIOInput: AnyObject, Sendable {
    var name: String { get }
    func read() throws(GPIOError) -> Bool
}

/// An output line handle. `write(_:)` sets the logical level (active-low applied below).
public protocol GPIOOutput: AnyObject, Sendable {
    var name: String { get }
    func write(_ value: Bool) throws(GPIOError)
}

/// A source of GPIO lines: libgpiod on a gateway, an in-process simulation, or the field simulator.
///
/// Lines are opened once each (opening a chip/offset or name twice is `lineUnavailable`). After
/// `stop()` every line is released and handles throw `.io`.
public protocol GPIOBackend: Sendable {
    func openInput(name: String, chip: String, offset: UInt32, activeLow: Bool, debounce: Duration) throws(GPIOError) -> any GPIOInput
    func openOutput(name: String, chip: String, offset: UInt32, activeLow: Bool, initial: Bool) throws(GPIOError) -> any GPIOOutput
    /// Starts the edge-event thread: every debounced edge of every opened input is delivered to
    /// `handler` (on that thread) with its CLOCK_MONOTONIC timestamp. Each input's current level
    /// is delivered once first as an edge with `initial == true` (also for inputs opened later),
    /// so the handler alone knows the full state. Call at most once.
    func startEvents(_ handler: @escaping @Sendable (GPIOEdge) -> Void) throws(GPIOError)
    /// Stops the event thread (joins it) and releases every line. Idempotent.
    func stop()
}

/// Software debounce for one input line, pure (time is passed in): a new level is accepted only
/// once it has held for `debounce`; shorter chatter is dropped. libgpiod v1 has no kernel debounce,
/// so every backend runs this same code.
///
/// Invariants: `stable` is the last accepted level (nil until the first observation); a pending
/// level always differs from `stable`; an accepted edge carries the time the level *changed*,
/// not the time the debounce interval ran out.
public struct GPIODebouncer: Sendable, Equatable {
    /// An accepted level change.
    public struct Settled: Sendable, Equatable {
        public var value: Bool
        public var at: MonotonicInstant
        public init(value: Bool, at: MonotonicInstant) {
            self.value = value
            self.at = at
        }
    }

    public let debounceNanos: Int64
    public private(set) var stable: Bool?
    private var pendingValue = false
    private var pendingSince = MonotonicInstant(nanoseconds: 0)
    private var hasPending = false

    /// `initial` nil: the first observation is accepted at once (it tells the level, it is no chatter).
    public init(debounce: Duration, initial: Bool?) {
        debounceNanos = max(0, debounce.nanosecondsClamped)
        stable = initial
    }

    /// When the pending level will be accepted if nothing changes before then.
    public var deadline: MonotonicInstant? {
        hasPending ? MonotonicInstant(nanoseconds: pendingSince.nanoseconds &+ debounceNanos) : nil
    }

    /// Feeds a level observed at `at` (observations in time order). Returns an accepted edge:
    /// this one when no debounce applies, or a pending one whose interval ran out before `at`.
    public mutating func observe(_ value: Bool, at: MonotonicInstant) -> Settled? {
        let matured = settle(now: at)
        guard let current = stable else {
            stable = value
            return Settled(value: value, at: at)
        }
        if value == current {
            hasPending = false  // chatter returned to the accepted level
        } else if debounceNanos == 0 {
            stable = value
            return Settled(value: value, at: at)
        } else if !(hasPending && pendingValue == value) {
            hasPending = true
            pendingValue = value
            pendingSince = at
        }
        return matured
    }

    /// Accepts the pending level if it has held for the debounce interval by `now`.
    public mutating func settle(now: MonotonicInstant) -> Settled? {
        guard hasPending, now.nanoseconds >= pendingSince.nanoseconds &+ debounceNanos else { return nil }
        hasPending = false
        stable = pendingValue
        return Settled(value: pendingValue, at: pendingSince)
    }
}

/// The debouncers of a backend's inputs, by index; owned by one thread (or one lock).
///
/// Until `delivering` is set (events started) levels are tracked but nothing is emitted; each
/// line's first delivery is its current level marked `initial`, then every accepted transition.
struct GPIOEdgeLines {
    private(set) var names: [String] = []
    private(set) var debouncers: [GPIODebouncer] = []
    /// Per line: the initial level has not been delivered yet.
    private var initialPending: [Bool] = []
    var delivering = false

    var count: Int { names.count }

    mutating func add(name: String, debounce: Duration, initial: Bool?) -> Int {
        names.append(name)
        debouncers.append(GPIODebouncer(debounce: debounce, initial: initial))
        initialPending.append(true)
        return names.count - 1
    }

    func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// Delivers the known initial levels not delivered yet (each line once).
    mutating func emitInitial(now: MonotonicInstant, _ emit: (GPIOEdge) -> Void) {
        guard delivering else { return }
        for i in 0..<names.count { emitInitial(i, now: now, emit) }
    }

    private mutating func emitInitial(_ i: Int, now: MonotonicInstant, _ emit: (GPIOEdge) -> Void) {
        guard initialPending[i], let level = debouncers[i].stable else { return }
        initialPending[i] = false
        emit(GPIOEdge(line: names[i], value: level, timestamp: now, initial: true))
    }

    private mutating func deliver(_ i: Int, _ settled: GPIODebouncer.Settled?, at: MonotonicInstant, _ emit: (GPIOEdge) -> Void) {
        guard delivering else { return }
        if initialPending[i] {
            // The first delivery is the level itself (it covers any transition to it).
            emitInitial(i, now: settled?.at ?? at, emit)
        } else if let settled {
            emit(GPIOEdge(line: names[i], value: settled.value, timestamp: settled.at))
        }
    }

    mutating func observe(_ index: Int, value: Bool, at: MonotonicInstant, _ emit: (GPIOEdge) -> Void) {
        let settled = debouncers[index].observe(value, at: at)
        deliver(index, settled, at: at, emit)
    }

    mutating func settleDue(now: MonotonicInstant, _ emit: (GPIOEdge) -> Void) {
        for i in 0..<debouncers.count {
            if let s = debouncers[i].settle(now: now) { deliver(i, s, at: now, emit) }
        }
    }

    /// The earliest pending debounce deadline.
    var nextDeadline: MonotonicInstant? {
        var best: MonotonicInstant?
        for d in debouncers {
            if let t = d.deadline, best.map({ t < $0 }) ?? true { best = t }
        }
        return best
    }
}

// MARK: - Small system helpers shared by the GPIO backends (Glibc only, no libgpiod).

/// A clock reading in nanoseconds (CLOCK_REALTIME, for telling a kernel timestamp's clock apart).
func gpioClockNanos(_ clock: clockid_t) -> Int64 {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}

/// poll() timeout in whole milliseconds (rounded up) until `deadline`; -1 when there is none.
func gpioPollTimeout(until deadline: MonotonicInstant?, cap: Int64? = nil) -> Int32 {
    var ms: Int64 = -1
    if let deadline {
        let remaining = deadline.nanoseconds &- MonotonicInstant.now().nanoseconds
        ms = remaining <= 0 ? 0 : (remaining + 999_999) / 1_000_000
    }
    if let cap, ms < 0 || ms > cap { ms = cap }
    return Int32(clamping: ms)
}

/// A self-pipe that wakes a thread blocked in poll(): write end for any thread, read end polled.
final class GPIOWakePipe: Sendable {
    let readFD: Int32
    let writeFD: Int32

    init() {
        var fds: [Int32] = [-1, -1]
        let rc = pipe(&fds)
        precondition(rc == 0, "pipe() failed: errno \(errno)")
        readFD = fds[0]
        writeFD = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    /// Wakes the poller (never blocks: a full pipe already means "woken").
    func wake() {
        var b: UInt8 = 1
        _ = Glibc.write(writeFD, &b, 1)
    }

    /// Empties the pipe (on the poller's thread).
    func drain() {
        var buf = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while withUnsafeMutableBytes(of: &buf, { Glibc.read(readFD, $0.baseAddress, $0.count) }) > 0 {}
    }
}
