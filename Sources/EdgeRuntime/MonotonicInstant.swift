#if canImport(Glibc)
public import Glibc
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC), in nanoseconds: the one time type of the
/// control loop, the buses, GPIO edge timestamps and every wait.
///
/// Control logic takes instants as parameters and never reads a clock itself, so tests
/// drive it with a virtual clock (any starting value). Wall-clock jumps never move it.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current CLOCK_MONOTONIC reading (only the runtime calls this; control logic never does).
    public static func now() -> MonotonicInstant {
        var ts = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return MonotonicInstant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }

    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (a: MonotonicInstant, d: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: a.nanoseconds &+ d.nanosecondsClamped)
    }

    public static func - (a: MonotonicInstant, d: Duration) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: a.nanoseconds &- d.nanosecondsClamped)
    }

    /// Time elapsed from `b` to `a`.
    public static func - (a: MonotonicInstant, b: MonotonicInstant) -> Duration {
        .nanoseconds(a.nanoseconds &- b.nanoseconds)
    }

    public var description: String { "t+\(Double(nanoseconds) / 1e9)s" }

    /// The instant as a `timespec` (for clock_nanosleep, pthread_cond_timedwait); negative is 0.
    public var timespec: Glibc.timespec {
        let n = max(0, nanoseconds)
        return Glibc.timespec(tv_sec: Int(n / 1_000_000_000), tv_nsec: Int(n % 1_000_000_000))
    }

    /// Sleeps the calling thread until the absolute instant (clock_nanosleep, TIMER_ABSTIME,
    /// resumed after signals). Returns at once when it has passed.
    public static func sleep(until deadline: MonotonicInstant) {
        var ts = deadline.timespec
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Sleeps the calling thread for `duration` of monotonic time (the Thread.sleep replacement).
    public static func sleep(for duration: Duration) {
        sleep(until: now() + duration)
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64.
    public var nanosecondsClamped: Int64 {
        let c = components
        let (s, o1) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if o1 { return c.seconds < 0 ? .min : .max }
        let (r, o2) = s.addingReportingOverflow(c.attoseconds / 1_000_000_000)
        return o2 ? (s < 0 ? .min : .max) : r
    }

    /// Seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
