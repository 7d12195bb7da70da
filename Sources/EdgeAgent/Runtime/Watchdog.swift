public import EdgeRuntime
public import Logging
public import Protocols

/// A loop the watchdog watches: `LoopThread`, or a stand-in in tests.
public protocol MonitoredLoop: AnyObject, Sendable {
    var name: String { get }
    /// The longest the loop sleeps when healthy and idle (a periodic loop's period, a
    /// deadline-driven loop's longest sleep).
    var period: Duration { get }
    var stats: LoopStats { get }
}

extension LoopThread: MonitoredLoop {}

/// Whether every control loop is ticking: the condition for sending systemd `WATCHDOG=1`.
///
/// A loop is healthy while its last body run began no longer ago than its allowance (from its
/// start, before the first run): `periods` × its period, but no more than one period plus
/// `atLeast`, and never less than `atLeast`. A fast periodic loop (10 ms) gets `atLeast`; a loop
/// that sleeps up to 1 s between deadlines is not stalled while it sleeps, and is once it has
/// been silent `atLeast` beyond that. A loop not started is unhealthy; with no loops at all the
/// verdict is healthy.
public struct LoopHealth: Sendable {
    /// One loop that has not ticked within its allowance.
    public struct Stall: Sendable, Equatable, CustomStringConvertible {
        public var loop: String
        /// Time since its last tick (or start); nil when it never started.
        public var silentFor: Duration?
        public var allowance: Duration

        public var description: String {
            guard let silentFor else { return "loop \(loop) is not running" }
            return "loop \(loop) has not ticked for \(silentFor) (allowed \(allowance))"
        }
    }

    public let loops: [any MonitoredLoop]
    public let periods: Int
    public let atLeast: Duration

    public init(loops: [any MonitoredLoop], periods: Int = 10, atLeast: Duration = .seconds(1)) {
        self.loops = loops
        self.periods = periods
        self.atLeast = atLeast
    }

    /// max(min(periods × period, period + atLeast), atLeast).
    public func allowance(period: Duration) -> Duration { max(min(period * periods, period + atLeast), atLeast) }

    /// Pure check of one loop's stats at `now`.
    public func stall(name: String, period: Duration, stats: LoopStats, now: MonotonicInstant) -> Stall? {
        let allowed = allowance(period: period)
        guard stats.isRunning, let since = stats.lastTick ?? stats.startedAt else {
            return Stall(loop: name, silentFor: nil, allowance: allowed)
        }
        let silent = now - since
        return silent > allowed ? Stall(loop: name, silentFor: silent, allowance: allowed) : nil
    }

    /// The loops that have stalled at `now` (empty when healthy).
    public func stalls(now: MonotonicInstant) -> [Stall] {
        loops.compactMap { stall(name: $0.name, period: $0.period, stats: $0.stats, now: now) }
    }

    public func isHealthy(now: MonotonicInstant) -> Bool {
        loops.allSatisfy { stall(name: $0.name, period: $0.period, stats: $0.stats, now: now) == nil }
    }
}

/// Sends systemd `WATCHDOG=1` only while every control loop is ticking, so a stuck loop gets
/// the process restarted (`WatchdogSec=` in the unit).
public struct SystemdWatchdog: Sendable {
    /// The outcome of one check.
    public enum Verdict: Sendable {
        case pinged
        case withheld([LoopHealth.Stall])
        case sendFailed(SystemdNotifyError)
    }

    public let notifier: SystemdNotifier
    public let health: LoopHealth
    /// How often to check and ping: half the watchdog interval by default; nil = watchdog off.
    public let pingInterval: Duration?
    private let logger: Logger

    public init(notifier: SystemdNotifier, health: LoopHealth, logger: Logger, pingInterval: Duration? = nil) {
        self.notifier = notifier
        self.health = health
        self.logger = logger
        self.pingInterval = pingInterval ?? notifier.watchdogInterval.map { $0 / 2 }
    }

    /// One check at `now`: pings when healthy.
    public func step(now: MonotonicInstant) -> Verdict {
        let stalls = health.stalls(now: now)
        guard stalls.isEmpty else { return .withheld(stalls) }
        do throws(SystemdNotifyError) {
            try notifier.notify("WATCHDOG=1")
            return .pinged
        } catch {
            return .sendFailed(error)
        }
    }

    /// One check at `now` (`step`), logging only when pings stop and resume: `withholding`
    /// carries that across checks.
    public func check(now: MonotonicInstant, withholding: inout Bool) {
        switch step(now: now) {
        case .pinged:
            if withholding {
                logger.notice("all control loops ticking again: watchdog pings resumed")
                withholding = false
            }
        case .withheld(let stalls):
            if !withholding {
                logger.critical("withholding WATCHDOG=1: \(stalls.map(\.description).joined(separator: "; ")); systemd will restart the agent")
                withholding = true
            }
        case .sendFailed(let error):
            logger.error("watchdog ping failed: \(error)")
        }
    }
}
