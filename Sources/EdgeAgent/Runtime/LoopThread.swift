public import EdgeRuntime
#if canImport(Glibc)
import Glibc
#endif
public import Logging

/// What a `LoopThread` has done so far; a consistent snapshot, cheap to read from any thread.
public struct LoopStats: Sendable, Equatable {
    /// Body runs in total (periodic ticks and wake-ups).
    public var ticks: UInt64 = 0
    /// Body runs caused by `wake()` before the next periodic deadline.
    public var wakeups: UInt64 = 0
    /// Periodic deadlines skipped because the body overran (the grid is kept, never drifted).
    public var missedPeriods: UInt64 = 0
    /// When the thread started its loop; nil before `start()`.
    public var startedAt: MonotonicInstant?
    /// When the last body run began; nil before the first.
    public var lastTick: MonotonicInstant?
    /// Worst lateness of a periodic tick (body start minus its deadline).
    public var worstLateness: Duration = .zero
    /// About the 99th percentile of periodic-tick lateness: the upper bound of its power-of-two
    /// microsecond bucket, capped at `worstLateness`.
    public var p99Lateness: Duration = .zero
    /// Worst delay from a `wake()` call to the body run it caused.
    public var worstWakeLatency: Duration = .zero
    /// True when the thread runs under SCHED_FIFO.
    public var isRealtime = false
    /// True between the loop's start and its stop.
    public var isRunning = false

    public init() {}
}

/// A control loop on its own named OS thread: the body runs at every absolute CLOCK_MONOTONIC
/// deadline of a fixed period (start, start + period, …) and, in between, as soon as possible
/// after `wake()` (an input event).
///
/// The thread sleeps in `pthread_cond_timedwait` on a CLOCK_MONOTONIC condition variable with
/// an absolute deadline, so a wake-up is prompt and the period grid never drifts; the mutex is
/// priority-inheriting, so a low-priority thread calling `wake()` cannot stall a SCHED_FIFO
/// loop. Nothing is allocated per tick. The body must not block on I/O; if it overruns, missed
/// deadlines are counted and the next one on the grid is used. `body(now, scheduledFor)`:
/// `scheduledFor` is the deadline of a periodic tick, or the time `wake()` was called.
public final class LoopThread: Sendable {
    public let name: String
    public let period: Duration
    /// SCHED_FIFO priority asked for at start (1-99); 0 = normal scheduling.
    public let realtimePriority: Int
    private let logger: Logger
    private let body: @Sendable (_ now: MonotonicInstant, _ scheduledFor: MonotonicInstant) -> Void
    private let signal = LoopSignal()
    private let statsState = Locked(StatsState())
    private let lifecycle = Locked(Lifecycle())

    private struct Lifecycle {
        var thread: OSThread?
        var started = false
        var exited = false
    }

    public init(name: String, period: Duration, realtimePriority: Int, logger: Logger,
                body: @escaping @Sendable (_ now: MonotonicInstant, _ scheduledFor: MonotonicInstant) -> Void) {
        precondition(period > .zero, "LoopThread \(name): period must be positive")
        self.name = name
        self.period = period
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
        let periodNanos = max(1, period.nanosecondsClamped)
        var next = MonotonicInstant.now().nanoseconds  // the first tick runs at once
        statsState.withLock { s in
            s.stats.startedAt = MonotonicInstant(nanoseconds: next)
            s.stats.isRealtime = realtime
            s.stats.isRunning = true
        }
        defer {
            statsState.withLock { $0.stats.isRunning = false }
            lifecycle.withLock { $0.exited = true }
        }

        while true {
            switch signal.wait(until: MonotonicInstant(nanoseconds: next)) {
            case .stop:
                return
            case .deadline:
                let now = MonotonicInstant.now()
                let scheduled = MonotonicInstant(nanoseconds: next)
                next &+= periodNanos
                var missed: Int64 = 0
                if next <= now.nanoseconds {
                    missed = (now.nanoseconds - next) / periodNanos + 1
                    next &+= missed * periodNanos
                }
                statsState.withLock { $0.recordTick(at: now, lateness: now.nanoseconds - scheduled.nanoseconds, missed: missed) }
                body(now, scheduled)
            case .wake(let requestedAt):
                let now = MonotonicInstant.now()
                statsState.withLock { $0.recordWake(at: now, latency: now.nanoseconds - requestedAt) }
                body(now, MonotonicInstant(nanoseconds: requestedAt))
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

/// The loop thread's counters, updated under a lock once per tick without allocating.
private struct StatsState {
    static let bucketCount = 32
    var stats = LoopStats()
    /// Periodic-tick lateness: bucket 0 < 1 µs, bucket b in [2^(b-1), 2^b) µs; the last is open.
    var buckets = [UInt64](repeating: 0, count: StatsState.bucketCount)
    var periodicTicks: UInt64 = 0

    mutating func recordTick(at now: MonotonicInstant, lateness: Int64, missed: Int64) {
        stats.ticks &+= 1
        stats.lastTick = now
        stats.missedPeriods &+= UInt64(max(0, missed))
        let late = max(0, lateness)
        if late > stats.worstLateness.nanosecondsClamped { stats.worstLateness = .nanoseconds(late) }
        let micros = UInt64(late / 1000)
        let bucket = micros == 0 ? 0 : min(Self.bucketCount - 1, 64 - micros.leadingZeroBitCount)
        buckets[bucket] &+= 1
        periodicTicks &+= 1
    }

    mutating func recordWake(at now: MonotonicInstant, latency: Int64) {
        stats.ticks &+= 1
        stats.wakeups &+= 1
        stats.lastTick = now
        if latency > stats.worstWakeLatency.nanosecondsClamped { stats.worstWakeLatency = .nanoseconds(latency) }
    }

    func snapshot() -> LoopStats {
        var s = stats
        guard periodicTicks > 0 else { return s }
        let target = (periodicTicks * 99 + 99) / 100  // ceil(0.99 n)
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

/// The loop's flags behind the one `Lock` (priority-inheriting, CLOCK_MONOTONIC condition).
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

    func wake(at: Int64) {
        flags.withLock { f in
            if !f.wakePending {
                f.wakePending = true
                f.wakeRequestedAt = at  // the oldest pending request counts for latency
            }
        }
        flags.signal()
    }

    func requestStop() {
        flags.withLock { $0.stopRequested = true }
        flags.signal()
    }

    /// Blocks until the absolute monotonic `deadline`, a wake-up or a stop request. A deadline
    /// that has come also consumes a pending wake-up (one body run serves both).
    func wait(until deadline: MonotonicInstant) -> Reason {
        let reason = flags.wait(until: deadline) { f -> Reason? in
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
        return reason ?? .deadline
    }
}
