import EdgeRuntime
import FoundationEssentials

/// Wall time that advances only with the monotonic clock: the wall clock read once, at `init`,
/// plus the monotonic time elapsed since. A wall-clock jump after `init` (RTC reset, NTP step,
/// an operator's `date -s`) does not move it, so ages and deadlines measured on it are real
/// durations. The stores under the state folder use it for age pruning (outbox) and for
/// forgetting expired command ids (replay store).
///
/// With an injected wall clock and no monotonic clock (tests driving a fake wall clock), it
/// simply is that wall clock.
struct SteadyWallClock: Sendable {
    private let wall: @Sendable () -> Date
    private let elapsed: (@Sendable () -> Duration)?
    private let anchorWall: Date
    private let anchorElapsed: Duration

    /// - Parameters:
    ///   - wall: the wall clock (default `Date()`).
    ///   - monotonic: a monotonic reading (any origin); default CLOCK_MONOTONIC when `wall` is
    ///     also the default, none when only `wall` is injected.
    init(wall: (@Sendable () -> Date)?, monotonic: (@Sendable () -> Duration)?) {
        self.wall = wall ?? { Date() }
        if let monotonic {
            elapsed = monotonic
        } else if wall == nil {
            elapsed = { .nanoseconds(MonotonicInstant.now().nanoseconds) }
        } else {
            elapsed = nil
        }
        anchorWall = self.wall()
        anchorElapsed = elapsed?() ?? .zero
    }

    /// The wall clock now, jumps included.
    func wallNow() -> Date { wall() }

    /// The wall time at `init` plus the monotonic time since (the wall clock when there is no monotonic clock).
    func steadyNow() -> Date {
        guard let elapsed else { return wall() }
        let d = elapsed() - anchorElapsed
        return anchorWall.addingTimeInterval(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}
