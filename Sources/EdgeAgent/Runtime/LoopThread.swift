public import EdgeRuntime
#if canImport(Glibc)
import Glibc
#endif
public import Logging

/// What a `LoopThread` has done so far; a consistent snapshot, cheap to read from any thread.
public struct LoopStats: Sendable, Equatable {
    /// Body runs in total (at deadlines and on wake-ups).
    public var ticks: UInt64 = 0
    /// Body runs caused by `wake()` before the next deadline.
    public var wakeups: UInt64 = 0
    /// Grid deadlines skipped because the body overran (the grid is kept, never drifted).
    public var missedPeriods: UInt64 = 0
    /// Deadlines the body asked for that were not after the run that asked (a machine that
    /// under-reports its progress); the loop ran again `LoopThread.minimumGap` later instead.
    public var pastDeadlines: UInt64 = 0
    /// When the thread started its loop; nil before `start()`.
    public var startedAt: MonotonicInstant?
    /// When the last body run began; nil before the first.
    public var lastTick: MonotonicInstant?
    /// Worst lateness of a run at a deadline (body start minus the deadline).
    public var worstLateness: Duration = .zero
    /// About the 99th percentile of deadline lateness: the upper bound of its power-of-two
    /// microsecond bucket, capped at `worstLateness`.
    public var p99Lateness: Duration = .zero
    /// Worst delay from a `wake()` call to the body run it caused.
    public var worstWakeLatency: Duration = .zero
    /// Body runs per second over the last whole window of `LoopThread.rateWindow` (deadline
    /// runs and wake-ups); before the first window ends, since the start.
    public var runsPerSecond: Double = 0
    /// True when the thread runs under SCHED_FIFO.
    public var isRealtime = false
    /// True between the loop's start and its stop.
    public var isRunning = false

    public init() {}
}

/// A control loop on its own named OS thread. The body runs at absolute CLOCK_MONOTONIC
/// deadlines and, in between, as soon as possible after `wake()` (an input event).
///
/// Deadlines: each body run returns the next instant at which time alone changes something
/// (nil: nothing pending); the loop sleeps until that instant, or at most `maxSleep` after the
/// run began, or until the next point of the fixed `grid` (start, start + grid, …) when one is
/// set, whichever comes first. A loop built with `period:` is the plain periodic loop (grid =
/// `maxSleep` = period). A deadline that is not after the run that asked for it is a bug of
/// the body: it is counted (`pastDeadlines`) and the loop runs again `minimumGap` later rather
/// than spin (a SCHED_FIFO thread that spins starves the box).
///
/// The thread sleeps on a futex word (`WakeWord`) with an absolute CLOCK_MONOTONIC deadline,
/// so a wake-up is prompt and the grid never drifts, and coming back at a deadline takes no
/// lock first (a condition variable would re-take its mutex); the flags' lock is
/// priority-inheriting, so a low-priority thread calling `wake()` cannot stall a SCHED_FIFO
/// loop. Nothing is allocated per run. The body must not block on I/O; if it overruns, missed
/// grid points are counted and the next one on the grid is used. Lateness (body start minus
/// deadline) is measured at every deadline the loop meets, whatever asked for it.
/// `body(now, scheduledFor)`: `scheduledFor` is the deadline met, or the time `wake()` was called.
public final class LoopThread: Sendable {
    public let name: String
    /// The longest the loop sleeps when nothing is due and nothing wakes it: `grid` when it is
    /// shorter than `maxSleep`, else `maxSleep` (what the watchdog allows for, `LoopHealth`).
    public let period: Duration
    /// The longest sleep between two runs.
    public let maxSleep: Duration
    /// A fixed grid of deadlines the loop also meets (nil: only the body's deadlines and `maxSleep`).
    public let grid: Duration?
    /// SCHED_FIFO priority asked for at start (1-99); 0 = normal scheduling.
    public let realtimePriority: Int
    /// How long after a run the loop runs again when the body asked for a deadline not after it.
    public static let minimumGap = Duration.milliseconds(1)
    /// The window of `LoopStats.runsPerSecond`.
    public static let rateWindow = Duration.seconds(10)
    private let logger: Logger
    private let body: @Sendable (_ now: MonotonicInstant, _ scheduledFor: MonotonicInstant) -> MonotonicInstant?
    private let signal = LoopSignal()
    private let statsState = Locked(StatsState())
    private let lifecycle = Locked(Lifecycle())

    private struct Lifecycle {
        var thread: OSThread?
        var started = false
        var exited = false
    }

    /// A periodic loop: the body runs at every point of the `period` grid (and on `wake()`).
    public convenience init(name: String, period: Duration, realtimePriority: Int, logger: Logger,
                            body: @escaping @Sendable (_ now: MonotonicInstant, _ scheduledFor: MonotonicInstant) -> Void) {
        self.init(name: name, maxSleep: period, grid: period, realtimePriority: realtimePriority, logger: logger) { now, scheduled in
            body(now, scheduled)
            return nil
        }
    }

    /// A loop that sleeps until the deadline its body returns, at most `maxSleep`, or the next
    /// point of `grid` when one is set (and runs on `wake()`).
    public init(name: String, maxSleep: Duration, grid: Duration? = nil, realtimePriority: Int, logger: Logger,
                body: @escaping @Sendable (_ now: MonotonicInstant, _ scheduledFor: MonotonicInstant) -> MonotonicInstant?) {
        precondition(maxSleep > .zero, "LoopThread \(name): maxSleep must be positive")
        precondition(grid.map { $0 > .zero } ?? true, "LoopThread \(name): the grid period must be positive")
        self.name = name
        self.maxSleep = maxSleep
        self.grid = grid
        self.period = grid.map { min($0, maxSleep) } ?? maxSleep
        self.realtimePriority = realtimePriority
        self.logger = logger
        self.body = body
    }

    /// Starts the thread (once; later calls do nothing). Asks for SCHED_FIFO at
    /// `realtimePriority` when > 0; if refused (EPERM without CAP_SYS_NICE/LimitRTPRIO) it logs a
    /// warning and runs with normal scheduling.
    public func start() {
        lifecycle.withLock { l in
            guard !l.started else { return }
            l.started = true
            // Running from now on, for the watchdog: a check between here and the thread's first
            // instruction must not report "not running" (it measures the silence from here).
            statsState.withLock { s in
                s.stats.startedAt = MonotonicInstant.now()
                s.stats.isRunning = true
            }
            l.thread = OSThread.startRealtime(name: name, priority: Int32(clamping: realtimePriority)) { [self] scheduling in run(scheduling) }
        }
    }

    /// Runs the body as soon as possible (from any thread; cheap, never blocks for long).
    public func wake() {
        signal.wake(at: MonotonicInstant.now().nanoseconds)
    }

    /// Stops the loop and joins its thread (waits for a running body to return). Idempotent.
    /// Called from the body itself, it only asks the loop to end.
    public func stop() {
        signal.requestStop()
        let thread = lifecycle.withLock { l -> OSThread? in
            defer { l.thread = nil }
            return l.thread
        }
        thread?.join()  // from the body itself it only detaches
    }

    /// Stops the loop, waiting at most `timeout` for a running body to return. Returns false
    /// (and leaves the thread detached, to end by itself) when the body is stuck: shutdown
    /// must not wait on a hung control loop. Idempotent.
    @discardableResult
    public func stop(timeout: Duration) -> Bool {
        signal.requestStop()
        let deadline = MonotonicInstant.now() + timeout
        while !lifecycle.withLock({ $0.exited || $0.thread == nil }) {
            if MonotonicInstant.now() >= deadline {
                let thread = lifecycle.withLock { l -> OSThread? in
                    defer { l.thread = nil }
                    return l.thread
                }
                thread?.detach()
                logger.critical("control loop did not stop in time; left running detached", metadata: ["loop": "\(name)", "timeout": "\(timeout)"])
                return false
            }
            usleep(1000)
        }
        stop()
        return true
    }

    public var stats: LoopStats { statsState.withLock { $0.snapshot() } }

    // MARK: The loop

    private func run(_ scheduling: OSThread.Scheduling) {
        let realtime = logScheduling(scheduling)
        let maxSleepNanos = max(1, maxSleep.nanosecondsClamped)
        let gridNanos = grid.map { max(1, $0.nanosecondsClamped) }
        let gapNanos = Self.minimumGap.nanosecondsClamped
        let start = MonotonicInstant.now().nanoseconds
        var next = start  // the first run is at once
        var gridNext: Int64? = gridNanos.map { _ in start }
        statsState.withLock { s in
            s.stats.startedAt = MonotonicInstant(nanoseconds: start)
            s.stats.isRealtime = realtime
            s.stats.isRunning = true
            s.windowStart = start
        }
        defer {
            statsState.withLock { $0.stats.isRunning = false }
            lifecycle.withLock { $0.exited = true }
        }

        while true {
            let now: MonotonicInstant
            let scheduled: MonotonicInstant
            switch signal.wait(until: MonotonicInstant(nanoseconds: next)) {
            case .stop:
                return
            case .deadline:
                now = MonotonicInstant.now()
                scheduled = MonotonicInstant(nanoseconds: next)
                var missed: Int64 = 0
                if let g = gridNanos, let due = gridNext, next >= due {
                    var n = due &+ g
                    if n <= now.nanoseconds {
                        missed = (now.nanoseconds - n) / g + 1
                        n &+= missed * g
                    }
                    gridNext = n
                }
                statsState.withLock { $0.recordDeadline(at: now, lateness: now.nanoseconds - scheduled.nanoseconds, missed: missed) }
            case .wake(let requestedAt):
                now = MonotonicInstant.now()
                scheduled = MonotonicInstant(nanoseconds: requestedAt)
                statsState.withLock { $0.recordWake(at: now, latency: now.nanoseconds - requestedAt) }
            }
            let asked = body(now, scheduled)
            // The next deadline: the body's, within maxSleep of this run, and the grid's.
            next = now.nanoseconds &+ maxSleepNanos
            if let g = gridNext, g < next { next = g }
            if let a = asked?.nanoseconds {
                if a <= now.nanoseconds {
                    next = min(next, now.nanoseconds &+ gapNanos)
                    statsState.withLock { $0.stats.pastDeadlines &+= 1 }
                } else if a < next {
                    next = a
                }
            }
        }
    }

    /// Logs how the thread is scheduled; returns whether it runs SCHED_FIFO.
    private func logScheduling(_ scheduling: OSThread.Scheduling) -> Bool {
        switch scheduling {
        case .normal:
            return false
        case .realtime:
            logger.info("control loop runs with real-time scheduling", metadata: ["loop": "\(name)", "policy": "SCHED_FIFO", "priority": "\(realtimePriority)"])
            return true
        case .refused(_, let rc):
            let reason = strerror(rc).map { String(cString: $0) } ?? "errno \(rc)"
            logger.warning("control loop runs with normal scheduling: SCHED_FIFO priority \(realtimePriority) refused (\(reason)); grant CAP_SYS_NICE or LimitRTPRIO=\(realtimePriority) in the unit to get it", metadata: [
                "loop": "\(name)", "errno": "\(rc)",
            ])
            return false
        }
    }
}

/// The loop thread's counters, updated under a lock once per run without allocating.
private struct StatsState {
    static let bucketCount = 32
    var stats = LoopStats()
    /// Deadline lateness: bucket 0 < 1 µs, bucket b in [2^(b-1), 2^b) µs; the last is open.
    var buckets = [UInt64](repeating: 0, count: StatsState.bucketCount)
    var deadlineRuns: UInt64 = 0
    /// The rate window: when it began and the runs in it.
    var windowStart: Int64 = 0
    var windowRuns: UInt64 = 0
    var rateKnown = false

    mutating func recordDeadline(at now: MonotonicInstant, lateness: Int64, missed: Int64) {
        recordRun(at: now)
        stats.missedPeriods &+= UInt64(max(0, missed))
        let late = max(0, lateness)
        if late > stats.worstLateness.nanosecondsClamped { stats.worstLateness = .nanoseconds(late) }
        let micros = UInt64(late / 1000)
        let bucket = micros == 0 ? 0 : min(Self.bucketCount - 1, 64 - micros.leadingZeroBitCount)
        buckets[bucket] &+= 1
        deadlineRuns &+= 1
    }

    mutating func recordWake(at now: MonotonicInstant, latency: Int64) {
        recordRun(at: now)
        stats.wakeups &+= 1
        if latency > stats.worstWakeLatency.nanosecondsClamped { stats.worstWakeLatency = .nanoseconds(latency) }
    }

    private mutating func recordRun(at now: MonotonicInstant) {
        stats.ticks &+= 1
        stats.lastTick = now
        windowRuns &+= 1
        let elapsed = now.nanoseconds - windowStart
        if elapsed >= LoopThread.rateWindow.nanosecondsClamped {
            stats.runsPerSecond = Double(windowRuns) * 1e9 / Double(elapsed)
            rateKnown = true
            windowStart = now.nanoseconds
            windowRuns = 0
        }
    }

    func snapshot() -> LoopStats {
        var s = stats
        if !rateKnown, let start = s.startedAt {
            let elapsed = MonotonicInstant.now().nanoseconds - start.nanoseconds
            if elapsed > 0 { s.runsPerSecond = Double(s.ticks) * 1e9 / Double(elapsed) }
        }
        guard deadlineRuns > 0 else { return s }
        let target = (deadlineRuns * 99 + 99) / 100  // ceil(0.99 n)
        var seen: UInt64 = 0
        for b in 0..<Self.bucketCount {
            seen += buckets[b]
            if seen >= target {
                let upper: Duration = b == 0 ? .microseconds(1) : .microseconds(Int64(1) << b)
                s.p99Lateness = min(upper, stats.worstLateness)
                break
            }
        }
        return s
    }
}

/// The loop's flags behind the one `Lock`, and the `WakeWord` the loop thread sleeps on (so a
/// deadline wake-up takes no lock until the flags are read; priority-inheriting when it does).
private final class LoopSignal: Sendable {
    enum Reason {
        case deadline
        case wake(requestedAt: Int64)
        case stop
    }

    private struct Flags {
        var wakePending = false
        var wakeRequestedAt: Int64 = 0
        var stopRequested = false
    }

    private let flags = Locked(Flags())
    private let word = WakeWord()

    func wake(at: Int64) {
        flags.withLock { f in
            if !f.wakePending {
                f.wakePending = true
                f.wakeRequestedAt = at  // the oldest pending request counts for latency
            }
        }
        word.bump()
    }

    func requestStop() {
        flags.withLock { $0.stopRequested = true }
        word.bump()
    }

    /// Blocks until the absolute monotonic `deadline`, a wake-up or a stop request. A deadline
    /// that has come also consumes a pending wake-up (one body run serves both).
    func wait(until deadline: MonotonicInstant) -> Reason {
        while true {
            let seen = word.value  // before the flags: a change after this bumps past `seen`
            let reason = flags.withLock { f -> Reason? in
                if f.stopRequested { return .stop }
                if MonotonicInstant.now() >= deadline {
                    f.wakePending = false
                    return .deadline
                }
                if f.wakePending {
                    f.wakePending = false
                    return .wake(requestedAt: f.wakeRequestedAt)
                }
                return nil
            }
            if let reason { return reason }
            word.wait(while: seen, until: deadline)
        }
    }
}
