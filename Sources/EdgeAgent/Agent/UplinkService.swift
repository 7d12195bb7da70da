import EdgeRuntime
import Drivers
import FoundationEssentials
import Logging
import Protocols

/// The link to the centre: every message goes through the durable outbox (written before it
/// is published, deleted on PUBACK), a drainer thread publishes by lane (status and alarms,
/// then events and replies, then telemetry; each lane in seq order) with a bounded in-flight
/// window, and signed commands on `ROOT/cmd` are verified, checked for replay, validated,
/// executed through the control loop, audited and answered on `ROOT/reply`.
///
/// Every message carries `time_quality` (`ClockTrust`). The alarms published as active are
/// kept in an `AlarmLedger`; at start, after a reload and after a reconnect, once every
/// device has been polled, the current state of each is published again (`reassertAlarms`).
///
/// When the outbox cannot write (disk full, corrupt file) the agent keeps controlling; the
/// failure is counted, logged and reported as an alarm once the disk accepts writes again.
/// Commands toward the safe state (`CommandAction.isTowardSafeState`) run even then: their
/// replay record is kept in memory, the `state_disk_failed` alarm shows in the status view,
/// and their replies are held in memory and stored once the disk is back.
///
/// Lifecycle (issue 13): the uplink never keeps the agent from controlling. If its MQTT client
/// cannot be made (TLS key unreadable, bad broker URL) the messages still go to the outbox, the
/// alarm `gateway/uplink_unavailable` is raised and the client is made again every few seconds.
/// Verified commands are taken off the network thread onto `uplink-commands`, which waits while
/// a reload runs (`configSource`) and until the agent takes commands (`acceptCommands`); after
/// `acceptCommands(false)` (shutdown) a command is answered `unavailable`, never run. A reload
/// (`apply`) swaps the centre keys and targets at once and replaces the MQTT client when the
/// broker settings change; settings the topics or the stored data depend on need a restart.
final class UplinkService: AgentService, @unchecked Sendable {
    typealias Executor = @Sendable (AgentCommand, @escaping @Sendable (ControlResponse) -> Void) -> Void

    let name = "uplink"
    let root: String
    /// The running config (swapped by `apply`). Guarded by `cond`.
    private var config: AgentConfig
    /// The config to validate a command against: waits while a reload is in progress.
    private let configSource: @Sendable () -> AgentConfig
    private let version: String
    private let logger: Logger
    /// Nil while it cannot be made (see `uplink_unavailable`). Guarded by `cond`.
    private var client: MQTTClient?
    /// Verified commands, off libmosquitto's thread (see the type's doc).
    private var commandPump: EventPump<MQTTMessage>?
    /// Commands are executed (the field runs); false before start and from shutdown on.
    private var accepting = false
    private var intakeClosed = false
    private let outbox: Outbox?
    private let replay: ReplayStore
    private let auditLog: AuditLog?
    private let ledger: AlarmLedger
    private let clockTrust = ClockTrust.shared
    /// Alarms the uplink itself raised this run (`gateway/<code>` -> severity, message).
    private var ownAlarms: [String: (severity: String, message: String)] = [:]
    /// Messages the outbox refused that must not be lost (replies, the disk alarm), in order;
    /// stored once it writes again. Bounded by `maxHeld`.
    private var held: [(topic: String, retain: Bool, priority: OutboxPriority, lane: OutboxLane, body: [String: ControlValue])] = []
    private static let maxHeld = 1000
    /// Non-nil while the state disk refuses the replay records of safety commands.
    private var stateDiskError: String?
    /// Gives the control loop's status snapshot (set by the agent); nil when it cannot.
    private var snapshotProvider: (@Sendable () -> ControlValue?)?
    /// A re-assertion of the alarm states is wanted (start, reload, reconnect).
    private var reassertWanted = false
    private var verifier: CommandVerifier
    private let execute: Executor
    /// issue 17: the Sparkplug B session (`uplink.dialect: sparkplug`); nil = the edge dialect. Guarded by `cond`.
    private let sparkplug: SparkplugEdgeNode?
    private let bootID = UUID().uuidString.lowercased()
    private let cond = EdgeRuntime.Lock()
    private var running = false
    private var connected = false
    private var inflight: [Int32: UInt64] = [:]
    /// Per lane, the highest seq handed to the broker.
    private var lastQueued: [OutboxLane: UInt64] = [:]
    /// Messages stored so far (under `cond`): the drain sleeps until it changes when the outbox
    /// had nothing to send, instead of polling it.
    private var storedCount: UInt64 = 0
    private var outboxErrors = 0
    private var lastOutboxError: String?
    /// Failures since the outbox last accepted a write; non-zero = the `outbox_write_failed` alarm is active.
    private var failuresInARow = 0
    private var telemetryDue: [String: (at: MonotonicInstant, values: [String: ControlValue])] = [:]
    private let maxInflight = 20
    /// The drainer thread is in its loop (set by `start`, cleared when it returns).
    private var draining = false
    /// How long `stop` waits for the broker to acknowledge the `offline` status: well inside
    /// systemd's 15 s stop timeout, after the loop and the buses have stopped (about 2 s).
    static let goodbyeTimeout = Duration.seconds(3)

    init(config: AgentConfig, version: String, logger: Logger,
         configSource: (@Sendable () -> AgentConfig)? = nil, execute: @escaping Executor) {
        self.config = config
        self.configSource = configSource ?? { config }
        self.version = version
        self.logger = logger
        self.execute = execute
        root = "\(config.uplink.prefix)/\(config.gateway.id)"
        let state = config.gateway.stateDirectory
        var outbox: Outbox?
        do {
            outbox = try Outbox(path: state + "/outbox.db", maxMessages: config.uplink.outboxMaxMessages, maxAge: config.uplink.outboxMaxAge,
                                logger: logger, maxBytes: config.uplink.outboxMaxBytes)
        } catch {
            logger.critical("outbox unavailable; uplink messages cannot be kept: \(error)")
            lastOutboxError = "\(error)"
        }
        self.outbox = outbox
        var own: [String: (severity: String, message: String)] = [:]
        do {
            let store = try ReplayStore(path: state + "/replay.db", logger: logger)
            if let aside = store.recoveredFromCorruption {
                own["gateway/replay_store_recovered"] = ("major", "the replay store was corrupt and was replaced (moved to \(aside)); commands still within their validity could be replayed")
            }
            replay = store
        } catch {
            logger.critical("replay store cannot be opened; only commands toward the safe state run", metadata: ["error": "\(error)"])
            own["gateway/replay_store_failed"] = ("critical", "the replay store cannot be opened (\(error)); only commands toward the safe state run, their ids kept in memory")
            replay = ReplayStore(unavailableAt: state + "/replay.db", logger: logger)
        }
        do {
            auditLog = try AuditLog(path: state + "/audit.log")
        } catch {
            logger.critical("audit log cannot be opened; commands are not audited", metadata: ["error": "\(error)"])
            own["gateway/audit_log_failed"] = ("major", "the audit log cannot be opened: \(error)")
            auditLog = nil
        }
        ownAlarms = own
        ledger = AlarmLedger(path: state + "/alarms")
        verifier = CommandVerifier(gatewayID: config.gateway.id, centreKeys: config.uplink.centreKeys, maxLifetime: config.uplink.maxCommandLifetime)
        sparkplug = config.uplink.dialect == .sparkplug ? SparkplugEdgeNode(config: config, version: version, root: root) : nil
        sparkplug?.bootID = bootID
        do {
            client = try Self.makeClient(config: config, root: root, sparkplug: sparkplug, maxInflight: maxInflight, logger: logger)
        } catch {
            logger.critical("the uplink cannot be set up; messages are kept in the outbox and the agent retries", metadata: ["error": "\(error)"])
            client = nil
            ownAlarms["gateway/uplink_unavailable"] = ("critical", "the uplink cannot be set up (\(error)); messages are kept in the outbox, retrying")
        }
    }

    /// The MQTT client for `config`'s broker settings.
    private static func makeClient(config: AgentConfig, root: String, sparkplug: SparkplugEdgeNode?, maxInflight: Int, logger: Logger) throws(MQTTError) -> MQTTClient {
        var mqtt = MQTTConfiguration(broker: config.uplink.broker, clientID: "edge-agent-\(config.gateway.id)")
        mqtt.cleanSession = false
        mqtt.maxInflight = maxInflight
        mqtt.keepAlive = config.uplink.keepAlive
        mqtt.will = MQTTMessage(topic: root + "/status", payload: Array(#"{"state":"offline"}"#.utf8), qos: 1, retain: true)
        if let tls = config.uplink.tls { mqtt.tls = .init(ca: tls.ca, cert: tls.cert, key: tls.key) }
        // issue 17: the Sparkplug B dialect: NDEATH as the will, clean session (Sparkplug 3.0),
        // room in the client's window for births beside the drainer's 20.
        if let sparkplug {
            mqtt.will = sparkplug.death()
            mqtt.cleanSession = true
            mqtt.maxInflight = maxInflight + 200
        }
        // issue 17: broker fail-over list and reconnect backoff.
        mqtt.fallbackBrokers = config.uplink.fallbackBrokers
        mqtt.reconnectDelay = config.uplink.reconnectInitial
        mqtt.reconnectMaxDelay = config.uplink.reconnectMax
        mqtt.reconnectJitter = config.uplink.reconnectJitter
        return try MQTTClient(configuration: mqtt, logger: logger)
    }

    /// Callbacks, subscriptions, start. Called without `cond` held.
    private func connect(_ client: MQTTClient) {
        client.onConnectionChange { [weak self] up in self?.connectionChanged(up) }
        client.onPublished { [weak self] mid in self?.acknowledged(mid) }
        client.onMessage { [weak self] m in self?.received(m) }
        for filter in sparkplug?.subscriptions ?? [root + "/cmd"] { try? client.subscribe(filter, qos: 1) }   // issue 17
        client.start()
    }

    /// Makes the client again every few seconds while it cannot be made (from `start`/`apply`).
    private func retryClient() {
        OSThread.detached(name: "uplink-connect") { [weak self] in
            var delay = Duration.seconds(2)
            while let self {
                self.cond.lock()
                let until = MonotonicInstant.now() + delay
                while self.running, self.client == nil, self.cond.wait(until: until) {}
                let (running, missing, config) = (self.running, self.client == nil, self.config)
                self.cond.unlock()
                guard running, missing else { return }
                do {
                    let client = try Self.makeClient(config: config, root: self.root, sparkplug: self.sparkplug, maxInflight: self.maxInflight, logger: self.logger)
                    self.cond.withLock { self.client = client }
                    self.connect(client)
                    self.setOwnAlarm("uplink_unavailable", nil)
                    self.logger.notice("uplink set up after retry", metadata: ["broker": "\(config.uplink.broker)"])
                    return
                } catch {
                    self.logger.warning("the uplink still cannot be set up", metadata: ["error": "\(error)"])
                    self.setOwnAlarm("uplink_unavailable", ("critical", "the uplink cannot be set up (\(error)); messages are kept in the outbox, retrying"))
                }
                delay = min(delay * 2, .seconds(60))
            }
        }
    }

    /// Raises (`alarm` non-nil) or clears one of the gateway's own alarms (`gateway/<code>`):
    /// shown in the status view and published on the alarm topic when it changes.
    func setOwnAlarm(_ code: String, _ alarm: (severity: String, message: String)?) {
        let key = "gateway/" + code
        let changed: Bool = cond.withLock {
            let before = ownAlarms[key]
            if let alarm { ownAlarms[key] = alarm } else { ownAlarms[key] = nil }
            return before?.message != alarm?.message || (before == nil) != (alarm == nil)
        }
        guard changed else { return }
        var body: [String: ControlValue] = ["active": .bool(alarm != nil)]
        if let alarm {
            body["severity"] = .string(alarm.severity)
            body["message"] = .string(alarm.message)
        }
        enqueue(topic: "\(root)/alarm/\(key)", retain: true, priority: .event, lane: .status, body: body)
    }

    // MARK: - Reload

    /// Why a reload cannot be applied to the running uplink (the running setup stays).
    struct ReloadRefused: Error, CustomStringConvertible {
        let description: String
    }

    /// Checks that the uplink can take `next` by reload (nothing changes).
    func check(_ next: AgentConfig) throws(ReloadRefused) {
        let now = cond.withLock { config }
        var restartOnly: [String] = []
        if next.gateway.id != now.gateway.id { restartOnly.append("gateway.id") }
        if next.gateway.stateDirectory != now.gateway.stateDirectory { restartOnly.append("gateway.state_dir") }
        if next.uplink.prefix != now.uplink.prefix { restartOnly.append("uplink.prefix") }
        if next.uplink.dialect != now.uplink.dialect { restartOnly.append("uplink.dialect") }
        if next.uplink.sparkplug != now.uplink.sparkplug { restartOnly.append("uplink.sparkplug") }
        if next.uplink.outboxMaxMessages != now.uplink.outboxMaxMessages || next.uplink.outboxMaxAge != now.uplink.outboxMaxAge
            || next.uplink.outboxMaxBytes != now.uplink.outboxMaxBytes { restartOnly.append("uplink.outbox") }
        if now.uplink.dialect == .sparkplug, Set(next.devices.keys) != Set(now.devices.keys) {
            restartOnly.append("devices (the Sparkplug births describe them)")
        }
        guard restartOnly.isEmpty else {
            throw ReloadRefused(description: "\(restartOnly.joined(separator: ", ")) cannot change by reload (topics or stored data depend on it): restart the agent (systemctl restart edge-agent)")
        }
    }

    /// Takes `next` (after `check`): keys, command lifetime and targets at once; a new MQTT
    /// client when the broker settings changed (queued messages stay in the outbox).
    func apply(_ next: AgentConfig) {
        let (old, replaceClient): (MQTTClient?, Bool) = cond.withLock {
            let brokerChanged = next.uplink.brokers != config.uplink.brokers || next.uplink.tls != config.uplink.tls
                || next.uplink.keepAlive != config.uplink.keepAlive || next.uplink.reconnectInitial != config.uplink.reconnectInitial
                || next.uplink.reconnectMax != config.uplink.reconnectMax || next.uplink.reconnectJitter != config.uplink.reconnectJitter
            config = next
            verifier = CommandVerifier(gatewayID: next.gateway.id, centreKeys: next.uplink.centreKeys, maxLifetime: next.uplink.maxCommandLifetime)
            guard brokerChanged else { return (nil, false) }
            let old = client
            client = nil
            connected = false
            inflight.removeAll()
            lastQueued = [:]
            cond.broadcast()
            return (old, true)
        }
        guard replaceClient else { return }
        logger.notice("uplink broker settings changed: reconnecting", metadata: ["broker": "\(next.uplink.broker)"])
        old?.stop()
        do {
            let client = try Self.makeClient(config: next, root: root, sparkplug: sparkplug, maxInflight: maxInflight, logger: logger)
            cond.withLock { self.client = client }
            connect(client)
            setOwnAlarm("uplink_unavailable", nil)
        } catch {
            logger.critical("the uplink cannot be set up with the new broker settings; retrying", metadata: ["error": "\(error)"])
            setOwnAlarm("uplink_unavailable", ("critical", "the uplink cannot be set up (\(error)); messages are kept in the outbox, retrying"))
            retryClient()
        }
    }

    /// Starts (true) or ends (false, for good) the execution of centre commands.
    func acceptCommands(_ on: Bool) {
        cond.lock()
        accepting = on
        if !on { intakeClosed = true }
        cond.broadcast()
        cond.unlock()
    }

    var status: ControlValue {
        cond.lock()
        defer { cond.unlock() }
        var o: [String: ControlValue] = [
            "broker": .string(client?.currentBroker ?? config.uplink.broker),
            "connected": .bool(connected),
            "inflight": .number(Double(inflight.count)),
        ]
        if let outbox {
            o["outbox_depth"] = .number(Double(outbox.count))
            let d = outbox.droppedCount
            o["dropped_telemetry"] = .number(Double(d.telemetry))
            o["dropped_events"] = .number(Double(d.event))
            o["last_seq"] = .number(Double(outbox.lastSeq))
        }
        o["outbox_errors"] = .number(Double(outboxErrors))
        if let e = lastOutboxError { o["outbox_error"] = .string(e) }
        o["time_quality"] = .string(clockTrust.quality.rawValue)
        o["time_source"] = .string(clockTrust.source)
        o["held_in_memory"] = .number(Double(held.count))
        o["replay_ids_in_memory"] = .number(Double(replay.heldInMemory))
        return .object(o)
    }

    /// The uplink's own alarms for the status view (`device: gateway`): the outbox cannot write
    /// (disk full, read-only or corrupt file), the state disk refused a safety command's replay
    /// record, the replay store or audit log could not be opened. Control is not affected.
    var activeAlarms: [ControlValue] {
        cond.lock()
        defer { cond.unlock() }
        var out: [ControlValue] = []
        func alarm(_ code: String, _ severity: String, _ message: String) -> ControlValue {
            .object(["device": .string("gateway"), "code": .string(code), "severity": .string(severity), "message": .string(message)])
        }
        if failuresInARow > 0 || outbox == nil {
            out.append(alarm("outbox_write_failed", "major", "the outbox cannot store uplink messages (\(failuresInARow) refused so far): \(lastOutboxError ?? "unavailable")"))
        }
        for key in ownAlarms.keys.sorted() {
            let a = ownAlarms[key]!
            out.append(alarm(String(key.dropFirst("gateway/".count)), a.severity, a.message))
        }
        return out
    }

    /// Sets how the uplink reads the control loop's status (alarms and device states) for the
    /// re-assertion of alarm states.
    func setSnapshotProvider(_ provider: @escaping @Sendable () -> ControlValue?) {
        cond.withLock { snapshotProvider = provider }
    }

    /// Asks for the current state of every alarm ever published as active to be published
    /// again once every device has been polled (start, reload, reconnect). Returns at once.
    func reassertAlarms() {
        cond.lock()
        reassertWanted = true
        cond.broadcast()
        cond.unlock()
    }

    func start() {
        let pump = EventPump<MQTTMessage>(name: "uplink-commands", capacity: 10_000) { [weak self] messages, dropped in
            if dropped > 0 { self?.logger.error("centre commands dropped: the command queue is full", metadata: ["dropped": "\(dropped)"]) }
            for m in messages { self?.process(m) }
        }
        cond.lock()
        running = true
        draining = true
        commandPump = pump
        cond.unlock()
        pump.start()
        if let recovered = outbox?.recoveredFromCorruption {
            logger.critical("outbox database was corrupt; moved aside and started fresh", metadata: ["detail": "\(recovered)"])
            cond.withLock { ownAlarms["gateway/outbox_corrupt"] = ("major", "outbox database was corrupt and was replaced; messages queued before may be lost: \(recovered)") }
        }
        if let skipped = outbox?.skippedSeqs {
            publishEvent(device: "gateway", type: "seq.skipped",
                         data: ["from": .number(Double(skipped.lowerBound)), "to": .number(Double(skipped.upperBound)),
                                "reason": .string("the outbox database is not the one the seq file was written for (lost, replaced or corrupt)")])
        }
        for (key, a) in cond.withLock({ ownAlarms }) {
            enqueue(topic: "\(root)/alarm/\(key)", retain: true, priority: .event, lane: .status,
                    body: ["active": .bool(true), "severity": .string(a.severity), "message": .string(a.message)])
        }
        clockTrust.onChange { [weak self] quality in self?.clockChanged(quality) }
        reassertAlarms()
        OSThread.detached(name: "uplink-drain") { [weak self] in self?.drain() }
        OSThread.detached(name: "uplink-alarms") { [weak self] in self?.reassertLoop() }
        if let client = cond.withLock({ client }) { connect(client) } else { retryClient() }
    }

    func stop(deadline: MonotonicInstant) { stop() }

    /// The clock became (un)synchronised: the retained status says so at once.
    private func clockChanged(_ quality: ClockTrust.Quality) {
        logger.notice("wall clock is now \(quality.rawValue)", metadata: ["source": "\(clockTrust.source)"])
        guard cond.withLock({ running }) else { return }
        enqueue(topic: root + "/status", retain: true, priority: .event, lane: .status,
                body: ["state": .string("online"), "version": .string(version), "boot_id": .string(bootID)])
    }

    /// Stops the drainer, says goodbye and closes the outbox.
    ///
    /// The goodbye (`status` `{"state":"offline"}`) is a message like every other: stored in
    /// the outbox with its `seq` and `ts`, then published at once, ahead of any backlog (the
    /// status goes first, as `online` does on connect), and awaited up to `goodbyeTimeout`. Not
    /// acknowledged by then (or no broker), it stays in the outbox and goes out in seq order
    /// at the next start, before that run's `online`. The broker's will covers unclean losses.
    func stop() {
        acceptCommands(false)
        cond.withLock { commandPump }?.stop(timeout: .seconds(2))
        cond.lock()
        running = false
        cond.broadcast()
        // The drainer leaves its loop at once (it never blocks on the broker); wait for it so
        // no publish of the backlog is in progress when the goodbye goes out.
        let drainerDeadline = MonotonicInstant.now() + .seconds(1)
        while draining, cond.wait(until: drainerDeadline) {}
        cond.unlock()
        let goodbye = store(topic: root + "/status", retain: true, priority: .event, lane: .status,
                            body: ["state": .string("offline"), "version": .string(version), "boot_id": .string(bootID)])
        cond.lock()
        if let goodbye, connected, let client {
            do {
                // issue 17: in the Sparkplug dialect the goodbye is the NDEATH.
                let mid = try client.publish(sparkplug?.death() ?? MQTTMessage(topic: goodbye.topic, payload: goodbye.payload, qos: 1, retain: true))
                inflight[mid] = goodbye.seq
                let deadline = MonotonicInstant.now() + Self.goodbyeTimeout
                while inflight[mid] != nil, connected, cond.wait(until: deadline) {}
                if inflight[mid] != nil {
                    logger.warning("the broker did not acknowledge the offline status in time; it stays in the outbox for the next start",
                                   metadata: ["seq": "\(goodbye.seq)"])
                }
            } catch {
                logger.warning("cannot publish the offline status; it stays in the outbox for the next start", metadata: ["error": "\(error)"])
            }
        }
        let client = self.client
        cond.unlock()
        client?.stop()
        outbox?.close()
    }

    // MARK: - Enqueue

    @discardableResult
    private func enqueue(topic: String, retain: Bool, priority: OutboxPriority, lane: OutboxLane? = nil, body: [String: ControlValue]) -> Bool {
        store(topic: topic, retain: retain, priority: priority, lane: lane, body: body) != nil
    }

    /// Stores one message in the outbox (adding `seq`, `ts` and `time_quality`); nil when the
    /// outbox refused it. `lane` defaults to the priority's (telemetry or events).
    private func store(topic: String, retain: Bool, priority: OutboxPriority, lane: OutboxLane? = nil, body: [String: ControlValue]) -> (seq: UInt64, topic: String, payload: [UInt8])? {
        guard let outbox else { return nil }
        var body = body
        if body["ts"] == nil { body["ts"] = .string(Timestamp.rfc3339()) }
        if body["time_quality"] == nil { body["time_quality"] = .string(clockTrust.quality.rawValue) }
        do {
            var payload: [UInt8] = []
            let seq = try outbox.append(topic: topic, qos: 1, retain: retain, priority: priority, lane: lane) { seq in
                var b = body
                b["seq"] = .number(Double(seq))
                payload = ControlCoding.encodeJSON(.object(b))
                return payload
            }
            cond.lock()
            let refused = failuresInARow
            let reason = lastOutboxError
            failuresInARow = 0
            lastOutboxError = nil
            storedCount &+= 1
            cond.broadcast()
            cond.unlock()
            if refused > 0 { outboxRecovered(refused: refused, reason: reason ?? "") }
            if topic.hasPrefix(root + "/alarm/"), case .bool(let active)? = body["active"] {
                ledger.note(String(topic.dropFirst(root.count + "/alarm/".count)), active: active, severity: body["severity"]?.string ?? "major")
            }
            return (seq, topic, payload)
        } catch {
            cond.lock()
            outboxErrors += 1
            failuresInARow += 1
            let first = failuresInARow == 1
            lastOutboxError = "\(error)"
            let total = outboxErrors
            cond.unlock()
            if first {
                logger.critical("outbox write failed: uplink messages are refused until it can write again; control continues",
                                metadata: ["error": "\(error)", "alarm": "gateway/outbox_write_failed"])
            } else if total % 1000 == 0 {
                logger.error("outbox still failing; control continues", metadata: ["error": "\(error)", "failures": "\(total)"])
            }
            return nil
        }
    }

    /// The outbox writes again: tell the centre what happened (the alarm raised and cleared,
    /// with how many messages were refused; their seqs are the gap the centre sees).
    private func outboxRecovered(refused: Int, reason: String) {
        logger.notice("outbox writes again", metadata: ["refused": "\(refused)", "alarm": "gateway/outbox_write_failed"])
        let topic = "\(root)/alarm/gateway/outbox_write_failed"
        enqueue(topic: topic, retain: true, priority: .event, lane: .status,
                body: ["active": .bool(true), "severity": .string("major"), "refused": .number(Double(refused)),
                       "message": .string("the outbox could not store uplink messages; \(refused) were refused: \(reason)")])
        enqueue(topic: topic, retain: true, priority: .event, lane: .status,
                body: ["active": .bool(false), "severity": .string("major"), "refused": .number(Double(refused)),
                       "message": .string("the outbox writes again after refusing \(refused) messages")])
    }

    func publish(_ events: [AgentEvent]) {
        for e in events {
            switch e {
            case .control(let c):
                if case .alarm(let a) = c.kind {
                    enqueue(topic: "\(root)/alarm/\(c.source)/\(a.code.rawValue)", retain: true, priority: .event, lane: .status,
                            body: ["active": .bool(a.active), "severity": .string(a.severity.rawValue), "message": .string(a.message)])
                } else {
                    var data: [String: ControlValue] = [:]
                    for (k, v) in c.data {
                        switch v {
                        case .int(let i): data[k] = .number(Double(i))
                        case .double(let d): data[k] = .number(d)
                        case .string(let s): data[k] = .string(s)
                        case .bool(let b): data[k] = .bool(b)
                        }
                    }
                    enqueue(topic: "\(root)/event/\(c.source)", retain: false, priority: .event,
                            body: ["type": .string(c.type), "data": .object(data)])
                }
            case .device(let d, let online, let error):
                enqueue(topic: "\(root)/event/\(d)", retain: false, priority: .event,
                        body: ["type": .string(online ? "device.online" : "device.offline"), "data": .object(error.map { ["error": .string($0)] } ?? [:])])
                enqueue(topic: "\(root)/alarm/\(d)/comm_lost", retain: true, priority: .event, lane: .status,
                        body: ["active": .bool(!online), "severity": .string("major"), "message": .string(online ? "\(d) answers again" : "\(d) does not answer: \(error ?? "no reply")")])
            case .telemetry(let device, let values):
                enqueue(topic: "\(root)/telemetry/\(device)", retain: false, priority: .telemetry, body: ["values": .object(values)])
            }
        }
    }

    func publishEvent(device: String, type: String, data: [String: ControlValue]) {
        enqueue(topic: "\(root)/event/\(device)", retain: false, priority: .event, body: ["type": .string(type), "data": .object(data)])
    }

    func audit(command: AgentCommand, response: ControlResponse) {
        do {
            try auditLog?.record(origin: command.origin, id: command.id, target: command.target, action: command.action.name, args: command.args,
                                 result: response.ok ? .ok : .error(code: response.code ?? .unavailable, message: response.message ?? ""))
        } catch {
            logger.error("audit log write failed: \(error)")
        }
    }

    // MARK: - MQTT callbacks (libmosquitto's thread)

    private func connectionChanged(_ up: Bool) {
        cond.lock()
        connected = up
        if let sparkplug { sparkplugConnectionChanged(up, sparkplug) }   // issue 17
        cond.broadcast()
        cond.unlock()
        if up {
            logger.notice("uplink connected", metadata: ["broker": "\(cond.withLock { client?.currentBroker } ?? "")"])
            // The status lane goes first: `online` overtakes any backlog of events and telemetry.
            enqueue(topic: root + "/status", retain: true, priority: .event, lane: .status,
                    body: ["state": .string("online"), "version": .string(version), "boot_id": .string(bootID)])
            reassertAlarms()
        } else {
            logger.warning("uplink disconnected; messages stay in the outbox", metadata: ["broker": "\(cond.withLock { config.uplink.broker })"])
        }
    }

    private func acknowledged(_ mid: Int32) {
        cond.lock()
        let seq = inflight.removeValue(forKey: mid)
        cond.broadcast()
        cond.unlock()
        if let seq { try? outbox?.remove(seq: seq) }
    }

    private func received(_ message: MQTTMessage) {
        if let sparkplug, message.topic != root + "/cmd" { return sparkplugReceived(message, sparkplug) }   // issue 17
        guard message.topic == root + "/cmd" else { return }
        cond.withLock { commandPump }?.post([message])
    }

    /// One centre command, on `uplink-commands`: waits for the agent to take commands and for
    /// a reload in progress, then verifies, checks, records, executes and answers it.
    private func process(_ message: MQTTMessage) {
        cond.lock()
        while !accepting, !intakeClosed { cond.wait() }
        let closed = intakeClosed
        cond.unlock()
        let config = configSource()
        let verifier = cond.withLock { self.verifier }
        let now = Date()
        switch verifier.verify(envelope: message.payload, now: now) {
        case .failure(let rejection):
            logger.warning("command refused", metadata: ["code": "\(rejection.code.rawValue)", "reason": "\(rejection.message)"])
            reply(id: rejection.id, ok: false, code: rejection.code, message: rejection.message)
        case .success(let command):
            if replay.hasSeen(command.id) {
                return reply(id: command.id, ok: false, code: .replay, message: replay.replayMessage(for: command.id))
            }
            if closed {
                return reply(id: command.id, ok: false, code: .unavailable, message: "the agent is stopping; the command was not run")
            }
            let action: CommandAction
            switch CommandAction.parse(command, targetKind: CommandAction.TargetKind(of: command.target, in: config)) {
            case .success(let a): action = a
            case .failure(let rejection): return reply(id: command.id, ok: false, code: rejection.code, message: rejection.message)
            }
            // Remember the id before acting (check and record in one step): a crash after this
            // point can lose the command but never run it twice.
            do {
                guard try replay.recordIfNew(command.id, expires: command.expires) else {
                    return reply(id: command.id, ok: false, code: .replay, message: replay.replayMessage(for: command.id))
                }
            } catch {
                // The state disk fails. Safety does not need it: a command toward the safe state
                // runs with its id kept in memory; every other one is refused.
                guard action.isTowardSafeState else {
                    return reply(id: command.id, ok: false, code: .unavailable,
                                 message: "the state disk cannot record the command id (\(error)); only \(CommandAction.towardSafeStateNames.joined(separator: ", ")) run until it can")
                }
                guard replay.recordInMemory(command.id, expires: command.expires) else {
                    return reply(id: command.id, ok: false, code: .replay, message: replay.replayMessage(for: command.id))
                }
                stateDiskFailed("\(error)", command: command.id)
            }
            let agentCommand = AgentCommand(origin: .centre(keyID: command.keyID), id: command.id, target: command.target, action: action, args: command.args)
            execute(agentCommand) { [weak self] response in
                guard let self else { return }
                // The id stays spent either way; a later replay is told what became of it.
                do {
                    try replay.recordOutcome(command.id, outcome: response.ok ? "executed" : "refused: \(response.code?.rawValue ?? "error")", at: Date())
                } catch {
                    self.logger.error("cannot record a command's outcome in the replay store", metadata: ["id": "\(command.id)", "error": "\(error)"])
                }
                self.audit(command: agentCommand, response: response)
                self.reply(id: command.id, ok: response.ok, code: response.code, message: response.message)
                if response.ok {
                    self.publishEvent(device: command.target.isEmpty ? "gateway" : command.target, type: "command.executed",
                                      data: ["id": .string(command.id), "action": .string(action.name)])
                }
            }
        }
    }

    /// Answers on `ROOT/reply`. A reply the outbox refuses is held in memory (bounded) and
    /// stored once it writes again: the centre learns every outcome.
    private func reply(id: String?, ok: Bool, code: CommandError.Code?, message: String?) {
        var body: [String: ControlValue] = ["id": id.map { .string($0) } ?? .null, "ok": .bool(ok)]
        if !ok { body["error"] = .object(["code": .string(code?.rawValue ?? "error"), "message": .string(message ?? "")]) }
        body["ts"] = .string(Timestamp.rfc3339())
        if !enqueue(topic: root + "/reply", retain: false, priority: .event, body: body) {
            hold(topic: root + "/reply", retain: false, priority: .event, lane: .event, body: body)
        }
    }

    private func hold(topic: String, retain: Bool, priority: OutboxPriority, lane: OutboxLane, body: [String: ControlValue]) {
        cond.lock()
        if held.count < Self.maxHeld {
            held.append((topic, retain, priority, lane, body))
        } else {
            logger.error("too many messages held in memory while the state disk fails; one dropped", metadata: ["topic": "\(topic)"])
        }
        cond.unlock()
    }

    /// A safety command ran without its replay record on disk: raise `state_disk_failed`
    /// (status view at once; on `ROOT/alarm/gateway/state_disk_failed` once the disk is back).
    private func stateDiskFailed(_ reason: String, command id: String) {
        logger.critical("state disk refused a replay record; the command toward the safe state runs with its id kept in memory",
                        metadata: ["id": "\(id)", "error": "\(reason)", "alarm": "gateway/state_disk_failed"])
        let message = "the state disk refuses writes (\(reason)); safety commands run with their ids kept in memory, other commands are refused"
        cond.lock()
        let first = stateDiskError == nil
        stateDiskError = reason
        ownAlarms["gateway/state_disk_failed"] = ("critical", message)
        cond.unlock()
        if first {
            let body: [String: ControlValue] = ["active": .bool(true), "severity": .string("critical"), "message": .string(message), "ts": .string(Timestamp.rfc3339())]
            if !enqueue(topic: root + "/alarm/gateway/state_disk_failed", retain: true, priority: .event, lane: .status, body: body) {
                hold(topic: root + "/alarm/gateway/state_disk_failed", retain: true, priority: .event, lane: .status, body: body)
            }
        }
    }

    /// Retries what waits in memory (held messages, replay records); clears `state_disk_failed`
    /// once both are on disk. Called from the drainer about once a second.
    private func retryHeld() {
        let (pending, diskFailed) = cond.withLock { (held, stateDiskError != nil) }
        guard !pending.isEmpty || diskFailed else { return }
        var stored = 0
        for m in pending {
            guard enqueue(topic: m.topic, retain: m.retain, priority: m.priority, lane: m.lane, body: m.body) else { break }
            stored += 1
        }
        cond.withLock { held.removeFirst(min(stored, held.count)) }
        guard diskFailed, stored == pending.count, replay.persistMemory() == 0 else { return }
        let body: [String: ControlValue] = ["active": .bool(false), "severity": .string("critical"),
                                            "message": .string("the state disk accepts writes again; the replay records kept in memory are stored")]
        if enqueue(topic: root + "/alarm/gateway/state_disk_failed", retain: true, priority: .event, lane: .status, body: body) {
            cond.withLock {
                stateDiskError = nil
                ownAlarms["gateway/state_disk_failed"] = nil
            }
            logger.notice("state disk writes again; replay records kept in memory are stored", metadata: ["alarm": "gateway/state_disk_failed"])
        }
    }

    // MARK: - Alarm re-assertion

    /// Waits for `reassertAlarms()` requests; for each, once every polled device has answered
    /// (or after `settleLimit`), publishes the state of every alarm in the ledger or active now.
    private func reassertLoop() {
        while true {
            cond.lock()
            // Woken by `reassertAlarms` and `stop` (both broadcast): no periodic wake-up when idle.
            while running, !reassertWanted { cond.wait() }
            if !running {
                cond.unlock()
                return
            }
            reassertWanted = false
            let provider = snapshotProvider
            cond.unlock()
            guard let provider else { continue }
            let deadline = ContinuousClock.now + Self.settleLimit
            var view: FieldAlarms?
            while cond.withLock({ running }) {
                let v = provider().flatMap(FieldAlarms.init)
                if let v, v.settled || ContinuousClock.now >= deadline {
                    view = v
                    break
                }
                if ContinuousClock.now >= deadline { break }
                MonotonicInstant.sleep(for: .milliseconds(100))
            }
            if let view { publishAlarmStates(view) }
        }
    }

    /// How long the re-assertion waits for every device's first poll before it goes with what is known.
    static let settleLimit = Duration.seconds(5)

    /// The control loop's alarms and which devices have been polled, from its status snapshot.
    struct FieldAlarms {
        var active: [String: (severity: String, message: String)] = [:]
        /// Devices polled at least once (online or not); GPIO inputs count as polled.
        var known: Set<String> = []
        var settled = true

        init?(_ snapshot: ControlValue) {
            guard case .object(let o) = snapshot, case .object(let devices)? = o["devices"], case .array(let alarms)? = o["alarms"] else { return nil }
            for (name, d) in devices {
                guard case .object(let dev) = d else { continue }
                if case .bool? = dev["online"] { known.insert(name) } else if dev["kind"]?.string == "gpio" { known.insert(name) } else { settled = false }
            }
            for a in alarms {
                guard case .object(let x) = a, let device = x["device"]?.string, let code = x["code"]?.string else { continue }
                active["\(device)/\(code)"] = (x["severity"]?.string ?? "major", x["message"]?.string ?? "")
            }
        }
    }

    private func publishAlarmStates(_ field: FieldAlarms) {
        let own = cond.withLock { ownAlarms }
        let published = ledger.active
        var keys = Set(published.keys).union(field.active.keys).union(own.keys)
        // An alarm of a device not polled yet stays as it is: its state is not known.
        keys = keys.filter { key in
            let device = String(key.split(separator: "/").first ?? "")
            return device == "gateway" || field.known.contains(device) || field.active[key] != nil
        }
        var asserted = 0
        var cleared = 0
        for key in keys.sorted() {
            let topic = "\(root)/alarm/\(key)"
            if let a = field.active[key] ?? own[key] {
                enqueue(topic: topic, retain: true, priority: .event, lane: .status,
                        body: ["active": .bool(true), "severity": .string(a.severity), "message": .string(a.message)])
                asserted += 1
            } else {
                enqueue(topic: topic, retain: true, priority: .event, lane: .status,
                        body: ["active": .bool(false), "severity": .string(published[key] ?? "major"),
                               "message": .string("\(key) is not active (state re-asserted after a start, reload or reconnect)")])
                cleared += 1
            }
        }
        logger.info("alarm states re-asserted", metadata: ["active": "\(asserted)", "cleared": "\(cleared)"])
    }

    // MARK: - Drainer

    /// Publishes the outbox by lane: each round fills the in-flight window from the highest
    /// lane first, so a status or an alarm waits at most for the window in flight, never for
    /// the backlog below it.
    private func drain() {
        var lastRetry = ContinuousClock.now
        while true {
            if ContinuousClock.now - lastRetry >= .seconds(1) {
                lastRetry = ContinuousClock.now
                retryHeld()
            }
            cond.lock()
            // issue 17: in the Sparkplug dialect data waits for the NBIRTH (and the primary host).
            while running && (!connected || inflight.count >= maxInflight || sparkplug?.born == false) {
                cond.wait(until: MonotonicInstant.now() + .seconds(1))
                if ContinuousClock.now - lastRetry >= .seconds(1) { break }
            }
            if !running {
                draining = false
                cond.broadcast()
                cond.unlock()
                return
            }
            if !connected || inflight.count >= maxInflight || sparkplug?.born == false {
                cond.unlock()
                continue
            }
            var room = maxInflight - inflight.count
            let cursors = lastQueued
            let storedBefore = storedCount
            cond.unlock()
            guard let outbox else {
                cond.lock()
                if running { cond.wait(until: MonotonicInstant.now() + .milliseconds(50)) }
                cond.unlock()
                continue
            }
            var sent = 0
            var failed = false
            lanes: for lane in OutboxLane.allCases where room > 0 {
                guard let batch = try? outbox.peek(lane: lane, after: cursors[lane], limit: room), !batch.isEmpty else { continue }
                for m in batch {
                    do {
                        cond.lock()
                        // issue 17: the dialect decides what goes on the wire (nothing: done at once).
                        if let mid = try publishWire(m) { inflight[mid] = m.seq } else { try? outbox.remove(seq: m.seq) }
                        lastQueued[lane] = m.seq
                        cond.unlock()
                        room -= 1
                        sent += 1
                    } catch {
                        cond.unlock()
                        failed = true
                        break lanes
                    }
                }
            }
            if failed {
                cond.lock()
                if running { cond.wait(until: MonotonicInstant.now() + .milliseconds(50)) }
                cond.unlock()
            } else if sent == 0 {
                // Nothing to send: sleep until something changes (a message stored, the connection,
                // an acknowledgement, a stop: each broadcasts), at most until the next retry of
                // held messages; a message stored since the peek is sent at once.
                cond.lock()
                let until = MonotonicInstant.now() + max(.milliseconds(50), .seconds(1) - (ContinuousClock.now - lastRetry))
                if running && storedCount == storedBefore { cond.wait(until: until) }
                cond.unlock()
            }
        }
    }
}

// MARK: - Sparkplug B dialect hooks (issue 17; the dialect itself is Uplink/SparkplugEdgeNode.swift)

extension UplinkService {
    /// One stored message on the wire: as is (edge dialect) or mapped onto Sparkplug. Returns
    /// the message id to await (the last one published), nil when nothing was published.
    /// Called with `cond` held.
    fileprivate func publishWire(_ m: OutboxMessage) throws(MQTTError) -> Int32? {
        guard let client else { throw MQTTError(kind: .notConnected, message: "no MQTT client") }
        guard let sparkplug else { return try client.publish(MQTTMessage(topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain)) }
        var last: Int32?
        for wire in sparkplug.map(m) { last = try client.publish(wire) }
        return last
    }

    /// Births (NBIRTH, DBIRTHs) on the wire, in seq order. Called with `cond` held.
    fileprivate func publishBirths(_ sparkplug: SparkplugEdgeNode) {
        for m in sparkplug.births(outboxLastSeq: outbox?.lastSeq ?? 0) {
            do {
                guard let client else { throw MQTTError(kind: .notConnected, message: "no MQTT client") }
                _ = try client.publish(m)
            } catch { logger.error("Sparkplug birth not published", metadata: ["topic": "\(m.topic)", "error": "\(error)"]) }
        }
        cond.broadcast()
    }

    /// Called with `cond` held, on the network thread.
    fileprivate func sparkplugConnectionChanged(_ up: Bool, _ sparkplug: SparkplugEdgeNode) {
        if up {
            if sparkplug.hostOnline { publishBirths(sparkplug) }
        } else {
            do { try client?.setWill(sparkplug.linkDown()) } catch { logger.error("cannot set the next NDEATH will", metadata: ["error": "\(error)"]) }
        }
    }

    /// NCMD, DCMD and the primary host's STATE.
    fileprivate func sparkplugReceived(_ message: MQTTMessage, _ sparkplug: SparkplugEdgeNode) {
        cond.lock()
        let actions = sparkplug.handle(message)
        cond.unlock()
        for action in actions {
            switch action {
            case .rebirth:
                logger.notice("Sparkplug rebirth requested")
                cond.lock()
                if connected && sparkplug.hostOnline { publishBirths(sparkplug) }
                cond.unlock()
            case .command(let envelope):
                // The signed envelope of the contract: the same checks as on ROOT/cmd.
                received(MQTTMessage(topic: root + "/cmd", payload: envelope, qos: 1, retain: false))
            case .refused(let why):
                logger.warning("Sparkplug command refused", metadata: ["reason": "\(why)"])
                reply(id: nil, ok: false, code: .malformed, message: why)
            case .hostState(let online):
                logger.notice("Sparkplug primary host \(online ? "online" : "offline")", metadata: ["host": "\(sparkplug.primaryHost ?? "")"])
                cond.lock()
                if online, connected, !sparkplug.born { publishBirths(sparkplug) }
                cond.broadcast()
                cond.unlock()
            case .ignore:
                break
            }
        }
    }
}

extension ControlCoding {
    static func encodeJSON(_ value: ControlValue) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? [UInt8](encoder.encode(value))) ?? []
    }
}
