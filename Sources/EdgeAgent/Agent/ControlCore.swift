import Drivers
import FoundationEssentials
import Logging
import EdgeRuntime

/// The control step: everything the control loop thread owns. The state machines (lighting
/// groups, lamp monitors, bollards, approaches) and what the field last told about each
/// device, by the integer ids of the compiled config (`FieldMap`); what was written lives in
/// an `OutputTracker`, what goes to the centre passes a `TelemetryFilter`, and `snapshot`
/// makes a `StatusSnapshot`. Only the loop thread touches it; other threads talk to it through
/// `ControlInbox` and receive results through callbacks. It talks to the field through a
/// `FieldPort`, so the whole wiring runs in-process on a virtual clock in tests.
///
/// Each `step` drains the inbox, feeds readings, edges and commands to the machines, ticks
/// them, writes outputs that changed (or that a device reports differently, e.g. after it
/// rebooted), and hands the machines' events to the uplink.
///
/// The loop runs a step on an input that wakes it and at `nextDeadline`, at the latest
/// `maxSleep` after the step before; nothing else. Timing rules:
/// - `nextDeadline` is the earliest instant at which time alone changes something: the
///   machines' own deadlines (fades and holds, overrides, pre-warnings, travel timeouts,
///   bollard sensor age, warm-ups, priority hold and rate limit), a lamp override's end, the
///   next motor-off retry of a silent bollard, a signal I/O's poll turning older than
///   `signalMaxAge`, and the schedule's next check (every second: the astronomical clock and
///   the wall clock are read then). A step at any other instant changes nothing
///   (`TicklessEquivalenceTests`); after a step at `now` it is later than `now`.
/// - Waking inputs: edges, commands, write completions, and a poll `ReadingWakeFilter` lets
///   through (a changed poll of a bollard, presence sensor or signal I/O; every poll of one
///   that waits for a fresh poll). Other polls (luminaires; repeats) wait for the next step.
///
/// Wiring rules:
/// - A reading with values that could not be used (`DeviceReading.invalid`) raises the
///   device's `invalid_value` alarm (cleared by a clean reading); those values are absent,
///   so nothing is judged or actuated on them.
/// - A reading carries what was read: roles it did not read (`DeviceReading.unread`, slow
///   blocks such as coil read-back and lux) are absent, and absent is not zero or off. The
///   machines and the output comparison see only what was read (a new write is never compared
///   with an old read-back); status and telemetry show each role's last known value
///   (`lastKnown`).
/// - A presence sensor that goes offline forgets its detection: when it answers again its
///   state is taken afresh (a sensor back online while detecting boosts).
/// - Lamp failure is judged against the level the agent commanded.
/// - Bollard outputs, the traffic light included where the profile has it, are written off
///   before on; optional points the profile lacks are never written.
/// - Priority request on and off go through one queue (safety), so off never overtakes on.
/// - An approach whose signal I/O was not polled within `signalMaxAge` (500 ms: two polls at
///   the slowest period the loader accepts for signal I/O) is treated as offline (requests
///   refused, grants not judged on an old acknowledgement) until a fresh poll.
/// - A maintenance write (`io_write`) pauses that device's automation until maintenance mode
///   ends; it is refused when it would energise both motor coils of a bollard.
///
/// Safety state (see `SafetyState`): a core built `restoring:` a state applies it at its first
/// step (by id; entries of ids no longer configured with that kind are dropped and logged);
/// `exportSafetyState()` hands it on at a reload. With a `safetyStore`, every change of a
/// bollard's emergency latch, latched fault or hold is handed to the store at the end of the
/// step, and the reply to the command that made it waits until it is durable. Gateway alarms:
/// `safety_state_lost` (critical) when the kept state could not be read at start (every
/// bollard latched; cleared once no bollard is latched or by a reload), `safety_state_unsaved`
/// (critical) while the store's last write failed.
final class ControlCore: @unchecked Sendable {
    struct LampOverride { var level: Int; var until: MonotonicInstant }

    let config: AgentConfig
    let map: FieldMap
    private let logger: Logger
    private let field: any FieldPort
    private let inbox: ControlInbox
    private let onEvents: @Sendable ([AgentEvent]) -> Void
    /// The wall clock for the schedule (tests inject one).
    private let wallClock: @Sendable () -> Date

    // Machines, by ordinal (groups, bollards, approaches) or device id (monitors).
    private var groups: [LightingGroup] = []
    private var schedules: [LightingSchedule] = []
    private var monitors: [LampMonitor?]
    private var bollards: [BollardController] = []
    private var approaches: [PriorityApproach] = []

    // What the field told, by device id.
    private var readings: [DeviceReading?]
    /// Each device's values as last read, role by role (a poll's unread roles keep theirs;
    /// emptied when it goes offline): what status and telemetry show.
    private var lastKnown: [PointValues]
    private var online: [Bool?]
    private var presence: [Bool?]
    private var invalidActive: [Bool]
    /// Devices under manual control (a maintenance write), automation paused.
    private var manual: [Bool]
    private var bollardSensors: [BollardController.Sensors?]
    /// Signal I/O polled too long ago: its approaches are told offline.
    private var signalStale: [Bool]
    private var lampOverrides: [LampOverride?]
    /// Input lines of devices wired point by point (GPIO bollards, signal I/O), as last edged.
    private var wiredInputs: [PointValues]
    private var outputs: OutputTracker
    private var telemetry: TelemetryFilter
    private var telemetryTouched: [Int] = []
    /// Bollards whose I/O went silent: motor-off is retried (best effort) at these instants
    /// until one write is confirmed, since the motor may still be on out there.
    private var motionCutRetry: [MonotonicInstant?]
    private static let motionCutInterval = Duration.milliseconds(500)
    /// The oldest poll of a signal I/O its approaches are judged on.
    static let signalMaxAge = Duration.milliseconds(500)
    /// The longest the control loop sleeps between steps when nothing is due (a constant: it
    /// bounds how late a luminaire's poll is looked at, and the watchdog allows for it).
    static let maxSleep = Duration.seconds(1)
    /// How often the schedule (astronomical and wall clock) is checked.
    static let scheduleInterval = Duration.seconds(1)
    /// Active alarms by "source/code", for the status view.
    private(set) var activeAlarms: [String: ControlEvent.Alarm] = [:]
    private var nextScheduleUpdate = MonotonicInstant(nanoseconds: 0)
    private var inputs: [ControlInput] = []
    private var events: [ControlEvent] = []
    private var pendingEvents: [AgentEvent] = []
    private(set) var maintenance = false
    let startedAt = MonotonicInstant.now()
    /// Devices whose readings must be acted on at once (by id): their readings wake the loop.
    let waking: [Bool]
    /// Which polls wake the loop (asked on the bus threads; the step marks eager devices).
    let wakeFilter: ReadingWakeFilter
    /// The eager marks last given to `wakeFilter`, by device id (the filter is locked only on a change).
    private var eager: [Bool]
    /// Set once by `halt`: from then on `step` does nothing and no output is written.
    private let halted = Locked(false)
    /// Held for the whole of a step, so `halt` can wait for one in progress to finish.
    private let stepLock = EdgeRuntime.Lock()

    // Safety state (see `SafetyState`).
    private let safetyStore: SafetyStateStore?
    /// The state to start from, applied at the first step.
    private var restoring: SafetyState?
    /// What was last handed to the store, per bollard ordinal (nil: nothing yet).
    private var savedKeys: [BollardController.DurableKey?]
    /// Replies of commands whose change waits for the next save.
    private var awaitingSave: [@Sendable () -> Void] = []
    /// The last durable state handed over, for `exportSafetyState` when a step is stuck.
    private let lastSaved = Locked<SafetyState?>(nil)
    private var lastStepAt: MonotonicInstant?
    /// Why the kept state could not be read (the `safety_state_lost` alarm is active).
    private var stateLost: String?
    private var unsavedActive = false

    /// `map`: the compiled config, shared with the field (built from `config` when not given).
    /// `restoring`: the safety state to carry on from (a reload's export, or what `safetyStore`
    /// read back at start); `safetyStore`: where changes of the durable part are written.
    init(config: AgentConfig, map: FieldMap? = nil, field: any FieldPort, inbox: ControlInbox, logger: Logger,
         wallClock: @escaping @Sendable () -> Date = { Date() }, restoring: SafetyState? = nil, safetyStore: SafetyStateStore? = nil,
         onEvents: @escaping @Sendable ([AgentEvent]) -> Void) {
        self.config = config
        self.restoring = restoring
        self.safetyStore = safetyStore
        let map = map ?? FieldMap(config: config)
        self.map = map
        self.field = field
        self.inbox = inbox
        self.logger = logger
        self.wallClock = wallClock
        self.onEvents = onEvents
        let tz: ZoneRules
        do {
            tz = try ZoneRules.load(config.gateway.timezone)
        } catch {
            // The config check loaded it; the file went away since. UTC rather than no lighting.
            logger.error("schedules run on UTC", metadata: ["error": "\(error)"])
            tz = .utc
        }
        let n = map.count
        monitors = Array(repeating: nil, count: n)
        for name in map.groupNames {
            let g = config.lighting[name]!
            groups.append(LightingGroup(config: g))
            schedules.append(LightingSchedule(config: g, latitude: config.gateway.latitude, longitude: config.gateway.longitude, timeZone: tz))
            for l in g.lamps { if let id = map.ids[l] { monitors[id] = LampMonitor(lamp: l, config: g) } }
        }
        for id in map.bollardDevice { bollards.append(BollardController(config: config.bollards[map.names[id]]!)) }
        for name in map.approachNames { approaches.append(PriorityApproach(config: config.priority[name]!)) }
        readings = Array(repeating: nil, count: n)
        lastKnown = (0..<n).map { _ in PointValues() }
        online = Array(repeating: nil, count: n)
        presence = Array(repeating: nil, count: n)
        invalidActive = Array(repeating: false, count: n)
        manual = Array(repeating: false, count: n)
        bollardSensors = Array(repeating: nil, count: map.bollardDevice.count)
        signalStale = Array(repeating: false, count: n)
        lampOverrides = Array(repeating: nil, count: n)
        wiredInputs = Array(repeating: PointValues(), count: n)
        motionCutRetry = Array(repeating: nil, count: n)
        savedKeys = Array(repeating: nil, count: map.bollardDevice.count)
        outputs = OutputTracker(count: n)
        telemetry = TelemetryFilter(count: n, interval: config.uplink.telemetryInterval)
        waking = map.waking
        wakeFilter = ReadingWakeFilter(waking: waking)
        eager = Array(repeating: false, count: n)
        inputs.reserveCapacity(inbox.capacity)
        events.reserveCapacity(256)
    }

    /// Earliest instant at which time alone changes something (see the timing rules above);
    /// allocates nothing.
    var nextDeadline: MonotonicInstant? {
        var d: MonotonicInstant? = nextScheduleUpdate
        func take(_ x: MonotonicInstant?) { if let x, d == nil || x < d! { d = x } }
        for g in groups { take(g.nextDeadline) }
        for b in bollards { take(b.nextDeadline) }
        for a in approaches { take(a.nextDeadline) }
        for m in monitors { take(m?.nextDeadline) }
        for o in lampOverrides { take(o?.until) }
        for (id, due) in motionCutRetry.enumerated() where online[id] != true { take(due) }
        for id in map.approachDevice where online[id] == true && !signalStale[id] {
            // Stale once strictly older than signalMaxAge (`checkSignalAge`).
            take(readings[id].map { MonotonicInstant(nanoseconds: $0.timestampNanos) + Self.signalMaxAge + .nanoseconds(1) })
        }
        return d
    }

    // MARK: - The loop step

    func step(now: MonotonicInstant) {
        stepLock.lock()
        defer { stepLock.unlock() }
        if halted.withLock({ $0 }) { return }
        if let r = restoring {
            restoring = nil
            restore(r, now: now)
        }
        lastStepAt = now
        inbox.drain(into: &inputs)
        for input in inputs { apply(input, now: now) }
        inputs.removeAll(keepingCapacity: true)

        if now >= nextScheduleUpdate {
            let wall = wallClock()
            let trusted = ClockTrust.shared.isSynchronised   // an atomic load, no I/O
            for g in groups.indices { groups[g].setSchedule(level: schedules[g].level(at: wall, clockTrusted: trusted), at: now) }
            nextScheduleUpdate = now + Self.scheduleInterval
            judgeSafetyStateAlarms(now: now)
        }
        for g in groups.indices { groups[g].tick(at: now) }
        for id in lampOverrides.indices where lampOverrides[id].map({ $0.until <= now }) ?? false { lampOverrides[id] = nil }
        for id in monitors.indices where monitors[id] != nil { monitors[id]!.tick(at: now) }
        feedWiredBollards(now: now)
        for b in bollards.indices { bollards[b].tick(at: now) }
        checkSignalAge(now: now)
        for a in approaches.indices { approaches[a].tick(at: now) }

        lightWave(now: now)
        writeOutputs(now: now)
        saveSafetyStateIfChanged(now: now)
        collectTelemetry(now: now)
        collectEvents(now: now)
        markEager()
    }

    /// Tells `wakeFilter` which devices' every poll must wake the loop: a bollard online and not
    /// at rest (waiting for a fresh poll to start moving, moving, or in a fault a poll clears),
    /// a signal I/O judged stale.
    private func markEager() {
        for (b, id) in map.bollardDevice.enumerated() {
            let c = bollards[b]
            var on = online[id] == true && map.pointLines[id] == nil
            if on {
                switch c.position {
                case .raising, .lowering: on = true
                case .fault: on = c.fault == .sensorsStale || c.fault == .noContact
                default: on = false
                }
            }
            if on != eager[id] { eager[id] = on; wakeFilter.setEager(id, on) }
        }
        for id in map.approachDevice where signalStale[id] != eager[id] {
            eager[id] = signalStale[id]
            wakeFilter.setEager(id, eager[id])
        }
    }

    private func apply(_ input: ControlInput, now: MonotonicInstant) {
        switch input {
        case .reading(let r): applyReading(r, now: now)
        case .edge(let e): applyEdge(e, now: now)
        // A command its waiter withdrew (answered `timeout`) is skipped: it never runs late.
        case .command(let pending):
            guard pending.claim() else { break }
            let response = execute(pending.command, now: now)
            // A change of what a restart keeps is answered once it is durable.
            if let id = map.ids[pending.command.target], let b = map.bollardOfDevice[id], bollards[b].durableKey != savedKeys[b] {
                awaitingSave.append { pending.finish(response) }
            } else {
                pending.finish(response)
            }
        case .writeFailed(let device, let error):
            outputs.failed(device)
            logger.warning("write failed; will retry", metadata: ["device": "\(map.names[device])", "error": "\(error.message)"])
        case .writeDone(let device):
            outputs.done(device)
            if online[device] != true, motionCutRetry[device] != nil {
                motionCutRetry[device] = nil
                logger.notice("bollard motor cut confirmed while its I/O was offline", metadata: ["device": "\(map.names[device])"])
            }
        case .snapshot(let reply): reply(snapshot(now: now).controlValue)
        }
    }

    private func applyReading(_ r: DeviceReading, now: MonotonicInstant) {
        let id = r.device
        guard id >= 0, id < map.count else { return }
        let name = map.names[id]
        let wasOnline = online[id]
        online[id] = r.online
        readings[id] = r
        // In place: the unread roles keep their value, the rest is this poll's (an offline
        // reading has none).
        lastKnown[id].update(from: r.values, keeping: r.online ? r.unread : PointRoleSet())
        telemetryTouched.append(id)
        if wasOnline != r.online {
            pendingEvents.append(.device(device: name, online: r.online, error: r.error))
        }
        let at = MonotonicInstant(nanoseconds: r.timestampNanos)
        judgeValidity(r, id: id, now: now)
        let v = r.values
        // Presence sensors.
        let groupsOfSensor = map.groupsOfSensor[id]
        if !groupsOfSensor.isEmpty {
            if wasOnline != r.online {
                for g in groupsOfSensor { groups[g].handle(.sensorOnline(sensor: name, online: r.online), at: at) }
                // Back online (or offline): the detection is taken afresh from the next value.
                presence[id] = nil
            }
            if r.online, let p = v[.presence] {
                let detected = p != 0
                if presence[id] != detected {
                    presence[id] = detected
                    for g in groupsOfSensor { groups[g].handle(.presence(sensor: name, detected: detected), at: at) }
                }
            }
        }
        // Luminaires.
        if monitors[id] != nil {
            if r.online {
                if let level = v[.level] {
                    var status: LampMonitor.StatusBits = []
                    if v.isOn(.lampFailure) { status.insert(.lampFailure) }
                    if v.isOn(.driverFault) { status.insert(.driverFault) }
                    if v.isOn(.overTemperature) { status.insert(.overTemperature) }
                    let commanded = outputs.written(id, .setpoint).map { Int($0) }
                    monitors[id]!.handle(.reading(actualLevel: Int(level), powerW: v[.powerW] ?? 0, status: status, commandedLevel: commanded), at: at)
                }
                // A device that rebooted or was changed by hand gets our setpoint again.
                outputs.compare(id, reported: v, roles: [.setpoint])
            } else {
                monitors[id]!.handle(.offline, at: at)
                outputs.forget(id)
            }
        }
        // Bollards.
        if let b = map.bollardOfDevice[id] {
            // Coming online is told by the poll itself (`.sensors` means online).
            if wasOnline != r.online, !r.online { bollards[b].handle(.ioOnline(false), at: at) }
            if r.online {
                if let s = Self.sensors(v) {
                    bollardSensors[b] = s
                    // Every poll, changed or not: motion starts only on a fresh whole poll.
                    bollards[b].handle(.sensors(s), at: at)
                }
                outputs.compare(id, reported: v, roles: [.motorUp, .motorDown, .warning, .traffic])
            } else {
                outputs.forget(id)
                // Armed when contact is lost; a later offline poll does not re-arm a confirmed cut.
                if motionCutRetry[id] == nil, wasOnline != false { motionCutRetry[id] = at }
                bollardSensors[b] = nil
            }
        }
        // Signal I/O of approaches.
        for a in map.approachesOfDevice[id] {
            let n = map.approachNumber[a]
            if wasOnline != r.online { approaches[a].handle(.ioOnline(r.online), at: at) }
            if r.online {
                if signalStale[id] { approaches[a].handle(.ioOnline(true), at: at) }
                if let ack = v[.ack(n)] { approaches[a].handle(.acknowledged(ack != 0), at: at) }
                approaches[a].handle(.degraded(v.isOn(.degraded)), at: at)
            }
        }
        if !map.approachesOfDevice[id].isEmpty {
            signalStale[id] = false
            if r.online {
                outputs.compare(id, reported: v, roles: map.requestRoles[id])
            } else {
                outputs.forget(id)
            }
        }
    }

    /// The whole set of bollard inputs from a poll; nil when a required one is missing (an
    /// invalid value): a partial poll is no poll.
    private static func sensors(_ v: PointValues) -> BollardController.Sensors? {
        guard let top = v[.atTop], let bottom = v[.atBottom], let loop = v[.loop], let photo = v[.photocell], let emergency = v[.emergency] else { return nil }
        return BollardController.Sensors(atTop: top != 0, atBottom: bottom != 0, loopOccupied: loop != 0, photocellInterrupted: photo != 0,
                                         motorFault: v.isOn(.motorFault), emergencyInput: emergency != 0)
    }

    /// Raises or clears the device's `invalid_value` alarm and logs each new problem.
    private func judgeValidity(_ r: DeviceReading, id: Int, now: MonotonicInstant) {
        let name = map.names[id]
        let bad = r.online && !r.invalid.isEmpty
        guard bad != invalidActive[id] else { return }
        invalidActive[id] = bad
        if bad {
            logger.error("device sent values that cannot be used; they are ignored", metadata: ["device": "\(name)", "invalid": "\(r.invalid.joined(separator: "; "))"])
        }
        events.append(ControlEvent(at: now, source: name, kind: .alarm(.init(
            code: .invalidValue, active: bad, severity: .major,
            message: bad ? "\(name) sent values that cannot be used: \(r.invalid.joined(separator: "; "))" : "\(name) sends valid values again"))))
    }

    /// Signal I/O not polled within the sensor-age limit: its approaches are told offline
    /// (centre requests refused, grants not judged on an old acknowledgement).
    private func checkSignalAge(now: MonotonicInstant) {
        for a in approaches.indices {
            let id = map.approachDevice[a]
            guard online[id] == true, !signalStale[id], let r = readings[id] else { continue }
            if now - MonotonicInstant(nanoseconds: r.timestampNanos) > Self.signalMaxAge {
                signalStale[id] = true
                for x in map.approachesOfDevice[id] { approaches[x].handle(.ioOnline(false), at: now) }
                logger.warning("signal I/O not polled in time; its approaches count as offline", metadata: ["device": "\(map.names[id])"])
            }
        }
    }

    private func applyEdge(_ e: GPIOEdge, now: MonotonicInstant) {
        if let point = map.pointOfLine[e.line] { return applyWiredEdge(e, device: point.device, role: point.role) }
        guard let id = map.idOfLine[e.line] else { return }
        let name = map.names[id]
        let at = MonotonicInstant(nanoseconds: e.timestamp.nanoseconds)
        let groupsOfSensor = map.groupsOfSensor[id]
        if !groupsOfSensor.isEmpty, presence[id] != e.value {
            presence[id] = e.value
            if online[id] == nil {
                online[id] = true
                for g in groupsOfSensor { groups[g].handle(.sensorOnline(sensor: name, online: true), at: at) }
            }
            for g in groupsOfSensor { groups[g].handle(.presence(sensor: name, detected: e.value), at: at) }
        }
        // A startup level is state, not a vehicle passing: only real rising edges check in or out.
        guard !e.initial else { return }
        if e.value, let a = map.approachOfCheckin[id] { approaches[a].handle(.checkinEdge, at: at) }
        if e.value, let a = map.approachOfCheckout[id] { approaches[a].handle(.checkoutEdge, at: at) }
    }

    /// An edge of a device wired point by point. A GPIO bollard is online once every input
    /// it needs has reported its level; from then its whole set of inputs goes to the
    /// controller at every step (the lines are live, see `feedWiredBollards`), and each edge at
    /// once. A GPIO signal I/O's acknowledgements and degraded input go to its approaches.
    private func applyWiredEdge(_ e: GPIOEdge, device id: Int, role: PointRole) {
        let at = MonotonicInstant(nanoseconds: e.timestamp.nanoseconds)
        wiredInputs[id][role] = e.value ? 1 : 0
        let bollard = map.bollardOfDevice[id]
        let sensors = bollard != nil ? Self.sensors(wiredInputs[id]) : nil
        // Online once its lines have reported: every input a bollard needs, any line of a signal I/O.
        if online[id] != true, bollard == nil || sensors != nil {
            online[id] = true
            pendingEvents.append(.device(device: map.names[id], online: true, error: nil))
        }
        if let b = bollard, let s = sensors {
            bollardSensors[b] = s
            bollards[b].handle(.sensors(s), at: at)
        }
        for a in map.approachesOfDevice[id] {
            let n = map.approachNumber[a]
            if role == .ack(n) { approaches[a].handle(.acknowledged(e.value), at: at) }
            if role == .degraded { approaches[a].handle(.degraded(e.value), at: at) }
        }
    }

    /// GPIO bollards' inputs are live lines: their whole set goes to the controller at every
    /// step, as a poll begun now (what the start-of-motion and sensor-age rules need), and
    /// before a command to one (the loop may have slept since its last step).
    private func feedWiredBollards(now: MonotonicInstant) {
        for (b, id) in map.bollardDevice.enumerated() { feedWiredBollard(b, id: id, now: now) }
    }

    private func feedWiredBollard(_ b: Int, id: Int, now: MonotonicInstant) {
        guard map.pointLines[id] != nil, online[id] == true, let s = Self.sensors(wiredInputs[id]) else { return }
        bollardSensors[b] = s
        bollards[b].handle(.sensors(s), at: now)
    }

    // MARK: - Outputs

    private func writeOutputs(now: MonotonicInstant) {
        for (g, lamps) in map.groupLamps.enumerated() {
            let out = groups[g].outputs
            for lamp in lamps where online[lamp] == true && !manual[lamp] && map.groupOfLamp[lamp] == g {
                let level = lampOverrides[lamp]?.level ?? out.level
                // Written when the setpoint changes; the fade goes with it.
                if outputs.needsWrite(lamp, .setpoint, Double(level)) {
                    let fadeSeconds = lampOverrides[lamp] != nil ? 0 : out.fade.seconds
                    send(lamp, orderedOutputs([(.fade, fadeSeconds), (.setpoint, Double(level))], has: { map.has(lamp, $0) }), .control)
                }
            }
        }
        for (b, id) in map.bollardDevice.enumerated() {
            guard online[id] == true else {
                // Lost contact: the controller has dropped its outputs, but the coils out there
                // may still be on. Keep trying to switch them off until one write gets through.
                if let due = motionCutRetry[id], now >= due {
                    motionCutRetry[id] = now + Self.motionCutInterval
                    send(id, orderedOutputs([(.motorUp, 0), (.motorDown, 0), (.buzzer, 0)], has: { map.has(id, $0) }), .safety, track: false)
                }
                continue
            }
            motionCutRetry[id] = nil
            if manual[id] { continue }
            let o = bollards[b].outputs
            // Bollard coils are always safety writes: motor off must overtake every poll.
            if bollardNeedsWrite(id, o) {
                send(id, orderedOutputs([(.motorUp, o.motorUp ? 1 : 0), (.motorDown, o.motorDown ? 1 : 0), (.warning, o.warningLights ? 1 : 0),
                                         (.buzzer, o.buzzer ? 1 : 0), (.traffic, o.trafficGreen ? 1 : 0)], has: { map.has(id, $0) }), .safety)
            }
        }
        for (a, approach) in approaches.enumerated() {
            let id = map.approachDevice[a]
            guard online[id] == true, !manual[id] else { continue }
            let on = approach.outputs.request
            let role = PointRole.request(map.approachNumber[a])
            // On and off in one queue: off never overtakes an on queued before it.
            if outputs.needsWrite(id, role, on ? 1 : 0) { send(id, [(role, on ? 1 : 0)], .safety) }
        }
    }

    /// Whether a bollard's coils (those its profile or wiring has) differ from what was written;
    /// allocates nothing.
    private func bollardNeedsWrite(_ id: Int, _ o: BollardController.Outputs) -> Bool {
        func differs(_ role: PointRole, _ on: Bool) -> Bool { map.has(id, role) && outputs.needsWrite(id, role, on ? 1 : 0) }
        return differs(.motorUp, o.motorUp) || differs(.motorDown, o.motorDown) || differs(.warning, o.warningLights)
            || differs(.buzzer, o.buzzer) || differs(.traffic, o.trafficGreen)
    }

    /// Writes outputs by role (ordered by `orderedOutputs`); tracked unless `track` is false.
    private func send(_ device: Int, _ outputs: [(PointRole, Double)], _ priority: WritePriority, track: Bool = true) {
        if track { self.outputs.queued(device, outputs) }
        sendPoints(device, pointWrites(outputs), priority, track: track)
    }

    private func sendPoints(_ device: Int, _ points: [PointWrite], _ priority: WritePriority, track: Bool) {
        // After a halt nothing may follow the safe-state writes (a hung step that resumes included).
        if halted.withLock({ $0 }) { return }
        let inbox = self.inbox
        // A completion wakes the loop: a write in flight holds back the device's next one.
        field.write(device: device, points: points, priority: priority) { result in
            guard track else {
                if case .success = result { inbox.post(.writeDone(device: device), wake: true) }
                return
            }
            switch result {
            case .success: inbox.post(.writeDone(device: device), wake: true)
            // Replaced by a later write of the same points before it went out: that one reports.
            case .failure(let e) where e.isSuperseded: break
            case .failure(let e): inbox.post(.writeFailed(device: device, error: e), wake: true)
            }
        }
    }

    /// Stops the machines for good (shutdown, reload): waits up to `timeout` for a step in
    /// progress to finish; later steps do nothing and no further output is written. Returns
    /// false when a step is stuck (it can no longer write anyway). Callable from any thread.
    @discardableResult
    func halt(within timeout: Duration) -> Bool {
        halted.withLock { $0 = true }
        guard stepLock.lock(before: MonotonicInstant.now() + timeout) else {
            logger.critical("control loop step did not finish in time; outputs cut regardless", metadata: ["timeout": "\(timeout)"])
            return false
        }
        stepLock.unlock()
        return true
    }

    // MARK: - Safety state

    /// The safety state to build the next core from (a reload): every bollard's, group's and
    /// lamp's carry-over as of the last step. Call after `halt`. When a step is stuck (it
    /// cannot be read safely), the last state handed to the store (the people-protecting part)
    /// is returned instead.
    func exportSafetyState() -> SafetyState {
        guard stepLock.lock(before: MonotonicInstant.now() + .seconds(1)) else {
            logger.critical("control step stuck; the reload carries over only the last saved safety state")
            return lastSaved.withLock { $0 } ?? SafetyState()
        }
        defer { stepLock.unlock() }
        if let r = restoring { return r }
        guard let now = lastStepAt else { return SafetyState() }
        var s = SafetyState(takenAt: now)
        for (b, id) in map.bollardDevice.enumerated() {
            let c = bollards[b].carryOver(at: now)
            if c != BollardController.CarryOver() { s.bollards[map.names[id]] = c }
        }
        for (g, name) in map.groupNames.enumerated() {
            if let c = groups[g].carryOver(at: now) { s.groups[name] = c }
        }
        for (id, o) in lampOverrides.enumerated() {
            if let o, o.until > now { s.lamps[map.names[id]] = SafetyState.LampOverride(level: o.level, remaining: o.until - now) }
        }
        return s
    }

    /// Applies a carried-over state at the first step (rules: `SafetyState`).
    private func restore(_ s: SafetyState, now: MonotonicInstant) {
        let elapsed = s.takenAt.map { now > $0 ? now - $0 : .zero } ?? .zero
        func left(_ d: Duration?) -> Duration? { d.flatMap { $0 - elapsed > .zero ? $0 - elapsed : nil } }
        var carried: [String] = []
        for (b, id) in map.bollardDevice.enumerated() {
            let name = map.names[id]
            var c = s.bollards[name] ?? BollardController.CarryOver()
            c.holdRemaining = left(c.holdRemaining)
            if s.afterRestart {
                c.interrupted = true
                c.commandedUp = false
            }
            if s.unreadable != nil { c.emergencyLatched = true }
            guard c != BollardController.CarryOver() else { continue }
            bollards[b] = BollardController(config: config.bollards[name]!, restoring: c, at: now)
            if s.bollards[name] != nil { carried.append(name) }
        }
        for (g, name) in map.groupNames.enumerated() {
            guard var c = s.groups[name] else { continue }
            if let o = c.override, let r = o.remaining {
                c.override = left(r).map { (o.level, $0) }
            }
            c.boostRemaining = left(c.boostRemaining)
            groups[g] = LightingGroup(config: config.lighting[name]!, restoring: c, at: now)
            carried.append(name)
        }
        for (name, o) in s.lamps {
            guard let id = map.ids[name], map.groupOfLamp[id] != nil, let r = left(o.remaining) else { continue }
            lampOverrides[id] = LampOverride(level: o.level, until: now + r)
            carried.append(name)
        }
        let known = Set(carried)
        let dropped = (Array(s.bollards.keys) + Array(s.groups.keys) + Array(s.lamps.keys)).filter { !known.contains($0) }
        if !carried.isEmpty || !dropped.isEmpty {
            logger.notice("safety state carried over", metadata: ["carried": "\(carried.sorted())", "dropped": "\(dropped.sorted())"])
        }
        if let reason = s.unreadable {
            stateLost = reason
            events.append(ControlEvent(at: now, source: "gateway", kind: .alarm(.init(
                code: .safetyStateLost, active: true, severity: .critical,
                message: "safety state unreadable (\(reason)): every bollard started with its emergency latched; clear each with clear_emergency"))))
        }
    }

    /// Hands the people-protecting state to the store when a bollard's changed (allocates
    /// only then), with the replies waiting for it.
    private func saveSafetyStateIfChanged(now: MonotonicInstant) {
        var changed = false
        for b in bollards.indices where bollards[b].durableKey != savedKeys[b] {
            changed = true
            break
        }
        guard changed else {
            // Changed and changed back within the step (a latch and its clear): what was last
            // handed over stands, nothing waits for a write.
            if !awaitingSave.isEmpty {
                let replies = awaitingSave
                awaitingSave.removeAll()
                for r in replies { r() }
            }
            return
        }
        var s = SafetyState(takenAt: now)
        for (b, id) in map.bollardDevice.enumerated() {
            savedKeys[b] = bollards[b].durableKey
            if let d = bollards[b].carryOver(at: now).durable { s.bollards[map.names[id]] = d }
        }
        lastSaved.withLock { $0 = s }
        let replies = awaitingSave
        awaitingSave.removeAll()
        if let store = safetyStore { store.save(s, wall: wallClock(), then: replies) } else { for r in replies { r() } }
    }

    /// `safety_state_unsaved` follows the store; `safety_state_lost` clears once no bollard is latched.
    private func judgeSafetyStateAlarms(now: MonotonicInstant) {
        let failure = safetyStore?.failure
        if (failure != nil) != unsavedActive {
            unsavedActive = failure != nil
            events.append(ControlEvent(at: now, source: "gateway", kind: .alarm(.init(
                code: .safetyStateUnsaved, active: unsavedActive, severity: .critical,
                message: failure.map { "safety state not written (a restart would lose the latest latches and holds): \($0)" } ?? "safety state written again"))))
        }
        if stateLost != nil, !bollards.contains(where: \.emergencyLatched) {
            stateLost = nil
            events.append(ControlEvent(at: now, source: "gateway", kind: .alarm(.init(
                code: .safetyStateLost, active: false, severity: .critical, message: "every bollard's emergency latch has been cleared"))))
        }
    }

    /// Drops every output to its safe state (SIGTERM, reload): every configured bollard's
    /// motor coils and buzzer off, every approach's priority request off; lamps keep their
    /// level. Reads only the compiled config (never the loop's state), so it is safe from any
    /// thread; call `halt` first so no step writes after it. Returns once the writes are
    /// queued as safety writes (the buses send them before they stop).
    func safeOutputs() {
        for id in map.bollardDevice {
            field.write(device: id, points: pointWrites(orderedOutputs([(.motorUp, 0), (.motorDown, 0), (.buzzer, 0), (.traffic, 0)], has: { map.has(id, $0) })),
                        priority: .safety) { _ in }
        }
        for (a, id) in map.approachDevice.enumerated() {
            field.write(device: id, points: pointWrites([(.request(map.approachNumber[a]), 0)]), priority: .safety) { _ in }
        }
    }

    // MARK: - Telemetry and events

    /// Contract telemetry names for a device from its latest reading.
    func telemetryValues(_ id: Int) -> [String: ControlValue] {
        guard let r = readings[id] else { return [:] }
        var out: [String: ControlValue] = [:]
        let v = lastKnown[id]
        if monitors[id] != nil {
            for role in [PointRole.level, .setpoint, .powerW, .energyWh, .temperatureC] {
                if let x = v[role] { out[role.pointName] = .number((x * 10).rounded() / 10) }
            }
            let status: String
            if !r.online { status = "offline" }
            else if v.isOn(.lampFailure) { status = "lamp_failure" }
            else if v.isOn(.driverFault) { status = "driver_fault" }
            else if v.isOn(.overTemperature) { status = "over_temperature" }
            else { status = "ok" }
            out["status"] = .string(status)
        } else if let b = map.bollardOfDevice[id] {
            out["position"] = .string(bollards[b].position.rawValue)
            if let s = bollardSensors[b] {
                out["loop"] = .number(s.loopOccupied ? 1 : 0)
                out["photocell"] = .number(s.photocellInterrupted ? 1 : 0)
            }
        } else {
            for (role, x) in v.present where role.requestApproach != nil || role.ackApproach != nil || role == .presence || role == .lux || role == .degraded {
                out[role.pointName] = .number(x)
            }
        }
        if !r.online { out["status"] = .string("offline") }
        return out
    }

    private func collectTelemetry(now: MonotonicInstant) {
        guard !telemetryTouched.isEmpty else { return }
        for id in telemetryTouched {
            let values = telemetryValues(id)
            if telemetry.offer(id, values, now: now) {
                pendingEvents.append(.telemetry(device: map.names[id], values: values))
            }
        }
        telemetryTouched.removeAll(keepingCapacity: true)
    }

    /// Takes the groups' events and passes each presence change on to the group's neighbours
    /// (the light wave), before the outputs are written: a neighbour's lamps go up in the same
    /// step as the detecting group's (the loop may not step again for a while).
    private func lightWave(now: MonotonicInstant) {
        var presenceChanged: [(Int, Bool)] = []
        for g in groups.indices {
            let before = events.count
            groups[g].drainEvents(into: &events)
            for e in events[before...] { if case .presence(let detected) = e.kind { presenceChanged.append((g, detected)) } }
        }
        // The light wave: neighbours stay boosted while this group detects, and hold after it ends.
        for (g, detected) in presenceChanged {
            for n in map.neighbours[g] { groups[n].neighbourPresence(from: map.groupNames[g], detected: detected, at: now) }
        }
        if !presenceChanged.isEmpty { for g in groups.indices { groups[g].tick(at: now); groups[g].drainEvents(into: &events) } }
    }

    private func collectEvents(now: MonotonicInstant) {
        for id in monitors.indices where monitors[id] != nil { monitors[id]!.drainEvents(into: &events) }
        for b in bollards.indices { bollards[b].drainEvents(into: &events) }
        for a in approaches.indices { approaches[a].drainEvents(into: &events) }
        guard !events.isEmpty || !pendingEvents.isEmpty else { return }
        var out = pendingEvents
        pendingEvents.removeAll()
        for e in events {
            if case .alarm(let a) = e.kind {
                let key = "\(e.source)/\(a.code.rawValue)"
                if a.active { activeAlarms[key] = a } else { activeAlarms[key] = nil }
            }
            out.append(.control(e))
        }
        for e in out {
            if case .device(let d, let online, let error) = e {
                let key = "\(d)/comm_lost"
                if online { activeAlarms[key] = nil } else {
                    activeAlarms[key] = ControlEvent.Alarm(code: .init(rawValue: "comm_lost"), active: true, severity: .major, message: "\(d) does not answer: \(error ?? "no reply")")
                }
            }
        }
        events.removeAll(keepingCapacity: true)
        onEvents(out)
    }

    // MARK: - Commands

    /// Runs a typed command (arguments already within `CommandLimits`) against the machines.
    /// `ping` and `reload_config` are the gateway's, answered before the loop.
    func execute(_ c: AgentCommand, now: MonotonicInstant) -> ControlResponse {
        func outcome(_ o: ControlOutcome) -> ControlResponse {
            switch o {
            case .accepted: return .success()
            case .refused(let r): return r.response
            }
        }
        let t = c.target
        let group = map.groupNames.firstIndex(of: t)
        let device = map.ids[t]
        let lamp = device.flatMap { map.groupOfLamp[$0] != nil ? $0 : nil }
        let bollard = device.flatMap { id in map.bollardOfDevice[id].map { (id, $0) } }
        let approach = map.approachNames.firstIndex(of: t)
        // A GPIO bollard's lines are live: the command is judged on them as they are now.
        if let (id, b) = bollard { feedWiredBollard(b, id: id, now: now) }
        switch c.action {
        case .setLevel(let level, let duration):
            let until = now + duration
            if let g = group { return outcome(groups[g].setOverride(level: level, until: until, at: now)) }
            guard let id = lamp else { return .failure(.unknownTarget, "\(t) is not a luminaire or lighting group") }
            guard online[id] == true else { return .failure(.deviceOffline, "\(t) does not answer") }
            lampOverrides[id] = LampOverride(level: level, until: until)
            return .success()
        case .release:
            if let g = group { return outcome(groups[g].release(at: now)) }
            guard let id = lamp else { return .failure(.unknownTarget, "\(t) is not a luminaire or lighting group") }
            lampOverrides[id] = nil
            return .success()
        case .raise:
            guard let (id, b) = bollard else { return .failure(.unknownTarget, "\(t) is not a bollard") }
            if manual[id] {
                return .failure(.interlock, "bollard \(t) is under manual control (maintenance write); end maintenance mode first")
            }
            return outcome(bollards[b].raise(at: now))
        case .lower:
            guard let (_, b) = bollard else { return .failure(.unknownTarget, "\(t) is not a bollard") }
            return outcome(bollards[b].lower(at: now))
        case .emergencyLower:
            guard let (_, b) = bollard else { return .failure(.unknownTarget, "\(t) is not a bollard") }
            return outcome(bollards[b].emergencyLower(at: now))
        case .clearEmergency:
            guard let (_, b) = bollard else { return .failure(.unknownTarget, "\(t) is not a bollard") }
            return outcome(bollards[b].clearEmergency(at: now))
        case .holdDown(let duration):
            guard let (_, b) = bollard else { return .failure(.unknownTarget, "\(t) is not a bollard") }
            return outcome(bollards[b].holdDown(duration, at: now))
        case .priorityRequest(let vehicle, let line, let eta):
            guard let a = approach else { return .failure(.unknownTarget, "\(t) is not an approach") }
            return outcome(approaches[a].request(vehicle: vehicle, line: line, etaSeconds: eta, at: now))
        case .priorityCancel(let vehicle):
            guard let a = approach else { return .failure(.unknownTarget, "\(t) is not an approach") }
            return outcome(approaches[a].cancel(vehicle: vehicle, at: now))
        case .maintenance(let on):
            maintenance = on
            if !maintenance {
                // Automation resumes: everything it drives is written again at the next step.
                for id in manual.indices where manual[id] {
                    manual[id] = false
                    outputs.forget(id)
                }
            }
            return .success(.object(["maintenance": .bool(maintenance)]))
        case .ioWrite(let point, let value):
            return maintenanceWrite(target: t, point: point, value: value, now: now)
        case .debugHang(let duration):
            // Test hook for the watchdog: blocks this loop on purpose. Only with EDGE_AGENT_TEST_HOOKS=1.
            guard ProcessInfo.processInfo.environment["EDGE_AGENT_TEST_HOOKS"] == "1" else {
                return .failure(.unknownAction, "unknown action debug_hang")
            }
            logger.warning("test hook: control loop blocked on purpose", metadata: ["seconds": "\(duration.seconds)"])
            MonotonicInstant.sleep(for: duration)
            return .success()
        case .ping, .reloadConfig:
            return .failure(.unknownAction, "\(c.action.name) is answered by the gateway, not the control loop")
        }
    }

    /// A technician's write of one point (maintenance mode only). The device's automation is
    /// paused until maintenance mode ends, so the machines do not overwrite the value. On a
    /// bollard: `motor_up` is never written by hand, and a write that would leave both motor
    /// coils on is refused; taking a moving bollard over stops its motor first (off before on).
    private func maintenanceWrite(target t: String, point: String, value: Double, now: MonotonicInstant) -> ControlResponse {
        guard maintenance else { return .failure(.interlock, "io write needs maintenance mode (edgectl maintenance on)") }
        guard let id = map.ids[t] else { return .failure(.unknownTarget, "\(t) is not a device") }
        guard online[id] == true else { return .failure(.deviceOffline, "\(t) does not answer") }
        guard map.profiles[id]?.points[point] != nil else {
            return .failure(.unknownTarget, "\(t) has no point \(point)")
        }
        var writes = [PointWrite(point, value)]
        if map.bollardOfDevice[id] != nil {
            if point == PointRole.motorUp.pointName && value != 0 {
                return .failure(.interlock, "motor_up is driven only by the bollard controller")
            }
            if point == PointRole.motorDown.pointName && value != 0 {
                // Whatever the automation last wrote, motor_up goes off first in the same write.
                writes = pointWrites(orderedOutputs([(.motorUp, 0), (.motorDown, value)], has: { map.has(id, $0) }))
            }
            if !manual[id] {
                // Taking over: the automation's motion stops (off first), then the technician's point.
                var takeover: [(PointRole, Double)] = [(.motorUp, 0), (.motorDown, 0), (.buzzer, 0)]
                takeover.removeAll { $0.0.pointName == point }
                writes = pointWrites(orderedOutputs(takeover, has: { map.has(id, $0) })) + writes.filter { w in !takeover.contains { $0.0.pointName == w.point } }
            }
        }
        if !manual[id] {
            manual[id] = true
            logger.notice("maintenance write: automation of the device paused until maintenance ends", metadata: ["device": "\(t)"])
        }
        sendPoints(id, writes, .safety, track: false)
        outputs.forget(id)
        return .success()
    }

    // MARK: - Status

    func snapshot(now: MonotonicInstant) -> StatusSnapshot {
        var devices: [String: StatusSnapshot.Device] = [:]
        for (id, name) in map.names.enumerated() {
            var d = StatusSnapshot.Device(online: online[id], kind: "gpio")
            switch config.devices[name]!.attachment {
            case .modbus(let profile, let bus, let unit):
                d.profile = profile
                d.bus = bus
                d.unit = Int(unit)
                d.kind = map.profiles[id]?.kind.rawValue ?? ""
            case .gpio(let line):
                d.line = line
                d.value = presence[id]
            case .gpioPoints(let kind, let lines):
                d.kind = kind.rawValue
                d.line = lines.map { "\($0.key.pointName)=\($0.value)" }.sorted().joined(separator: ",")
                if !wiredInputs[id].isEmpty {
                    var values: [String: Double] = [:]
                    for (role, x) in wiredInputs[id].present { values[role.pointName] = x }
                    d.values = values
                }
            }
            if let r = readings[id] {
                var values: [String: Double] = [:]
                for (role, x) in lastKnown[id].present { values[role.pointName] = x }
                d.values = values
                d.error = r.error
                if !r.invalid.isEmpty { d.invalid = r.invalid }
            }
            if manual[id] { d.manual = true }
            devices[name] = d
        }
        var lighting: [String: StatusSnapshot.Group] = [:]
        for (g, name) in map.groupNames.enumerated() {
            let group = groups[g]
            lighting[name] = .init(level: group.outputs.level, schedule: group.schedule, boosting: group.boosting, override: group.activeOverride?.level)
        }
        var bollardStates: [String: StatusSnapshot.Bollard] = [:]
        for (b, id) in map.bollardDevice.enumerated() {
            let c = bollards[b]
            var o = StatusSnapshot.Bollard(position: c.position.rawValue, motorUp: c.outputs.motorUp, motorDown: c.outputs.motorDown,
                                           warning: c.outputs.warningLights, traffic: c.outputs.trafficGreen ? "green" : "red")
            if let s = bollardSensors[b] {
                o.loop = s.loopOccupied
                o.photocell = s.photocellInterrupted
                o.emergency = s.emergencyInput
            }
            if let f = c.fault { o.fault = "\(f)" }
            if let p = c.lastPollAt { o.sensorAgeMs = ((now - p).seconds * 1000).rounded() }
            if c.emergencyLatched { o.emergencyLatched = true }
            if let h = c.holdUntil, h > now { o.holdS = ((h - now).seconds * 10).rounded() / 10 }
            bollardStates[map.names[id]] = o
        }
        var approachStates: [String: StatusSnapshot.Approach] = [:]
        for (a, name) in map.approachNames.enumerated() {
            approachStates[name] = .init(request: approaches[a].outputs.request, vehicles: approaches[a].checkedIn)
        }
        var alarms: [StatusSnapshot.Alarm] = []
        for key in activeAlarms.keys.sorted() {
            let a = activeAlarms[key]!
            let source = String(key.split(separator: "/").first ?? "")
            alarms.append(.init(device: source, code: a.code.rawValue, severity: a.severity.rawValue, message: a.message))
        }
        return StatusSnapshot(gateway: config.gateway.id, uptimeS: ((now - startedAt).seconds).rounded(), devices: devices, lighting: lighting,
                              bollards: bollardStates, approaches: approachStates, alarms: alarms, maintenance: maintenance)
    }
}

/// What the loop hands to the uplink and the log.
enum AgentEvent: Sendable {
    case control(ControlEvent)
    case device(device: String, online: Bool, error: String?)
    case telemetry(device: String, values: [String: ControlValue])
}
