import Drivers
import Foundation
import Logging
import Synchronization

/// Everything the control loop thread owns: the state machines (lighting groups, lamp
/// monitors, bollards, approaches), the latest device readings, and what was last written to
/// each output. Only the loop thread touches it; other threads talk to it through
/// `ControlInbox` and receive results through callbacks.
///
/// Each `step` drains the inbox, feeds readings, edges and commands to the machines, ticks
/// them, writes outputs that changed (or that a device reports differently, e.g. after it
/// rebooted), and hands the machines' events to the uplink.
final class ControlCore: @unchecked Sendable {
    struct LampOverride { var level: Int; var until: MonotonicInstant }

    let config: AgentConfig
    private let logger: Logger
    private let field: FieldIO
    private let inbox: ControlInbox
    private let onEvents: @Sendable ([AgentEvent]) -> Void

    // Machines, in config order (arrays: no hashing on the hot path).
    private(set) var groups: [String: LightingGroup] = [:]
    private let groupOrder: [String]
    private var schedules: [String: LightingSchedule] = [:]
    private(set) var monitors: [String: LampMonitor] = [:]
    private(set) var bollards: [String: BollardController] = [:]
    private(set) var approaches: [String: PriorityApproach] = [:]

    // Wiring.
    private let groupsOfSensor: [String: [String]]
    private let groupOfLamp: [String: String]
    private let approachesOfDevice: [String: [String]]
    private let approachOfCheckin: [String: String]
    private let approachOfCheckout: [String: String]
    private let neighboursOf: [String: [String]]

    // State.
    private(set) var readings: [String: DeviceReading] = [:]
    private var deviceOnline: [String: Bool] = [:]
    private var presenceState: [String: Bool] = [:]
    private var bollardSensors: [String: BollardController.Sensors] = [:]
    private var lampOverrides: [String: LampOverride] = [:]
    /// Output last written (or queued) per device; nil = unknown, write again.
    private var lampWritten: [String: Int] = [:]
    private var coilsWritten: [String: BollardController.Outputs] = [:]
    private var requestWritten: [String: Bool] = [:]   // approach name -> request written
    private var pendingWrites: Set<String> = []
    /// Bollards whose I/O went silent: motor-off is retried (best effort) at these instants
    /// until one write is confirmed, since the motor may still be on out there.
    private var motionCutRetry: [String: MonotonicInstant] = [:]
    private static let motionCutInterval = Duration.milliseconds(500)
    private(set) var activeAlarms: [String: ControlEvent.Alarm] = [:]   // "source/code"
    private var nextScheduleUpdate = MonotonicInstant(nanoseconds: 0)
    private var inputs: [ControlInput] = []
    private var events: [ControlEvent] = []
    private(set) var maintenance = false
    let startedAt = MonotonicInstant.now()
    /// Devices whose readings must be acted on at once (bollards, presence sensors, signal I/O
    /// of approaches): their readings wake the loop. Other readings (luminaires, meters) are
    /// taken at the next periodic tick, at most one period later.
    let wakingDevices: Set<String>
    /// Set once by `halt`: from then on `step` does nothing and no output is written.
    private let halted = Mutex(false)
    /// Held for the whole of a step, so `halt` can wait for one in progress to finish.
    private let stepLock = NSLock()

    init(config: AgentConfig, field: FieldIO, inbox: ControlInbox, logger: Logger, onEvents: @escaping @Sendable ([AgentEvent]) -> Void) {
        self.config = config
        self.field = field
        self.inbox = inbox
        self.logger = logger
        self.onEvents = onEvents
        let tz = TimeZone(identifier: config.gateway.timezone) ?? TimeZone(identifier: "UTC")!
        var groupsOfSensor: [String: [String]] = [:]
        var groupOfLamp: [String: String] = [:]
        var neighboursOf: [String: [String]] = [:]
        for (name, g) in config.lighting.sorted(by: { $0.key < $1.key }) {
            groups[name] = LightingGroup(config: g)
            schedules[name] = LightingSchedule(config: g, latitude: config.gateway.latitude, longitude: config.gateway.longitude, timeZone: tz)
            for s in g.presence { groupsOfSensor[s, default: []].append(name) }
            for l in g.lamps {
                if groupOfLamp[l] == nil { groupOfLamp[l] = name }
                monitors[l] = LampMonitor(lamp: l, config: g)
            }
            neighboursOf[name] = g.neighbours
        }
        groupOrder = config.lighting.keys.sorted()
        for (name, b) in config.bollards { bollards[name] = BollardController(config: b) }
        var approachesOfDevice: [String: [String]] = [:]
        var approachOfCheckin: [String: String] = [:]
        var approachOfCheckout: [String: String] = [:]
        for (name, a) in config.priority.sorted(by: { $0.key < $1.key }) {
            approaches[name] = PriorityApproach(config: a)
            approachesOfDevice[a.device, default: []].append(name)
            if let c = a.checkin { approachOfCheckin[c] = name }
            if let c = a.checkout { approachOfCheckout[c] = name }
        }
        self.groupsOfSensor = groupsOfSensor
        wakingDevices = Set(groupsOfSensor.keys).union(config.bollards.keys).union(approachesOfDevice.keys)
        self.groupOfLamp = groupOfLamp
        self.neighboursOf = neighboursOf
        self.approachesOfDevice = approachesOfDevice
        self.approachOfCheckin = approachOfCheckin
        self.approachOfCheckout = approachOfCheckout
        inputs.reserveCapacity(inbox.capacity)
        events.reserveCapacity(256)
    }

    /// Earliest instant at which time alone changes something (the loop also runs at its period).
    var nextDeadline: MonotonicInstant? {
        var d: MonotonicInstant? = nextScheduleUpdate
        func take(_ x: MonotonicInstant?) { if let x, d == nil || x < d! { d = x } }
        for g in groups.values { take(g.nextDeadline) }
        for b in bollards.values { take(b.nextDeadline) }
        for a in approaches.values { take(a.nextDeadline) }
        for m in monitors.values { take(m.nextDeadline) }
        return d
    }

    // MARK: - The loop step

    func step(now: MonotonicInstant) {
        stepLock.lock()
        defer { stepLock.unlock() }
        if halted.withLock({ $0 }) { return }
        inbox.drain(into: &inputs)
        for input in inputs { apply(input, now: now) }
        inputs.removeAll(keepingCapacity: true)

        if now >= nextScheduleUpdate {
            let wall = Date()
            let trusted = ClockTrust.shared.isSynchronised   // an atomic load, no I/O
            for name in groupOrder {
                if let s = schedules[name] { groups[name]!.setSchedule(level: s.level(at: wall, clockTrusted: trusted), at: now) }
            }
            nextScheduleUpdate = now + .seconds(1)
        }
        for name in groupOrder { groups[name]!.tick(at: now) }
        for key in lampOverrides.keys where lampOverrides[key]!.until <= now { lampOverrides[key] = nil }
        monitors.mutateValues { $0.tick(at: now) }
        bollards.mutateValues { $0.tick(at: now) }
        approaches.mutateValues { $0.tick(at: now) }

        writeOutputs(now: now)
        collectTelemetry(now: now)
        collectEvents(now: now)
    }

    private func apply(_ input: ControlInput, now: MonotonicInstant) {
        switch input {
        case .reading(let r): applyReading(r, now: now)
        case .edge(let e): applyEdge(e, now: now)
        case .command(let c, let reply): reply(execute(c, now: now))
        case .writeFailed(let device, let error):
            pendingWrites.remove(device)
            lampWritten[device] = nil
            coilsWritten[device] = nil
            for a in approachesOfDevice[device] ?? [] { requestWritten[a] = nil }
            logger.warning("write failed; will retry", metadata: ["device": "\(device)", "error": "\(error.message)"])
        case .writeDone(let device):
            pendingWrites.remove(device)
            if deviceOnline[device] != true, motionCutRetry.removeValue(forKey: device) != nil {
                logger.notice("bollard motor cut confirmed while its I/O was offline", metadata: ["device": "\(device)"])
            }
        case .snapshot(let reply): reply(snapshot(now: now))
        }
    }

    private func applyReading(_ r: DeviceReading, now: MonotonicInstant) {
        let device = r.device
        let wasOnline = deviceOnline[device]
        deviceOnline[device] = r.online
        readings[device] = r
        telemetryTouched.append(device)
        if wasOnline != r.online {
            pendingEvents.append(.device(device: device, online: r.online, error: r.error))
        }
        let at = MonotonicInstant(nanoseconds: r.timestampNanos)
        // Presence sensors.
        if let groupNames = groupsOfSensor[device] {
            if wasOnline != r.online {
                for g in groupNames { groups[g]!.handle(.sensorOnline(sensor: device, online: r.online), at: at) }
            }
            if r.online, let p = r.values["presence"] {
                let detected = p != 0
                if presenceState[device] != detected {
                    presenceState[device] = detected
                    for g in groupNames { groups[g]!.handle(.presence(sensor: device, detected: detected), at: at) }
                }
            }
        }
        // Luminaires.
        if monitors[device] != nil {
            if r.online {
                let level = Int(r.values["level"] ?? 0)
                let status = LampMonitor.StatusBits(rawValue: UInt16(r.values["status"] ?? 0))
                monitors[device]!.handle(.reading(actualLevel: level, powerW: r.values["power_w"] ?? 0, status: status), at: at)
                // A device that rebooted or was changed by hand gets our setpoint again.
                if let sp = r.values["setpoint"], let written = lampWritten[device], Int(sp) != written, !pendingWrites.contains(device) {
                    lampWritten[device] = nil
                }
            } else {
                monitors[device]!.handle(.offline, at: at)
                lampWritten[device] = nil
            }
        }
        // Bollards.
        if bollards[device] != nil {
            // Coming online is told by the poll itself (`.sensors` means online): a bare
            // `.ioOnline(true)` would have the controller judge its end switches from the
            // sensors it knew before (none at start), raising a false `position_unknown`.
            if wasOnline != r.online, !r.online { bollards[device]!.handle(.ioOnline(false), at: at) }
            if r.online {
                let v = r.values
                let s = BollardController.Sensors(
                    atTop: (v["at_top"] ?? 0) != 0, atBottom: (v["at_bottom"] ?? 0) != 0,
                    loopOccupied: (v["loop"] ?? 0) != 0, photocellInterrupted: (v["photocell"] ?? 0) != 0,
                    motorFault: (v["motor_fault"] ?? 0) != 0, emergencyInput: (v["emergency"] ?? 0) != 0)
                // Every poll, changed or not: a raise starts its motion only on a poll begun
                // after its pre-warning (BollardController).
                bollardSensors[device] = s
                bollards[device]!.handle(.sensors(s), at: at)
                if let written = coilsWritten[device], !pendingWrites.contains(device),
                   (v["motor_up"] ?? 0) != (written.motorUp ? 1 : 0) || (v["motor_down"] ?? 0) != (written.motorDown ? 1 : 0)
                    || (v["warning"] ?? 0) != (written.warningLights ? 1 : 0) {
                    coilsWritten[device] = nil
                }
            } else {
                coilsWritten[device] = nil
                if motionCutRetry[device] == nil { motionCutRetry[device] = at }
                bollardSensors[device] = nil
            }
        }
        // Signal I/O of approaches.
        for a in approachesOfDevice[device] ?? [] {
            let n = config.priority[a]!.approach
            if wasOnline != r.online { approaches[a]!.handle(.ioOnline(r.online), at: at) }
            if r.online {
                approaches[a]!.handle(.acknowledged((r.values["ack_\(n)"] ?? 0) != 0), at: at)
                approaches[a]!.handle(.degraded((r.values["degraded"] ?? 0) != 0), at: at)
                if let written = requestWritten[a], !pendingWrites.contains(device), (r.values["request_\(n)"] ?? 0) != (written ? 1 : 0) {
                    requestWritten[a] = nil
                }
            } else {
                requestWritten[a] = nil
            }
        }
    }

    private func applyEdge(_ e: GPIOEdge, now: MonotonicInstant) {
        guard let device = field.deviceOfLine[e.line] else { return }
        let at = MonotonicInstant(nanoseconds: e.timestamp.nanoseconds)
        if let groupNames = groupsOfSensor[device], presenceState[device] != e.value {
            presenceState[device] = e.value
            if deviceOnline[device] == nil {
                deviceOnline[device] = true
                for g in groupNames { groups[g]!.handle(.sensorOnline(sensor: device, online: true), at: at) }
            }
            for g in groupNames { groups[g]!.handle(.presence(sensor: device, detected: e.value), at: at) }
        }
        // A startup level is state, not a vehicle passing: only real rising edges check in or out.
        guard !e.initial else { return }
        if e.value, let a = approachOfCheckin[device] { approaches[a]!.handle(.checkinEdge, at: at) }
        if e.value, let a = approachOfCheckout[device] { approaches[a]!.handle(.checkoutEdge, at: at) }
    }

    // MARK: - Outputs

    private func writeOutputs(now: MonotonicInstant) {
        for (lamp, group) in groupOfLamp {
            guard deviceOnline[lamp] == true else { continue }
            let g = groups[group]!.outputs
            let level = lampOverrides[lamp]?.level ?? g.level
            if lampWritten[lamp] != level, !pendingWrites.contains(lamp) {
                let rising = level > (lampWritten[lamp] ?? Int(readings[lamp]?.values["level"] ?? 0))
                let fade = lampOverrides[lamp] != nil ? Duration.zero : g.fade
                let fadeSeconds = lampOverrides[lamp] != nil ? 0 : fade.seconds
                _ = rising
                lampWritten[lamp] = level
                send(lamp, [PointWrite("fade", fadeSeconds), PointWrite("setpoint", Double(level))], .control)
            }
        }
        for (name, b) in bollards {
            guard deviceOnline[name] == true else {
                // Lost contact: the controller has dropped its outputs, but the coils out there
                // may still be on. Keep trying to switch them off until one write gets through.
                if let due = motionCutRetry[name], now >= due {
                    motionCutRetry[name] = now + Self.motionCutInterval
                    send(name, [PointWrite("motor_up", 0), PointWrite("motor_down", 0), PointWrite("buzzer", 0)], .safety, track: false)
                }
                continue
            }
            motionCutRetry[name] = nil
            let o = b.outputs
            if coilsWritten[name] != o {
                let previous = coilsWritten[name]
                coilsWritten[name] = o
                // Bollard coils are always safety writes: motor off must overtake every poll.
                _ = previous
                send(name, [PointWrite("motor_up", o.motorUp ? 1 : 0), PointWrite("motor_down", o.motorDown ? 1 : 0),
                            PointWrite("warning", o.warningLights ? 1 : 0), PointWrite("buzzer", o.buzzer ? 1 : 0)], .safety)
            }
        }
        for (name, a) in approaches {
            let cfg = config.priority[name]!
            guard deviceOnline[cfg.device] == true else { continue }
            let on = a.outputs.request
            if requestWritten[name] != on {
                requestWritten[name] = on
                send(cfg.device, [PointWrite("request_\(cfg.approach)", on ? 1 : 0)], on ? .control : .safety, track: false)
            }
        }
    }

    private func send(_ device: String, _ points: [PointWrite], _ priority: WritePriority, track: Bool = true) {
        // After a halt nothing may follow the safe-state writes (a hung step that resumes included).
        if halted.withLock({ $0 }) { return }
        if track { pendingWrites.insert(device) }
        let inbox = self.inbox
        field.write(device: device, points: points, priority: priority) { result in
            switch result {
            case .success: inbox.post(.writeDone(device: device))
            case .failure(let e): inbox.post(.writeFailed(device: device, error: e))
            }
        }
    }

    /// Stops the machines for good (shutdown, reload): waits up to `timeout` for a step in
    /// progress to finish; later steps do nothing and no further output is written. Returns
    /// false when a step is stuck (it can no longer write anyway). Callable from any thread.
    @discardableResult
    func halt(within timeout: Duration) -> Bool {
        halted.withLock { $0 = true }
        guard stepLock.lock(before: Date().addingTimeInterval(timeout.seconds)) else {
            logger.critical("control loop step did not finish in time; outputs cut regardless", metadata: ["timeout": "\(timeout)"])
            return false
        }
        stepLock.unlock()
        return true
    }

    /// Drops every output to its safe state (SIGTERM, reload): every configured bollard's
    /// motor coils and buzzer off, every approach's priority request off; lamps keep their
    /// level. Reads only the config (never the loop's state), so it is safe from any thread;
    /// call `halt` first so no step writes after it. Returns once the writes are queued as
    /// safety writes (the buses send them before they stop).
    func safeOutputs() {
        for name in config.bollards.keys.sorted() {
            field.write(device: name, points: [PointWrite("motor_up", 0), PointWrite("motor_down", 0), PointWrite("buzzer", 0)], priority: .safety) { _ in }
        }
        for (_, cfg) in config.priority.sorted(by: { $0.key < $1.key }) {
            field.write(device: cfg.device, points: [PointWrite("request_\(cfg.approach)", 0)], priority: .safety) { _ in }
        }
    }

    // MARK: - Events

    private var pendingEvents: [AgentEvent] = []
    private var telemetryTouched: [String] = []
    private var lastTelemetry: [String: (at: MonotonicInstant, values: [String: ControlValue])] = [:]

    /// Contract telemetry names for a device from its latest reading.
    func telemetryValues(_ device: String) -> [String: ControlValue] {
        guard let r = readings[device] else { return [:] }
        var v: [String: ControlValue] = [:]
        if monitors[device] != nil {
            for k in ["level", "setpoint", "power_w", "energy_wh", "temperature_c"] { if let x = r.values[k] { v[k] = .number((x * 10).rounded() / 10) } }
            let status: String
            if !r.online { status = "offline" }
            else if (r.values["lamp_failure"] ?? 0) != 0 { status = "lamp_failure" }
            else if (r.values["driver_fault"] ?? 0) != 0 { status = "driver_fault" }
            else if (r.values["over_temperature"] ?? 0) != 0 { status = "over_temperature" }
            else { status = "ok" }
            v["status"] = .string(status)
        } else if let b = bollards[device] {
            v["position"] = .string(b.position.rawValue)
            if let s = bollardSensors[device] {
                v["loop"] = .number(s.loopOccupied ? 1 : 0)
                v["photocell"] = .number(s.photocellInterrupted ? 1 : 0)
            }
        } else {
            for (k, x) in r.values where k.hasPrefix("request_") || k.hasPrefix("ack_") || k == "presence" || k == "lux" || k == "degraded" {
                v[k] = .number(x)
            }
        }
        if !r.online { v["status"] = .string("offline") }
        return v
    }

    private static func significant(_ a: [String: ControlValue], _ b: [String: ControlValue]) -> Bool {
        if a.count != b.count { return true }
        for (k, x) in a {
            guard let y = b[k] else { return true }
            if let p = x.number, let q = y.number {
                if k == "energy_wh" { continue }   // a counter: sent at the interval
                if abs(p - q) > max(1.0, 0.02 * abs(q)) { return true }
            } else if x != y { return true }
        }
        return false
    }

    private func collectTelemetry(now: MonotonicInstant) {
        guard !telemetryTouched.isEmpty else { return }
        let interval = config.uplink.telemetryInterval
        for device in telemetryTouched {
            let values = telemetryValues(device)
            if values.isEmpty { continue }
            if let last = lastTelemetry[device] {
                let age = now - last.at
                guard age >= interval || (age >= .seconds(1) && ControlCore.significant(values, last.values)) else { continue }
            }
            lastTelemetry[device] = (now, values)
            pendingEvents.append(.telemetry(device: device, values: values))
        }
        telemetryTouched.removeAll(keepingCapacity: true)
    }

    private func collectEvents(now: MonotonicInstant) {
        var presenceChanged: [(String, Bool)] = []
        for name in groupOrder {
            let before = events.count
            groups[name]!.drainEvents(into: &events)
            for e in events[before...] { if case .presence(let detected) = e.kind { presenceChanged.append((name, detected)) } }
        }
        // The light wave: neighbours stay boosted while this group detects, and hold after it ends.
        for (name, detected) in presenceChanged {
            for n in neighboursOf[name] ?? [] where groups[n] != nil { groups[n]!.neighbourPresence(from: name, detected: detected, at: now) }
        }
        if !presenceChanged.isEmpty { for name in groupOrder { groups[name]!.tick(at: now); groups[name]!.drainEvents(into: &events) } }
        monitors.mutateValues { $0.drainEvents(into: &events) }
        bollards.mutateValues { $0.drainEvents(into: &events) }
        approaches.mutateValues { $0.drainEvents(into: &events) }
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

    func execute(_ c: AgentCommand, now: MonotonicInstant) -> ControlResponse {
        func outcome(_ o: ControlOutcome) -> ControlResponse {
            switch o {
            case .accepted: return .success()
            case .refused(let r): return .failure(r.code.rawValue, r.message)
            }
        }
        func number(_ key: String) -> Double? { c.args[key]?.number }
        let t = c.target
        switch c.action {
        case "set_level", "release":
            if c.action == "set_level" {
                guard let level = number("level"), level >= 0, level <= 100, level.rounded() == level else {
                    return .failure("out_of_range", "level must be a whole number 0-100")
                }
                let seconds = number("duration_s") ?? 3600
                guard seconds > 0, seconds <= 7 * 86400 else { return .failure("out_of_range", "duration_s must be 1 s to 7 days") }
                let until = now + .milliseconds(Int64(seconds * 1000))
                if groups[t] != nil { return outcome(groups[t]!.setOverride(level: Int(level), until: until, at: now)) }
                if groupOfLamp[t] != nil {
                    guard deviceOnline[t] == true else { return .failure("device_offline", "\(t) does not answer") }
                    lampOverrides[t] = LampOverride(level: Int(level), until: until)
                    return .success()
                }
            } else {
                if groups[t] != nil { return outcome(groups[t]!.release(at: now)) }
                if groupOfLamp[t] != nil { lampOverrides[t] = nil; return .success() }
            }
            return .failure("unknown_target", "\(t) is not a luminaire or lighting group")
        case "raise", "lower", "emergency_lower", "clear_emergency", "hold_down":
            guard bollards[t] != nil else { return .failure("unknown_target", "\(t) is not a bollard") }
            switch c.action {
            case "raise": return outcome(bollards[t]!.raise(at: now))
            case "lower": return outcome(bollards[t]!.lower(at: now))
            case "emergency_lower": return outcome(bollards[t]!.emergencyLower(at: now))
            case "clear_emergency": return outcome(bollards[t]!.clearEmergency(at: now))
            default:
                guard let s = number("duration_s"), s > 0, s <= 86400 else { return .failure("out_of_range", "duration_s must be 1 s to 24 h") }
                return outcome(bollards[t]!.holdDown(.milliseconds(Int64(s * 1000)), at: now))
            }
        case "priority_request", "priority_cancel":
            guard approaches[t] != nil else { return .failure("unknown_target", "\(t) is not an approach") }
            guard let vehicle = c.args["vehicle"]?.string, !vehicle.isEmpty, vehicle.count <= 64 else {
                return .failure("malformed", "vehicle (a string) is required")
            }
            if c.action == "priority_cancel" { return outcome(approaches[t]!.cancel(vehicle: vehicle, at: now)) }
            var eta: Int?
            if let e = number("eta_s") {
                guard e >= 0, e <= 600 else { return .failure("out_of_range", "eta_s must be 0-600") }
                eta = Int(e)
            }
            let line = c.args["line"]?.string
            return outcome(approaches[t]!.request(vehicle: vehicle, line: (line?.isEmpty ?? true) ? nil : line, etaSeconds: eta, at: now))
        case "maintenance":
            maintenance = c.args["on"]?.bool ?? false
            return .success(.object(["maintenance": .bool(maintenance)]))
        case "io_write":
            guard maintenance else { return .failure("interlock", "io write needs maintenance mode (edgectl maintenance on)") }
            guard config.devices[t] != nil else { return .failure("unknown_target", "\(t) is not a device") }
            guard deviceOnline[t] == true else { return .failure("device_offline", "\(t) does not answer") }
            guard let point = c.args["point"]?.string, let value = number("value") else { return .failure("malformed", "point and value are required") }
            if bollards[t] != nil && point == "motor_up" && value != 0 {
                return .failure("interlock", "motor_up is driven only by the bollard controller")
            }
            send(t, [PointWrite(point, value)], .control, track: false)
            return .success()
        case "debug_hang":
            // Test hook for the watchdog: blocks this loop on purpose. Only with EDGE_AGENT_TEST_HOOKS=1.
            guard ProcessInfo.processInfo.environment["EDGE_AGENT_TEST_HOOKS"] == "1" else {
                return .failure("unknown_action", "unknown action debug_hang")
            }
            let seconds = min(max(number("duration_s") ?? 30, 0), 600)
            logger.warning("test hook: control loop blocked on purpose", metadata: ["seconds": "\(seconds)"])
            Thread.sleep(forTimeInterval: seconds)
            return .success()
        default:
            return .failure("unknown_action", "unknown action \(c.action)")
        }
    }

    // MARK: - Status

    func snapshot(now: MonotonicInstant) -> ControlValue {
        var devices: [String: ControlValue] = [:]
        for (name, d) in config.devices {
            var o: [String: ControlValue] = [:]
            let online = deviceOnline[name]
            o["online"] = online.map { .bool($0) } ?? .null
            switch d.attachment {
            case .modbus(let profile, let bus, let unit):
                o["profile"] = .string(profile)
                o["bus"] = .string(bus)
                o["unit"] = .number(Double(unit))
                o["kind"] = .string(config.profiles[profile]?.kind.rawValue ?? "")
            case .gpio(let line):
                o["line"] = .string(line)
                o["kind"] = .string("gpio")
                if let v = presenceState[name] { o["value"] = .bool(v) }
            }
            if let r = readings[name] {
                o["values"] = .object(r.values.mapValues { .number($0) })
                if let e = r.error { o["error"] = .string(e) }
            }
            devices[name] = .object(o)
        }
        var lighting: [String: ControlValue] = [:]
        for (name, g) in groups {
            var o: [String: ControlValue] = ["level": .number(Double(g.outputs.level)), "schedule": .number(Double(g.schedule)), "boosting": .bool(g.boosting)]
            if let ov = g.activeOverride { o["override"] = .number(Double(ov.level)) }
            lighting[name] = .object(o)
        }
        var bollardStates: [String: ControlValue] = [:]
        for (name, b) in bollards {
            var o: [String: ControlValue] = ["position": .string(b.position.rawValue),
                                             "motor_up": .bool(b.outputs.motorUp), "motor_down": .bool(b.outputs.motorDown),
                                             "warning": .bool(b.outputs.warningLights), "traffic": .string(b.outputs.trafficGreen ? "green" : "red")]
            if let s = bollardSensors[name] {
                o["loop"] = .bool(s.loopOccupied)
                o["photocell"] = .bool(s.photocellInterrupted)
                o["emergency"] = .bool(s.emergencyInput)
            }
            if let f = b.fault { o["fault"] = .string("\(f)") }
            bollardStates[name] = .object(o)
        }
        var approachStates: [String: ControlValue] = [:]
        for (name, a) in approaches {
            approachStates[name] = .object(["request": .bool(a.outputs.request), "vehicles": .number(Double(a.checkedIn))])
        }
        var alarms: [ControlValue] = []
        for key in activeAlarms.keys.sorted() {
            let a = activeAlarms[key]!
            let source = String(key.split(separator: "/").first ?? "")
            alarms.append(.object(["device": .string(source), "code": .string(a.code.rawValue), "severity": .string(a.severity.rawValue), "message": .string(a.message)]))
        }
        return .object([
            "gateway": .string(config.gateway.id),
            "uptime_s": .number(((now - startedAt).seconds).rounded()),
            "devices": .object(devices),
            "lighting": .object(lighting),
            "bollards": .object(bollardStates),
            "approaches": .object(approachStates),
            "alarms": .array(alarms),
            "maintenance": .bool(maintenance),
        ])
    }
}

/// What the loop hands to the uplink and the log.
enum AgentEvent: Sendable {
    case control(ControlEvent)
    case device(device: String, online: Bool, error: String?)
    case telemetry(device: String, values: [String: ControlValue])
}
