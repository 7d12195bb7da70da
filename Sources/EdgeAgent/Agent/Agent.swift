import Drivers
import FoundationEssentials
public import Logging
import Protocols
import EdgeRuntime

/// The running agent: its services under one supervisor, built from one validated config
/// held in a `ConfigStore`.
///
/// Services, in start order (stopped in reverse, under one deadline):
/// 1. `uplink`: outbox, replay store, MQTT (never keeps the agent from controlling: without a
///    broker client it keeps messages and retries);
/// 2. `agent-events`: the loop's events to the log and the uplink, off the loop thread;
/// 3. `field`: buses, GPIO, the control step and its loop thread (degradable: retried with
///    the alarm `gateway/field_unavailable`);
/// 4. `centre-commands`: centre commands are executed from here on (the field runs);
/// 5. `control-socket` (degradable: `gateway/control_socket_unavailable`);
/// 6. `watchdog`: READY=1, then WATCHDOG=1 while the control loop ticks.
/// So SIGTERM stops taking commands first (socket, centre), then halts the loop with safe
/// outputs and lets the buses flush those writes, then flushes events and says offline.
///
/// `reload(path:)` runs one at a time (`ConfigStore`); the new config is taken by every
/// service or by none (field and socket roll back, the uplink refuses what needs a restart).
/// Commands that arrive meanwhile wait and run on the resulting generation.
public final class Agent: Sendable {
    public var config: AgentConfig { store.current.config }
    /// 1 for the config the agent started with, +1 per reload that took effect.
    public var generation: Int { store.current.number }
    private let logger: Logger
    private let store: ConfigStore
    private let inbox = ControlInbox()
    private let field: FieldService
    private let uplink: UplinkService
    private let socket: ControlSocketService
    private let eventPump: EventPump<AgentEvent>
    private let watchdog: WatchdogService
    private let supervisor: ServiceSupervisor
    /// The release version (also `edge-agent --version`, status and the uplink status message).
    public static let version = "0.1.0"
    public var version: String { Agent.version }
    /// How long `stop` may take in all: inside systemd's 15 s stop timeout.
    public static let shutdownDeadline = Duration.seconds(10)

    public init(config: AgentConfig, logger: Logger) {
        self.logger = logger
        let store = ConfigStore(config)
        self.store = store
        let inbox = self.inbox
        // The services call back into the agent; `Unowned` breaks the cycle (the agent outlives them).
        let me = WeakAgent()
        uplink = UplinkService(config: config, version: Agent.version, logger: logger,
                               configSource: { store.stable().config }) { command, reply in
            guard let agent = me.agent else { return reply(.failure(.unavailable, "the agent is stopping")) }
            agent.submit(command, reply: reply)
        }
        let pump = EventPump<AgentEvent>(name: "agent-events", capacity: 100_000) { events, dropped in
            me.agent?.handle(events, droppedBefore: dropped)
        }
        eventPump = pump
        field = FieldService(config: config, inbox: inbox, logger: logger) { [pump] events in pump.post(events) }
        socket = ControlSocketService(config: config, logger: logger) { request, peer in
            me.agent?.handleControl(request, peer: peer) ?? .failure(.unavailable, "the agent is stopping")
        }
        let fieldService = field
        watchdog = WatchdogService(logger: logger, loops: { fieldService.loop.map { [$0] } ?? [] }) {
            "running: \(store.current.config.devices.count) devices, gateway \(store.current.config.gateway.id)"
        }
        let uplink = self.uplink
        supervisor = ServiceSupervisor([
            .init(service: uplink, requirement: .required),
            .init(service: pump, requirement: .required),
            .init(service: field, requirement: .degradable),
            .init(service: CentreCommandIntake(uplink: uplink), requirement: .required),
            .init(service: socket, requirement: .degradable),
            .init(service: watchdog, requirement: .required),
        ], logger: logger, onDegraded: { service, error in
            uplink.setOwnAlarm(Agent.unavailableAlarm(service),
                               ("critical", "\(service) cannot start (\(error)); the agent runs without it and retries"))
        }, onRecovered: { service in
            uplink.setOwnAlarm(Agent.unavailableAlarm(service), nil)
            if service == "field" { uplink.reassertAlarms() }
        })
        me.agent = self
    }

    /// The alarm code of a degradable service that cannot run: `control-socket` ->
    /// `control_socket_unavailable`.
    static func unavailableAlarm(_ service: String) -> String {
        String(service.map { $0 == "-" ? "_" : $0 }) + "_unavailable"
    }

    /// Starts every service; throws only when one the agent cannot run without fails (the
    /// state directory cannot be made). Without the uplink, the control socket or the field the
    /// agent runs, raises the alarm and retries.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: config.gateway.stateDirectory, withIntermediateDirectories: true)
        uplink.setSnapshotProvider { [weak self] in self?.loopSnapshot() }
        try supervisor.start()
        logger.info("edge-agent started", metadata: ["gateway": "\(config.gateway.id)", "devices": "\(config.devices.count)",
                                                     "degraded": "\(supervisor.degraded.joined(separator: ","))"])
    }

    /// Posts a command to the loop; `reply` is called once with its outcome.
    func submit(_ command: AgentCommand, reply: @escaping @Sendable (ControlResponse) -> Void) {
        submit(PendingCommand(command, reply: reply))
    }

    private func submit(_ pending: PendingCommand) {
        switch pending.command.action {
        case .ping: pending.run { .success(.object(["gateway": .string(config.gateway.id), "version": .string(version)])) }
        case .reloadConfig: pending.run { reload(path: config.sourcePath).map { .failure(.malformed, $0) } ?? .success() }
        default:
            inbox.post(.command(pending))
            field.wake()
        }
    }

    /// Runs a command and waits for its outcome; a command the loop has not taken within
    /// `timeout` is withdrawn and answered `timeout` (it never runs later).
    func submitAndWait(_ command: AgentCommand, timeout: Duration = .seconds(3)) -> ControlResponse {
        let pending = PendingCommand(command)
        submit(pending)
        return pending.wait(timeout: timeout)
    }

    /// Runs on the event pump's thread: logs the loop's events and hands them to the uplink.
    private func handle(_ events: [AgentEvent], droppedBefore: Int) {
        if droppedBefore > 0 {
            logger.error("the uplink fell behind the control loop; events were dropped", metadata: ["dropped": "\(droppedBefore)"])
        }
        for e in events {
            switch e {
            case .control(let c):
                var metadata: Logger.Metadata = ["source": "\(c.source)"]
                for (k, v) in c.data {
                    switch v {
                    case .int(let i): metadata[k] = "\(i)"
                    case .double(let d): metadata[k] = "\((d * 10).rounded() / 10)"
                    case .string(let s): metadata[k] = "\(s)"
                    case .bool(let b): metadata[k] = "\(b)"
                    }
                }
                logger.info("\(c.type)", metadata: metadata)
            case .device(let d, let online, let error):
                if online { logger.notice("device.online", metadata: ["device": "\(d)"]) } else {
                    logger.warning("device.offline", metadata: ["device": "\(d)", "error": "\(error ?? "")"])
                }
            case .telemetry:
                break
            }
        }
        uplink.publish(events)
    }

    /// The control loop's status snapshot (devices, alarms), or nil when it does not answer in time.
    private func loopSnapshot() -> ControlValue? {
        let box = ResponseBox()
        inbox.post(.snapshot { value in box.set(.success(value)) })
        field.wake()
        return box.wait(timeout: .seconds(3))?.result
    }

    // MARK: - Control socket

    private func handleControl(_ request: ControlRequest, peer: PeerCredentials) -> ControlResponse {
        // A request that arrives during a reload waits for it and runs on its result.
        let config = store.stable().config
        switch request.verb {
        case "status":
            let box = ResponseBox()
            inbox.post(.snapshot { value in box.set(.success(value)) })
            field.wake()
            guard var status = box.wait(timeout: .seconds(3)), case .object(var o)? = status.result else {
                return .failure(.timeout, "the control loop did not answer in time")
            }
            o["version"] = .string(version)
            o["generation"] = .number(Double(store.current.number))
            let degraded = supervisor.degraded
            if !degraded.isEmpty { o["degraded"] = .array(degraded.map { .string($0) }) }
            if let stats = field.loop?.stats {
                o["loop"] = .object([
                    "period_ms": .number((config.control.period?.seconds ?? 0) * 1000),
                    "max_sleep_ms": .number(ControlCore.maxSleep.seconds * 1000),
                    "ticks": .number(Double(stats.ticks)),
                    "wakeups_per_s": .number((stats.runsPerSecond * 100).rounded() / 100),
                    "worst_late_us": .number((stats.worstLateness.seconds * 1e6).rounded()),
                    "p99_late_us": .number((stats.p99Lateness.seconds * 1e6).rounded()),
                    "realtime": .bool(stats.isRealtime),
                ])
            }
            var us = uplink.status
            if case .object(var uo) = us {
                uo["pump_dropped"] = .number(Double(eventPump.dropped))
                us = .object(uo)
            }
            o["uplink"] = us
            if case .array(let list)? = o["alarms"] { o["alarms"] = .array(list + uplink.activeAlarms) }
            status.result = .object(o)
            return status
        case "io.read":
            guard let target = request.target else { return .failure(.malformed, "io.read needs a device") }
            let box = ResponseBox()
            inbox.post(.snapshot { value in
                if case .object(let o)? = value.object?["devices"], let d = o[target] { box.set(.success(d)) } else {
                    box.set(.failure(.unknownTarget, "\(target) is not a device"))
                }
            })
            field.wake()
            return box.wait(timeout: .seconds(3)) ?? .failure(.timeout, "the control loop did not answer in time")
        default:
            let action: CommandAction
            do {
                // Parsed on the config commands run on (`config`: taken once no reload runs).
                guard case .command(let a) = try ControlProtocol.route(request, targetKind: { CommandAction.TargetKind(of: $0, in: config) }) else {
                    return .failure(.unknownAction, "unknown verb")
                }
                action = a
            } catch {
                return error.response
            }
            let command = AgentCommand(origin: .local(uid: peer.uid), id: "local-\(UUID().uuidString.prefix(8))", target: request.target ?? "", action: action, args: request.args)
            let response = submitAndWait(command)
            logger.notice("local command", metadata: ["peer": "\(peer)", "action": "\(action.name)", "target": "\(command.target)", "ok": "\(response.ok)", "code": "\(response.code?.rawValue ?? "")"])
            uplink.audit(command: command, response: response)
            return response
        }
    }

    // MARK: - Reload, stop

    /// Loads and validates `path` and moves every service to it, one reload at a time. On any
    /// failure (config errors, a setting that needs a restart, the new field or socket cannot
    /// start) the running setup stays as it was and the reason is returned.
    @discardableResult
    public func reload(path: String) -> String? {
        do {
            let next = try store.reload { running -> AgentConfig in
                let next: AgentConfig
                do {
                    next = try ConfigLoader.check(path: path)
                } catch {
                    logger.error("config reload refused; keeping the running config", metadata: ["error": "\(error)"])
                    throw error
                }
                try uplink.check(next)
                let socketMoves = socket.needsReplacing(for: next)
                if socketMoves { try socket.replace(with: next) }
                do {
                    try field.replace(with: next)
                } catch {
                    if socketMoves { try? socket.replace(with: running.config) }
                    throw error
                }
                uplink.apply(next)
                return next
            }
            logger.notice("config reloaded", metadata: ["path": "\(path)", "generation": "\(next.number)"])
            uplink.publishEvent(device: "gateway", type: "config.reloaded", data: ["path": .string(path), "generation": .number(Double(next.number))])
            uplink.reassertAlarms()
            return nil
        } catch {
            logger.error("config reload failed; the running setup is unchanged", metadata: ["path": "\(path)", "error": "\(error)"])
            return "\(error)"
        }
    }

    /// Stops every service in reverse start order within `shutdownDeadline`: commands refused
    /// first, then the loop halted with safe outputs flushed by the buses, then offline.
    public func stop() {
        supervisor.stop(deadline: MonotonicInstant.now() + Agent.shutdownDeadline)
        logger.info("edge-agent stopped")
    }
}

/// Lets the services call the agent without keeping it alive.
private final class WeakAgent: Sendable {
    private struct Ref { weak var agent: Agent? }
    private let ref = Locked(Ref())
    var agent: Agent? {
        get { ref.withLock { $0.agent } }
        set { ref.withLock { $0.agent = newValue } }
    }
}

/// Centre commands run from when the field runs until shutdown begins.
private final class CentreCommandIntake: AgentService {
    let name = "centre-commands"
    let uplink: UplinkService
    init(uplink: UplinkService) { self.uplink = uplink }
    func start() { uplink.acceptCommands(true) }
    func stop(deadline: MonotonicInstant) { uplink.acceptCommands(false) }
}

extension EventPump: AgentService {
    func stop(deadline: MonotonicInstant) {
        stop(timeout: max(.milliseconds(100), deadline - MonotonicInstant.now()))
    }
}

/// A one-shot result slot for crossing from the loop thread back to a waiting thread.
final class ResponseBox: Sendable {
    private let value = Locked<ControlResponse?>(nil)
    func set(_ v: ControlResponse) {
        value.withLock { $0 = v }
        value.broadcast()
    }
    func wait(timeout: Duration) -> ControlResponse? {
        value.wait(until: MonotonicInstant.now() + timeout) { $0 }
    }
}
