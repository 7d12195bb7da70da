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
final class ConfigStore: Sendable {
    struct Generation: Sendable {
        let config: AgentConfig
        let number: Int
    }

    private struct State {
        var generation: Generation
        var reloading = false
    }

    private let state: Locked<State>

    init(_ config: AgentConfig) {
        state = Locked(State(generation: Generation(config: config, number: 1)))
    }

    /// The current generation, even while a reload runs.
    var current: Generation { state.withLock { $0.generation } }

    /// The current generation once no reload is in progress (or after `timeout`, the current one).
    func stable(timeout: Duration = .seconds(30)) -> Generation {
        state.wait(until: MonotonicInstant.now() + timeout) { $0.reloading ? nil : $0.generation } ?? current
    }

    /// Runs `body` as the only reload in progress. `body` gets the running generation and
    /// returns the config to commit; when it throws nothing changes.
    func reload(_ body: (Generation) throws -> AgentConfig) throws -> Generation {
        let running: Generation = state.wait { s in
            guard !s.reloading else { return nil }
            s.reloading = true
            return s.generation
        }!
        defer {
            state.withLock { $0.reloading = false }
            state.broadcast()
        }
        let next = Generation(config: try body(running), number: running.number + 1)
        state.withLock { $0.generation = next }
        return next
    }
}
