import CSystemShims
#if canImport(Glibc)
import Glibc
#endif
public import Logging
import Synchronization

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
    private let statsState = Mutex(StatsState())
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var thread: pthread_t?
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
            l.thread = startLoopThread { [self] in run() }
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
        let thread = lifecycle.withLock { l -> pthread_t? in
            defer { l.thread = nil }
            return l.thread
        }
        guard let thread else { return }
        if pthread_equal(thread, pthread_self()) != 0 {
            _ = pthread_detach(thread)
            return
        }
        pthread_join(thread, nil)
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
                let thread = lifecycle.withLock { l -> pthread_t? in
                    defer { l.thread = nil }
                    return l.thread
                }
                if let thread { _ = pthread_detach(thread) }
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

    private func run() {
        _ = edge_set_thread_name(name)
        let realtime = realtimePriority > 0 && enterRealtime()
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
            switch signal.wait(untilMonotonicNanos: next) {
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

    /// Asks for SCHED_FIFO; returns whether it was granted (logs either way).
    private func enterRealtime() -> Bool {
        var param = sched_param()
        param.sched_priority = Int32(clamping: realtimePriority)
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param)
        if rc == 0 {
            logger.info("control loop runs with real-time scheduling", metadata: ["loop": "\(name)", "policy": "SCHED_FIFO", "priority": "\(realtimePriority)"])
            return true
        }
        let reason = strerror(rc).map { String(cString: $0) } ?? "errno \(rc)"
        logger.warning("control loop runs with normal scheduling: SCHED_FIFO priority \(realtimePriority) refused (\(reason)); grant CAP_SYS_NICE or LimitRTPRIO=\(realtimePriority) in the unit to get it", metadata: [
            "loop": "\(name)", "errno": "\(rc)",
        ])
        return false
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

/// A priority-inheriting mutex and a CLOCK_MONOTONIC condition variable, with the loop's flags.
/// Invariant: the flags are read and written only with the mutex held.
private final class LoopSignal: @unchecked Sendable {
    enum Reason {
        case deadline
        case wake(requestedAt: Int64)
        case stop
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private var wakePending = false
    private var wakeRequestedAt: Int64 = 0
    private var stopRequested = false

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        var mattr = pthread_mutexattr_t()
        pthread_mutexattr_init(&mattr)
        pthread_mutexattr_setprotocol(&mattr, Int32(PTHREAD_PRIO_INHERIT))
        pthread_mutex_init(mutex, &mattr)
        pthread_mutexattr_destroy(&mattr)
        var cattr = pthread_condattr_t()
        pthread_condattr_init(&cattr)
        pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &cattr)
        pthread_condattr_destroy(&cattr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    func wake(at: Int64) {
        pthread_mutex_lock(mutex)
        if !wakePending {
            wakePending = true
            wakeRequestedAt = at  // the oldest pending request counts for latency
        }
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    func requestStop() {
        pthread_mutex_lock(mutex)
        stopRequested = true
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until the absolute monotonic `deadline`, a wake-up or a stop request. A deadline
    /// that has come also consumes a pending wake-up (one body run serves both).
    func wait(untilMonotonicNanos deadline: Int64) -> Reason {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while true {
            if stopRequested { return .stop }
            if MonotonicInstant.now().nanoseconds >= deadline {
                wakePending = false
                return .deadline
            }
            if wakePending {
                wakePending = false
                return .wake(requestedAt: wakeRequestedAt)
            }
            _ = pthread_cond_timedwait(cond, mutex, &ts)
        }
    }
}

/// Starts a joinable OS thread running `body`.
private func startLoopThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: errno \(rc)")
    return tid
}
