import EdgeRuntime
import FoundationEssentials
import Logging

/// The local control socket as a service: owns the `ControlServer` for the running config and
/// moves it when a reload changes `gateway.control_socket` or its groups.
///
/// Rules: `replace(with:)` starts the socket of the new config (for a new path, before the old
/// one closes; for the same path, after it) and, if it cannot, keeps (or restarts) the old one
/// and throws. Requests are handled by the agent's handler whatever the generation.
final class ControlSocketService: AgentService {
    let name = "control-socket"
    private let logger: Logger
    private let handler: ControlServer.Handler
    private struct State {
        var settings: Settings
        var server: ControlServer?
    }
    private let state: Locked<State>

    /// What the socket is made from.
    struct Settings: Equatable, Sendable {
        var path: String
        var access: ControlAccess
        init(_ config: AgentConfig) {
            path = config.gateway.controlSocket
            access = ControlAccess(gateway: config.gateway)
        }
    }

    init(config: AgentConfig, logger: Logger, handler: @escaping ControlServer.Handler) {
        state = Locked(State(settings: Settings(config)))
        self.logger = logger
        self.handler = handler
    }

    private func make(_ s: Settings) -> ControlServer {
        ControlServer(path: s.path, access: s.access, logger: logger, handler: handler)
    }

    func start() throws {
        let s: Settings? = state.withLock { $0.server == nil ? $0.settings : nil }
        guard let s else { return }   // already serving (a reload started it)
        let fresh = make(s)
        try fresh.start()
        state.withLock { $0.server = fresh }
    }

    func stop(deadline: MonotonicInstant) {
        let server = state.withLock { s -> ControlServer? in defer { s.server = nil }; return s.server }
        server?.stop()
    }

    /// Whether `config` needs a different socket than the running one.
    func needsReplacing(for config: AgentConfig) -> Bool {
        state.withLock { $0.settings != Settings(config) || $0.server == nil }
    }

    /// Moves the socket to `config`'s settings; on failure the old socket keeps serving.
    func replace(with config: AgentConfig) throws {
        let next = Settings(config)
        let (old, oldSettings) = state.withLock { ($0.server, $0.settings) }
        if old != nil, next == oldSettings { return }
        let fresh = make(next)
        if next.path != oldSettings.path || old == nil {
            try fresh.start()
            old?.stop()
        } else {
            old?.stop()
            do {
                try fresh.start()
            } catch {
                logger.error("the new control socket cannot start; the old one is restarted", metadata: ["error": "\(error)"])
                let again = make(oldSettings)
                try? again.start()
                state.withLock { $0.server = again }
                throw error
            }
        }
        state.withLock {
            $0.server = fresh
            $0.settings = next
        }
    }
}
