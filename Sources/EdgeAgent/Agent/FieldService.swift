import Drivers
import FoundationEssentials
import Logging
import EdgeRuntime

/// The field and its control: one generation of buses and GPIO (`FieldIO`), the control step
/// (`ControlCore`) and the loop thread that runs it, built from one config. The inbox outlives
/// generations: commands and status requests queued during a swap run on the next one.
///
/// Rules:
/// - One generation runs at a time: the old loop is stopped (and its core halted, so a stuck
///   step can never write again) before the next one's loop starts.
/// - `replace(with:)` halts the running generation (safe outputs written and flushed by the
///   buses as they stop), drops the old field's queued readings, and starts the new one. If the
///   new one cannot start (a GPIO line cannot be opened, ...), the old config is started again
///   and the error is thrown: the running setup stays what it was.
/// - `stop` halts with safe outputs, stops the loop, then the buses after their safety writes.
/// - Safety state (`SafetyState`): the first start reads back what `SafetyStateStore` kept in
///   `state_dir`; each generation starts from the one before it (`exportSafetyState` after the
///   halt), also when a failed replace starts the old config again or a stopped field starts
///   again; what a generation could not start with is kept for the next try.
final class FieldService: AgentService {
    let name = "field"

    /// One running setup: what `replace` swaps.
    struct Generation: Sendable {
        let config: AgentConfig
        let field: FieldIO
        let core: ControlCore
        let loop: LoopThread
    }

    let inbox: ControlInbox
    private let logger: Logger
    private let events: @Sendable ([AgentEvent]) -> Void
    private struct State {
        var config: AgentConfig
        var running: Generation?
        /// Where each generation writes the people-protecting safety state (made at the first start).
        var safetyStore: SafetyStateStore?
        /// The safety state the next generation starts from (nil once one runs).
        var restoring: SafetyState?
    }
    private let state: Locked<State>

    init(config: AgentConfig, inbox: ControlInbox, logger: Logger, events: @escaping @Sendable ([AgentEvent]) -> Void) {
        state = Locked(State(config: config))
        self.inbox = inbox
        self.logger = logger
        self.events = events
    }

    /// The running generation's loop (nil while stopped or degraded).
    var loop: LoopThread? { state.withLock { $0.running?.loop } }

    /// Runs the loop soon (a command or a status request was posted to the inbox).
    func wake() { loop?.wake() }

    func start() throws {
        let logger = self.logger
        let (config, store, carried) = state.withLock { s -> (AgentConfig, SafetyStateStore, SafetyState?) in
            if s.safetyStore == nil {
                let store = SafetyStateStore(directory: s.config.gateway.stateDirectory, logger: logger)
                s.safetyStore = store
                s.restoring = store.load()
            }
            return (s.config, s.safetyStore!, s.restoring)
        }
        let generation = try Self.launch(config: config, inbox: inbox, logger: logger, restoring: carried, store: store, events: events)
        state.withLock { $0.running = generation; $0.restoring = nil }
    }

    func stop(deadline: MonotonicInstant) {
        guard let old = state.withLock({ s -> Generation? in defer { s.running = nil }; return s.running }) else { return }
        Self.halt(old, deadline: deadline)
        let carried = old.core.exportSafetyState()
        let store = state.withLock { s -> SafetyStateStore? in s.restoring = carried; return s.safetyStore }
        store?.stop()
    }

    /// Swaps in a generation built from `config`; on failure restarts the old config and throws.
    func replace(with config: AgentConfig) throws {
        let (old, oldConfig, store, waiting) = state.withLock { s in
            defer { s.running = nil }
            return (s.running, s.config, s.safetyStore, s.restoring)
        }
        if let old { Self.halt(old, deadline: MonotonicInstant.now() + .seconds(2)) }
        let carried = old?.core.exportSafetyState() ?? waiting
        // Readings and write results of the old field name the old device numbering.
        inbox.discardFieldInputs()
        do {
            let next = try Self.launch(config: config, inbox: inbox, logger: logger, restoring: carried, store: store, events: events)
            state.withLock {
                $0.running = next
                $0.config = config
                $0.restoring = nil
            }
        } catch {
            logger.error("the new config's field cannot start; starting the running config again", metadata: ["error": "\(error)"])
            inbox.discardFieldInputs()
            do {
                let again = try Self.launch(config: oldConfig, inbox: inbox, logger: logger, restoring: carried, store: store, events: events)
                state.withLock { $0.running = again; $0.restoring = nil }
            } catch let restartError {
                state.withLock { $0.restoring = carried }
                logger.critical("the running config's field cannot start again either; nothing is controlled until it can",
                                metadata: ["error": "\(restartError)"])
                throw FieldRestartError(newConfig: "\(error)", runningConfig: "\(restartError)")
            }
            throw error
        }
    }

    private static func launch(config: AgentConfig, inbox: ControlInbox, logger: Logger, restoring: SafetyState?, store: SafetyStateStore?,
                               events: @escaping @Sendable ([AgentEvent]) -> Void) throws -> Generation {
        let map = FieldMap(config: config)
        let field = FieldIO(config: config, map: map, logger: logger)
        let core = ControlCore(config: config, map: map, field: field, inbox: inbox, logger: logger, restoring: restoring, safetyStore: store, onEvents: events)
        // The loop sleeps until the machines' next deadline (at most maxSleep) or a waking input.
        let loop = LoopThread(name: "edge-loop", maxSleep: ControlCore.maxSleep, grid: config.control.period,
                              realtimePriority: config.control.realtimePriority, logger: logger) { now, _ in
            core.step(now: now)
            return core.nextDeadline
        }
        inbox.setWaker { [loop] in loop.wake() }
        let wakeFilter = core.wakeFilter
        do {
            try field.start(onReading: { [loop] r in
                inbox.post(.reading(r))
                // Only a poll that changes something the loop must act on at once (ReadingWakeFilter);
                // the others wait for its next step.
                if wakeFilter.wakes(r) { loop.wake() }
            }, onEdge: { [loop] e in
                inbox.post(.edge(e))
                loop.wake()
            })
        } catch {
            // Lines opened before the failure are released; no output was written.
            field.stop()
            throw error
        }
        loop.start()
        return Generation(config: config, field: field, core: core, loop: loop)
    }

    /// Halt first (waits for a step in progress), so no step can write after the safe state;
    /// then the loop; then the buses, which send the queued safety writes before they stop.
    private static func halt(_ g: Generation, deadline: MonotonicInstant) {
        let budget = max(.milliseconds(100), min(.seconds(1), deadline - MonotonicInstant.now()))
        g.core.halt(within: budget)
        g.core.safeOutputs()
        g.loop.stop(timeout: budget)
        g.field.stop()
    }
}

/// Neither the new config's field nor the running one's could start (see the log).
struct FieldRestartError: Error, CustomStringConvertible {
    let newConfig: String
    let runningConfig: String
    var description: String { "the new config's field cannot start (\(newConfig)) and the running config's cannot start again (\(runningConfig))" }
}
