import CSystemShims
import FoundationEssentials
import EdgeRuntime
import Synchronization

/// Whether the wall clock can be trusted: synchronised to a time source, as the kernel
/// (`adjtimex`: not `STA_UNSYNC`, not `TIME_ERROR`) or systemd-timesyncd (the flag file
/// `/run/systemd/timesync/synchronized`) says. Either one saying "synchronised" is enough.
///
/// Read on its own thread every `interval` (never on the control loop, which only loads an
/// atomic). Until the first check it answers "unsynchronised": a gateway without RTC that
/// boots with a stale clock must not act on it.
///
/// Test-only override: when the environment variable `EDGE_AGENT_TIME_SYNC_FLAG` names a
/// path, that file's existence alone decides (the kernel is not asked), so a test can force
/// "unsynchronised" on a machine whose clock is synchronised, and then "synchronised".
/// Production units never set it.
public final class ClockTrust: Sendable {
    /// How the agent's messages and status describe the clock (`time_quality`).
    public enum Quality: String, Sendable {
        case synchronised
        case unsynchronised
    }

    /// The process-wide instance (started on first use).
    public static let shared = ClockTrust()

    public static let timesyncdFlag = "/run/systemd/timesync/synchronized"
    public static let overrideVariable = "EDGE_AGENT_TIME_SYNC_FLAG"

    private let state = Atomic<Int>(-1)   // -1 not checked yet, 0 no, 1 yes
    private let sourceName = Locked("not checked yet")
    private let observers = Locked<[@Sendable (Quality) -> Void]>([])
    private let override: String?
    private let interval: Duration

    init(environment: [String: String] = ProcessInfo.processInfo.environment, interval: Duration = .seconds(1)) {
        override = environment[Self.overrideVariable].flatMap { $0.isEmpty ? nil : $0 }
        self.interval = interval
        check()
        OSThread.detached(name: "clock-trust") { [self] in
            while true {
                MonotonicInstant.sleep(for: self.interval)
                self.check()
            }
        }
    }

    /// True once a source says the clock is synchronised (an atomic load: fine on the loop).
    public var isSynchronised: Bool { state.load(ordering: .relaxed) == 1 }

    public var quality: Quality { isSynchronised ? .synchronised : .unsynchronised }

    /// What decided the last answer (for the status view).
    public var source: String { sourceName.withLock { $0 } }

    /// Calls `observer` on the checking thread whenever the quality changes.
    public func onChange(_ observer: @escaping @Sendable (Quality) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    private func check() {
        let (synced, source) = Self.probe(override: override)
        sourceName.withLock { $0 = source }
        let old = state.exchange(synced ? 1 : 0, ordering: .relaxed)
        if old != -1, old != (synced ? 1 : 0) {
            let quality: Quality = synced ? .synchronised : .unsynchronised
            for o in observers.withLock({ $0 }) { o(quality) }
        }
    }

    static func probe(override: String?) -> (Bool, String) {
        if let override {
            let yes = FileManager.default.fileExists(atPath: override)
            return (yes, "test override \(override): \(yes ? "present" : "absent")")
        }
        if FileManager.default.fileExists(atPath: timesyncdFlag) { return (true, "systemd-timesyncd") }
        let kernel = edge_kernel_clock_synchronised()
        if kernel == 1 { return (true, "kernel (adjtimex)") }
        return (false, kernel == 0 ? "kernel says unsynchronised; no timesyncd flag" : "adjtimex failed (\(-kernel)); no timesyncd flag")
    }
}
