import Drivers
import Foundation
public import Logging
import Protocols

/// The running agent: field I/O, the control loop thread, the local control socket and the
/// uplink, built from one validated config.
///
/// Lifecycle: `start()` brings the buses up, opens GPIO, starts the loop and the socket;
/// `stop()` puts outputs in their safe state (bollard motors off, priority requests dropped,
/// lamps left at their level), flushes the safety writes and stops every thread.
/// `reload(path:)` validates a new config first and keeps the running one when it is bad.
public final class Agent: @unchecked Sendable {
    public private(set) var config: AgentConfig
    private let logger: Logger
    private let lock = NSLock()
    private var field: FieldIO
    private var inbox: ControlInbox
    private var core: ControlCore
    private var loop: LoopThread?
    private var server: ControlServer?
    private var uplink: UplinkService?
    private var notifier: SystemdNotifier?
    private var watchdogThread: Thread?
    /// Control-loop events on their way to the log and the outbox, off the loop thread.
    private var eventPump: EventPump<AgentEvent>?
    private var stopping = false
    /// The release version (also `edge-agent --version`, status and the uplink status message).
    public static let version = "0.1.0"
    public var version: String { Agent.version }

    public init(config: AgentConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        (field, inbox, core) = Agent.build(config: config, logger: logger, events: { _ in })
    }

    private static func build(config: AgentConfig, logger: Logger, events: @escaping @Sendable ([AgentEvent]) -> Void) -> (FieldIO, ControlInbox, ControlCore) {
        let map = FieldMap(config: config)
        let field = FieldIO(config: config, map: map, logger: logger)
        let inbox = ControlInbox()
        let core = ControlCore(config: config, map: map, field: field, inbox: inbox, logger: logger, onEvents: events)
        return (field, inbox, core)
    }

    /// Starts everything; throws with a technician-readable reason when a part cannot start.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: config.gateway.stateDirectory, withIntermediateDirectories: true)
        let uplink = try UplinkService(config: config, version: version, logger: logger) { [weak self] command, reply in
            self?.submit(command, reply: reply)
        }
        self.uplink = uplink
        let pump = EventPump<AgentEvent>(name: "agent-events", capacity: 100_000) { [weak self] events, dropped in
            self?.handle(events, droppedBefore: dropped)
        }
        pump.start()
        eventPump = pump
        (field, inbox, core) = Agent.build(config: config, logger: logger) { [pump] events in pump.post(events) }
        try startLoopAndField()
        let server = ControlServer(path: config.gateway.controlSocket, group: config.gateway.controlGroup, logger: logger) { [weak self] request, peer in
            self?.handleControl(request, peer: peer) ?? .failure("stopping", "the agent is stopping")
        }
        try server.start()
        self.server = server
        uplink.setSnapshotProvider { [weak self] in self?.loopSnapshot() }
        uplink.start()
        startWatchdog()
        logger.info("edge-agent started", metadata: ["gateway": "\(config.gateway.id)", "devices": "\(config.devices.count)"])
    }

    private func startLoopAndField() throws {
        let core = self.core
        let inbox = self.inbox
        let loop = LoopThread(name: "edge-loop", maxSleep: ControlCore.maxSleep, grid: config.control.period, realtimePriority: config.control.realtimePriority, logger: logger) { now, _ in
            core.step(now: now)
            return core.nextDeadline
        }
        self.loop = loop
        inbox.setWaker { [loop] in loop.wake() }
        let wakeFilter = core.wakeFilter
        try field.start(onReading: { [loop] r in
            inbox.post(.reading(r))
            // Only a poll that changes something the loop must act on at once (ReadingWakeFilter).
            if wakeFilter.wakes(r) { loop.wake() }
        }, onEdge: { [loop] e in
            inbox.post(.edge(e))
            loop.wake()
        })
        loop.start()
    }

    /// Posts a command to the loop and waits (bounded) for its result.
    func submit(_ command: AgentCommand, reply: @escaping @Sendable (ControlResponse) -> Void) {
        if command.action == "ping" { return reply(.success(.object(["gateway": .string(config.gateway.id), "version": .string(version)]))) }
        if command.action == "reload_config" {
            let ok = reload(path: config.sourcePath)
            return reply(ok.map { .failure("malformed", $0) } ?? .success())
        }
        inbox.post(.command(command, reply: reply))
        loop?.wake()
    }

    func submitAndWait(_ command: AgentCommand, timeout: Duration = .seconds(3)) -> ControlResponse {
        let box = ResponseBox()
        submit(command) { box.set($0) }
        return box.wait(timeout: timeout) ?? .failure("timeout", "the control loop did not answer in time")
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
        uplink?.publish(events)
    }

    /// The control loop's status snapshot (devices, alarms), or nil when it does not answer in time.
    private func loopSnapshot() -> ControlValue? {
        let box = ResponseBox()
        let (inbox, loop) = lock.withLock { (self.inbox, self.loop) }
        inbox.post(.snapshot { value in box.set(.success(value)) })
        loop?.wake()
        return box.wait(timeout: .seconds(3))?.result
    }

    // MARK: - Control socket

    private func handleControl(_ request: ControlRequest, peer: PeerCredentials) -> ControlResponse {
        switch request.verb {
        case "status":
            let box = ResponseBox()
            inbox.post(.snapshot { value in box.set(.success(value)) })
            loop?.wake()
            guard var status = box.wait(timeout: .seconds(3)), case .object(var o)? = status.result else {
                return .failure("timeout", "the control loop did not answer in time")
            }
            o["version"] = .string(version)
            if let stats = loop?.stats {
                o["loop"] = .object([
                    "period_ms": .number((config.control.period?.seconds ?? 0) * 1000),
                    "max_sleep_ms": .number((loop?.maxSleep.seconds ?? 0) * 1000),
                    "ticks": .number(Double(stats.ticks)),
                    "wakeups_per_s": .number((stats.runsPerSecond * 100).rounded() / 100),
                    "worst_late_us": .number((stats.worstLateness.seconds * 1e6).rounded()),
                    "p99_late_us": .number((stats.p99Lateness.seconds * 1e6).rounded()),
                    "realtime": .bool(stats.isRealtime),
                ])
            }
            if let u = uplink {
                var us = u.status
                if case .object(var uo) = us, let pump = eventPump {
                    uo["pump_dropped"] = .number(Double(pump.dropped))
                    us = .object(uo)
                }
                o["uplink"] = us
                if case .array(let list)? = o["alarms"] { o["alarms"] = .array(list + u.activeAlarms) }
            }
            status.result = .object(o)
            return status
        case "io.read":
            guard let target = request.target else { return .failure("malformed", "io.read needs a device") }
            let box = ResponseBox()
            inbox.post(.snapshot { value in
                if case .object(let o)? = value.object?["devices"], let d = o[target] { box.set(.success(d)) } else {
                    box.set(.failure("unknown_target", "\(target) is not a device"))
                }
            })
            loop?.wake()
            return box.wait(timeout: .seconds(3)) ?? .failure("timeout", "the control loop did not answer in time")
        default:
            let action: String
            do {
                guard case .command(let a) = try ControlProtocol.route(request) else { return .failure("unknown_action", "unknown verb") }
                action = a
            } catch {
                return error.response
            }
            let command = AgentCommand(origin: .local(uid: peer.uid), id: "local-\(UUID().uuidString.prefix(8))", target: request.target ?? "", action: action, args: request.args)
            let response = submitAndWait(command)
            logger.notice("local command", metadata: ["peer": "\(peer)", "action": "\(action)", "target": "\(command.target)", "ok": "\(response.ok)", "code": "\(response.code ?? "")"])
            uplink?.audit(command: command, response: response)
            return response
        }
    }

    // MARK: - Watchdog, reload, stop

    private func startWatchdog() {
        guard let notifier = SystemdNotifier.fromEnvironment() else { return }
        self.notifier = notifier
        try? notifier.notify("READY=1\nSTATUS=running: \(config.devices.count) devices, gateway \(config.gateway.id)")
        guard let interval = notifier.watchdogInterval else { return }
        let logger = self.logger
        let t = Thread { [weak self] in
            var withheld = false
            while let self, !self.lock.withLock({ self.stopping }) {
                // WATCHDOG=1 only while every control loop has ticked within its allowance.
                let loops: [any MonitoredLoop] = self.lock.withLock { self.loop.map { [$0] } ?? [] }
                let health = LoopHealth(loops: loops)
                let stalls = health.stalls(now: MonotonicInstant.now())
                if stalls.isEmpty {
                    try? notifier.notify("WATCHDOG=1")
                    withheld = false
                } else if !withheld {
                    logger.critical("control loop stalled; withholding WATCHDOG=1 so systemd restarts the agent", metadata: ["stalls": "\(stalls)"])
                    withheld = true
                }
                Thread.sleep(forTimeInterval: interval.seconds / 2)
            }
        }
        t.name = "watchdog"
        t.start()
        watchdogThread = t
    }

    /// Loads and validates `path`; on success swaps in the new config (buses, loops and
    /// socket restart); on failure keeps running and returns the reason.
    @discardableResult
    public func reload(path: String) -> String? {
        let newConfig: AgentConfig
        do {
            newConfig = try ConfigLoader.check(path: path)
        } catch {
            logger.error("config reload refused; keeping the running config", metadata: ["error": "\(error)", "problems": "\(error.errors.count)"])
            return "\(error)"
        }
        logger.notice("config reloaded", metadata: ["path": "\(path)"])
        lock.withLock {
            core.halt(within: .seconds(1))
            core.safeOutputs()
            loop?.stop(timeout: .seconds(1))
            field.stop()
            config = newConfig
            let pump = eventPump
            (field, inbox, core) = Agent.build(config: config, logger: logger) { events in pump?.post(events) }
        }
        do { try startLoopAndField() } catch {
            logger.error("restart after reload failed: \(error)")
            return "\(error)"
        }
        uplink?.publishEvent(device: "gateway", type: "config.reloaded", data: ["path": .string(path)])
        uplink?.reassertAlarms()
        return nil
    }

    /// Safe outputs, flush, stop every thread.
    public func stop() {
        lock.withLock { stopping = true }
        try? notifier?.notify("STOPPING=1")
        server?.stop()
        // Halt first (waits for a step in progress), so no step can write after the safe state.
        lock.withLock {
            core.halt(within: .seconds(1))
            core.safeOutputs()
        }
        loop?.stop(timeout: .seconds(1))
        field.stop()
        eventPump?.stop()
        uplink?.stop()
        logger.info("edge-agent stopped")
    }
}

/// A one-shot result slot for crossing from the loop thread back to a waiting thread.
final class ResponseBox: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: ControlResponse?
    func set(_ v: ControlResponse) {
        cond.lock()
        value = v
        cond.broadcast()
        cond.unlock()
    }
    func wait(timeout: Duration) -> ControlResponse? {
        cond.lock()
        defer { cond.unlock() }
        let deadline = Date().addingTimeInterval(timeout.seconds)
        while value == nil, cond.wait(until: deadline) {}
        return value
    }
}
