import FoundationEssentials
import Logging
import Protocols
import EdgeRuntime

/// systemd's side of the agent: READY=1 once every service has started, WATCHDOG=1 every half
/// watchdog interval while every control loop ticks within its allowance (`LoopHealth`),
/// STOPPING=1 first thing at shutdown. Without `NOTIFY_SOCKET` it does nothing.
final class WatchdogService: AgentService {
    let name = "watchdog"
    private let logger: Logger
    private let loops: @Sendable () -> [any MonitoredLoop]
    private let statusText: @Sendable () -> String
    private let notifier: SystemdNotifier?
    private let wake = EdgeRuntime.Lock()
    private let stopping = Locked(false)

    init(logger: Logger, notifier: SystemdNotifier? = SystemdNotifier.fromEnvironment(),
         loops: @escaping @Sendable () -> [any MonitoredLoop], status: @escaping @Sendable () -> String) {
        self.logger = logger
        self.notifier = notifier
        self.loops = loops
        self.statusText = status
    }

    func start() {
        guard let notifier else { return }
        try? notifier.notify("READY=1\nSTATUS=\(statusText())")
        guard let interval = notifier.watchdogInterval else { return }
        OSThread.detached(name: "watchdog") { [self] in
            var withholding = false
            while !stopping.withLock({ $0 }) {
                // The loops of the running generation (a reload replaces the loop).
                SystemdWatchdog(notifier: notifier, health: LoopHealth(loops: loops()), logger: logger)
                    .check(now: MonotonicInstant.now(), withholding: &withholding)
                wake.lock()
                let until = MonotonicInstant.now() + interval / 2
                while !stopping.withLock({ $0 }), wake.wait(until: until) {}
                wake.unlock()
            }
        }
    }

    func stop(deadline: MonotonicInstant) {
        stopping.withLock { $0 = true }
        wake.lock()
        wake.broadcast()
        wake.unlock()
        try? notifier?.notify("STOPPING=1")
    }
}
