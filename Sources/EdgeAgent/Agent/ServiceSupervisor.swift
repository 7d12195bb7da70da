import FoundationEssentials
import Logging
import EdgeRuntime

/// One part of the running agent with an explicit start and stop, run by `ServiceSupervisor`.
/// Its threads (bus, loop, GPIO, socket) stay real threads inside it.
protocol AgentService: AnyObject, Sendable {
    /// For logs and alarms: `field`, `uplink`, `control-socket`, ...
    var name: String { get }
    /// Brings the service up; throws with a technician-readable reason.
    func start() throws
    /// Stops the service; everything it does must be done by `deadline` (the supervisor's one
    /// shutdown deadline, shared by every service).
    func stop(deadline: MonotonicInstant)
}

/// Starts the agent's services in order and stops them in reverse order under one deadline.
///
/// Rules:
/// - Start runs the services in the given order. A `required` service that fails stops the
///   ones already started (reverse order) and `start` throws. A `degradable` service that fails
///   does not stop the agent: `onDegraded` raises its alarm and a retry thread starts it again
///   (1 s, doubling to 30 s) until it starts (`onRecovered`) or the agent stops.
/// - Stop stops every started service in reverse order, each given what remains of one overall
///   deadline; a service that is still being retried is simply no longer retried.
/// - Start and stop are called once each, in that order.
final class ServiceSupervisor: Sendable {
    enum Requirement: Sendable {
        /// The agent cannot run without it.
        case required
        /// The agent runs without it (alarm raised), retrying it in the background.
        case degradable
    }

    struct Entry: Sendable {
        let service: any AgentService
        let requirement: Requirement
    }

    private struct State {
        var started: [Int] = []
        var waiting: Set<Int> = []
        var stopping = false
    }

    private let entries: [Entry]
    private let logger: Logger
    private let onDegraded: @Sendable (_ service: String, _ error: any Error) -> Void
    private let onRecovered: @Sendable (_ service: String) -> Void
    private let state = Locked(State())
    private let retryWake = EdgeRuntime.Lock()
    private let retryDone = EdgeRuntime.Lock()
    private let retryRunning = Locked(false)

    init(_ entries: [Entry], logger: Logger,
         onDegraded: @escaping @Sendable (_ service: String, _ error: any Error) -> Void,
         onRecovered: @escaping @Sendable (_ service: String) -> Void) {
        self.entries = entries
        self.logger = logger
        self.onDegraded = onDegraded
        self.onRecovered = onRecovered
    }

    /// The names of the services running now, in start order.
    var running: [String] { state.withLock { $0.started.map { entries[$0].service.name } } }
    /// The names of the services waiting for a retry.
    var degraded: [String] { state.withLock { $0.waiting.sorted().map { entries[$0].service.name } } }

    func start() throws {
        for (i, entry) in entries.enumerated() {
            do {
                try entry.service.start()
                state.withLock { $0.started.append(i) }
                logger.debug("service started", metadata: ["service": "\(entry.service.name)"])
            } catch {
                switch entry.requirement {
                case .required:
                    logger.critical("service cannot start", metadata: ["service": "\(entry.service.name)", "error": "\(error)"])
                    stop(deadline: MonotonicInstant.now() + .seconds(5))
                    throw error
                case .degradable:
                    logger.error("service cannot start; the agent runs without it and retries", metadata: ["service": "\(entry.service.name)", "error": "\(error)"])
                    state.withLock { _ = $0.waiting.insert(i) }
                    onDegraded(entry.service.name, error)
                }
            }
        }
        if !state.withLock({ $0.waiting.isEmpty }) { startRetrying() }
    }

    private func startRetrying() {
        retryRunning.withLock { $0 = true }
        OSThread.detached(name: "service-retry") { [self] in
            var delay = Duration.seconds(1)
            while true {
                retryWake.lock()
                let deadline = MonotonicInstant.now() + delay
                while !state.withLock({ $0.stopping }), retryWake.wait(until: deadline) {}
                retryWake.unlock()
                let (stopping, waiting) = state.withLock { ($0.stopping, $0.waiting.sorted()) }
                if stopping || waiting.isEmpty { break }
                for i in waiting {
                    let entry = entries[i]
                    do {
                        try entry.service.start()
                        let kept = state.withLock { s -> Bool in
                            guard !s.stopping else { return false }
                            s.waiting.remove(i)
                            s.started.append(i)
                            return true
                        }
                        // Stopped while it was starting: undo at once.
                        guard kept else { entry.service.stop(deadline: MonotonicInstant.now() + .seconds(2)); break }
                        logger.notice("service started after retry", metadata: ["service": "\(entry.service.name)"])
                        onRecovered(entry.service.name)
                    } catch {
                        logger.warning("service still cannot start", metadata: ["service": "\(entry.service.name)", "error": "\(error)", "retry_in": "\(min(delay * 2, .seconds(30)))"])
                    }
                }
                delay = min(delay * 2, .seconds(30))
            }
            retryDone.lock()
            retryRunning.withLock { $0 = false }
            retryDone.broadcast()
            retryDone.unlock()
        }
    }

    /// Stops the started services in reverse order, all by `deadline`.
    func stop(deadline: MonotonicInstant) {
        state.withLock { $0.stopping = true }
        retryWake.lock()
        retryWake.broadcast()
        retryWake.unlock()
        // The retry thread may be inside a service's start: wait for it so it cannot add one behind us.
        retryDone.lock()
        let until = deadline
        while retryRunning.withLock({ $0 }), retryDone.wait(until: until) {}
        retryDone.unlock()
        let all = state.withLock { s -> [Int] in
            let list = s.started
            s.started = []
            return list
        }
        for i in all.reversed() {
            entries[i].service.stop(deadline: deadline)
            logger.debug("service stopped", metadata: ["service": "\(entries[i].service.name)"])
        }
    }
}
