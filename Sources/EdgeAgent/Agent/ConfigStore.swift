import EdgeRuntime
import FoundationEssentials

/// The running configuration and its generation number, with reloads one at a time.
///
/// Rules:
/// - Generation 1 is the config the agent started with; each successful reload adds one. A
///   failed reload leaves config and generation as they were.
/// - One reload runs at a time (SIGHUP, the centre's `reload_config` and `edgectl config
///   reload` arrive on three threads): a second caller waits for the first to finish.
/// - `stable()` returns the current generation once no reload is in progress: command intake
///   (the control socket, the centre) waits there, so a command that arrives during a reload
///   is validated and run on the new generation (or on the old one, if the reload failed).
final class ConfigStore: @unchecked Sendable {
    struct Generation: Sendable {
        let config: AgentConfig
        let number: Int
    }

    private let cond = Lock()
    private var generation: Generation
    private var reloading = false

    init(_ config: AgentConfig) {
        generation = Generation(config: config, number: 1)
    }

    /// The current generation, even while a reload runs.
    var current: Generation { cond.withLock { generation } }

    /// The current generation once no reload is in progress (or after `timeout`, the current one).
    func stable(timeout: Duration = .seconds(30)) -> Generation {
        cond.lock()
        defer { cond.unlock() }
        let deadline = MonotonicInstant.now() + timeout
        while reloading, cond.wait(until: deadline) {}
        return generation
    }

    /// Runs `body` as the only reload in progress. `body` gets the running generation and
    /// returns the config to commit; when it throws nothing changes.
    func reload(_ body: (Generation) throws -> AgentConfig) throws -> Generation {
        cond.lock()
        while reloading { cond.wait() }
        reloading = true
        let running = generation
        cond.unlock()
        defer {
            cond.lock()
            reloading = false
            cond.broadcast()
            cond.unlock()
        }
        let config = try body(running)
        let next = Generation(config: config, number: running.number + 1)
        cond.withLock { generation = next }
        return next
    }
}
