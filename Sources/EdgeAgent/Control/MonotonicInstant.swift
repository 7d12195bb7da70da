#if canImport(Glibc)
import Glibc
#endif

/// A point on the monotonic clock (CLOCK_MONOTONIC), in nanoseconds.
///
/// Control logic takes instants as parameters and never reads a clock itself, so tests
/// drive it with a virtual clock (any starting value). Wall-clock jumps never move it.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// The current CLOCK_MONOTONIC reading (only the runtime calls this; control logic never does).
    public static func now() -> MonotonicInstant {
        var ts = timespec()
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
