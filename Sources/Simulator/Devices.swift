import EdgeRuntime
import Protocols

/// Shared state the devices see while stepping or handling a write: simulated time and the
/// safety-violation record. Guarded by the simulator's lock.
final class SimWorld {
    /// Simulated time since start.
    var now: Duration = .zero
    var violationCount = 0
    var violations: [String] = []
    var writes = 0
    static let keptViolations = 200

    func recordViolation(_ device: String, _ text: String) {
        violationCount += 1
        let line = "t=\(Self.seconds(now))s \(device): \(text)"
        if violations.count < Self.keptViolations { violations.append(line) }
    }

    static func seconds(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        let frac = String(ms % 1000)
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }
}

/// A control-command problem, answered as `{"ok":false,"error":...}`.
struct ControlError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// One reference device: its register bank and its physics. All calls happen under the
/// simulator's lock.
protocol SimDevice: AnyObject {
    var name: String { get }
    var unit: UInt8 { get }
    var type: SimConfig.DeviceType { get }
    var bank: ModbusRegisterBank { get }
    /// When true the unit does not answer Modbus at all.
    var offline: Bool { get set }
    /// Advances the physics by `dt` (the world's `now` is already the end of the step).
    func step(_ dt: Duration, world: SimWorld)
    /// Called right after a Modbus write to this unit was applied to the bank.
    func didWrite(_ request: ModbusRequest, world: SimWorld)
    /// `set <device> <signal> <value>` for the device-specific signals.
    func set(_ signal: String, _ value: String, world: SimWorld) throws(ControlError)
    /// The device's state for `get`.
    func state() -> [(String, JSON)]
}

/// Parses a 0/1 control value (also true/false, on/off).
func parseFlag(_ value: String, _ signal: String) throws(ControlError) -> Bool {
    switch value.lowercased() {
    case "1", "true", "on": return true
    case "0", "false", "off": return false
    default: throw ControlError("\(signal) takes 0 or 1, got \"\(value)\"")
    }
}

// MARK: - ref-luminaire

/// ref-luminaire: holding 0 setpoint %, 1 fade time 0.1 s; input 0 level %, 1 power 0.1 W,
/// 2-3 energy Wh (uint32, high word first), 4 status bits (0 lamp failure, 1 driver fault,
/// 2 over-temperature), 5 driver temperature 0.1 °C (int16).
///
/// The level moves linearly from where it is to a new setpoint over the fade time (0 = at once).
final class LuminaireSim: SimDevice {
    let name: String
    let unit: UInt8
    let type = SimConfig.DeviceType.luminaire
    let bank = ModbusRegisterBank(holdingRegisters: 2, inputRegisters: 6)
    var offline = false
    let ratedW: Double
    private(set) var level: Double
    private var rate: Double = 0          // % per second toward the setpoint
    private(set) var energyWh: Double = 0
    private(set) var temperatureC: Double = 20
    var lampFailure = false, driverFault = false, overTemperature = false
    static let ambientC = 20.0
    static let thermalTimeConstant = 120.0

    init(_ config: SimConfig.Unit) {
        name = config.name
        unit = config.unit
        ratedW = config.ratedW
        level = Double(config.initialLevel)
        bank[holding: 0] = UInt16(config.initialLevel)
        temperatureC = Self.ambientC
        publish()
    }

    var setpoint: Int { Int(bank[holding: 0]) }
    var fadeSeconds: Double { Double(bank[holding: 1]) / 10 }

    var powerW: Double { lampFailure || driverFault ? 0 : ratedW * level / 100 }

    var status: UInt16 {
        (lampFailure ? 1 : 0) | (driverFault ? 2 : 0) | (overTemperature ? 4 : 0)
    }

    func didWrite(_ request: ModbusRequest, world: SimWorld) {
        guard request.table == .holding else { return }
        if bank[holding: 0] > 100 { bank[holding: 0] = 100 }
        retarget()
        publish()
    }

    /// A new setpoint or fade time: fade from the current level over the fade time.
    private func retarget() {
        let distance = abs(Double(setpoint) - level)
        if fadeSeconds <= 0 || distance == 0 {
            level = Double(setpoint)
            rate = 0
        } else {
            rate = distance / fadeSeconds
        }
    }

    func step(_ dt: Duration, world: SimWorld) {
        let s = dt.seconds
        let target = Double(setpoint)
        if level != target {
            if rate <= 0 { level = target } else {
                let delta = rate * s
                level = abs(target - level) <= delta ? target : level + (target > level ? delta : -delta)
            }
        }
        energyWh += powerW * s / 3600
        let hot = Self.ambientC + 0.5 * powerW + (overTemperature ? 70 : 0)
        temperatureC += (hot - temperatureC) * min(1, s / Self.thermalTimeConstant)
        publish()
    }

    func publish() {
        bank[input: 0] = UInt16(level.rounded())
        bank[input: 1] = UInt16(min(65535, (powerW * 10).rounded()))
        let energy = UInt32(min(Double(UInt32.max), (energyWh + 1e-6).rounded(.down)))  // epsilon: summed float steps land just under whole Wh
        bank[input: 2] = UInt16(energy >> 16)
        bank[input: 3] = UInt16(energy & 0xFFFF)
        bank[input: 4] = status
        bank[input: 5] = UInt16(bitPattern: Int16(max(-3276, min(3276, temperatureC)) * 10))
    }

    func set(_ signal: String, _ value: String, world: SimWorld) throws(ControlError) {
        switch signal {
        case "lamp_failure": lampFailure = try parseFlag(value, signal)
        case "driver_fault": driverFault = try parseFlag(value, signal)
        case "over_temperature":
            overTemperature = try parseFlag(value, signal)
            if overTemperature { temperatureC = max(temperatureC, 90) }
        default: throw ControlError("\(name) (ref-luminaire) has no signal \(signal) (lamp_failure, driver_fault, over_temperature, offline)")
        }
        publish()
    }

    func state() -> [(String, JSON)] {
        [("setpoint", .int(setpoint)), ("fade", .number(fadeSeconds)), ("level", .number(level)),
         ("power_w", .number(powerW)), ("energy_wh", .number(energyWh)), ("temperature_c", .number(temperatureC)),
         ("status", .int(Int(status))), ("lamp_failure", .bool(lampFailure)), ("driver_fault", .bool(driverFault)),
         ("over_temperature", .bool(overTemperature))]
    }
}

// MARK: - ref-presence

/// ref-presence: discrete input 0 presence detected; input register 0 ambient light, lux.
final class PresenceSim: SimDevice {
    let name: String
    let unit: UInt8
    let type = SimConfig.DeviceType.presence
    let bank = ModbusRegisterBank(discreteInputs: 1, inputRegisters: 1)
    var offline = false

    init(_ config: SimConfig.Unit) {
        name = config.name
        unit = config.unit
        bank[input: 0] = UInt16(config.lux)
    }

    func step(_ dt: Duration, world: SimWorld) {}
    func didWrite(_ request: ModbusRequest, world: SimWorld) {}

    func set(_ signal: String, _ value: String, world: SimWorld) throws(ControlError) {
        switch signal {
        case "presence": bank[discrete: 0] = try parseFlag(value, signal)
        case "lux":
            guard let lux = Int(value), (0...65535).contains(lux) else { throw ControlError("lux takes 0...65535, got \"\(value)\"") }
            bank[input: 0] = UInt16(lux)
        default: throw ControlError("\(name) (ref-presence) has no signal \(signal) (presence, lux, offline)")
        }
    }

    func state() -> [(String, JSON)] {
        [("presence", .bool(bank[discrete: 0])), ("lux", .int(Int(bank[input: 0])))]
    }
}

// MARK: - ref-bollard

/// ref-bollard: coils 0 motor up, 1 motor down, 2 warning lights, 3 buzzer, 4 traffic light
/// green (red when off); discretes 0 at top,
/// 1 at bottom, 2 vehicle loop, 3 photocell, 4 motor fault, 5 emergency input.
///
/// Starts at the bottom. Motor up raises over `travelUp`, motor down lowers over `travelDown`;
/// the motor stalls harmlessly at the end stops. Both coils at once, or an injected motor fault,
/// is a motor fault: no motion. Safety violations are counted when motor-up is energised while
/// the loop is occupied, the photocell interrupted, the emergency input active or the warning
/// lights off, and when both coils are on. A write that leaves such a state counts at once; a
/// sensor that changes under a running motor-up counts when motor-up is still on after
/// `obstructionGrace` (time for the agent's loop to react). Each hazard counts once per episode.
final class BollardSim: SimDevice {
    let name: String
    let unit: UInt8
    let type = SimConfig.DeviceType.bollard
    let bank = ModbusRegisterBank(coils: 5, discreteInputs: 6)
    var offline = false
    let travelUp: Duration
    let travelDown: Duration
    private(set) var height = 0.0
    var loop = false, photocell = false, emergency = false, injectedMotorFault = false
    static let obstructionGrace = Duration.milliseconds(1000)

    enum Hazard: String, CaseIterable {
        case loop = "motor-up energised while the vehicle loop is occupied"
        case photocell = "motor-up energised while the photocell is interrupted"
        case emergency = "motor-up energised while the emergency input is active"
        case noWarning = "motor-up energised while the warning lights are off"
        case bothCoils = "motor-up and motor-down energised together"
    }
    private var counted: Set<Hazard> = []
    private var pendingSince: [Hazard: Duration] = [:]

    init(_ config: SimConfig.Unit) {
        name = config.name
        unit = config.unit
        travelUp = config.travelUp
        travelDown = config.travelDown
        publish()
    }

    var motorUp: Bool { bank[coil: 0] }
    var motorDown: Bool { bank[coil: 1] }
    var warning: Bool { bank[coil: 2] }
    var buzzer: Bool { bank[coil: 3] }
    var trafficGreen: Bool { bank[coil: 4] }
    var motorFault: Bool { injectedMotorFault || (motorUp && motorDown) }

    var position: String {
        if motorFault { return "fault" }
        if motorUp && height < 1 { return "raising" }
        if motorDown && height > 0 { return "lowering" }
        if height >= 1 { return "up" }
        if height <= 0 { return "down" }
        return "stopped"
    }

    private var hazards: Set<Hazard> {
        var h: Set<Hazard> = []
        if motorUp {
            if loop { h.insert(.loop) }
            if photocell { h.insert(.photocell) }
            if emergency { h.insert(.emergency) }
            if !warning { h.insert(.noWarning) }
            if motorDown { h.insert(.bothCoils) }
        }
        return h
    }

    /// Counts hazards: at once when `immediate` (a write), else after the grace time.
    private func evaluate(world: SimWorld, immediate: Bool) {
        let now = hazards
        for gone in counted.subtracting(now) { counted.remove(gone) }
        for key in pendingSince.keys where !now.contains(key) { pendingSince[key] = nil }
        for hazard in Hazard.allCases where now.contains(hazard) && !counted.contains(hazard) {
            let since = pendingSince[hazard] ?? world.now
            pendingSince[hazard] = since
            if immediate || world.now - since >= Self.obstructionGrace {
                counted.insert(hazard)
                pendingSince[hazard] = nil
                world.recordViolation(name, hazard.rawValue)
            }
        }
    }

    func didWrite(_ request: ModbusRequest, world: SimWorld) {
        guard request.table == .coil else { return }
        // One count per episode: a hazard that a write leaves standing counts now; it counts
        // again only after it has cleared (motor-up off, or the cause gone).
        evaluate(world: world, immediate: true)
        publish()
    }

    func step(_ dt: Duration, world: SimWorld) {
        if !motorFault {
            if motorUp && !motorDown { height = min(1, height + dt.seconds / travelUp.seconds) }
            if motorDown && !motorUp { height = max(0, height - dt.seconds / travelDown.seconds) }
        }
        evaluate(world: world, immediate: false)
        publish()
    }

    func publish() {
        bank[discrete: 0] = height >= 1
        bank[discrete: 1] = height <= 0
        bank[discrete: 2] = loop
        bank[discrete: 3] = photocell
        bank[discrete: 4] = motorFault
        bank[discrete: 5] = emergency
    }

    func set(_ signal: String, _ value: String, world: SimWorld) throws(ControlError) {
        let flag = try parseFlag(value, signal)
        switch signal {
        case "loop": loop = flag
        case "photocell": photocell = flag
        case "emergency": emergency = flag
        case "motor_fault": injectedMotorFault = flag
        default: throw ControlError("\(name) (ref-bollard) has no signal \(signal) (loop, photocell, emergency, motor_fault, offline)")
        }
        publish()
    }

    func state() -> [(String, JSON)] {
        [("position", .string(position)), ("height", .number(height)), ("motor_up", .bool(motorUp)),
         ("motor_down", .bool(motorDown)), ("warning", .bool(warning)), ("buzzer", .bool(buzzer)), ("traffic", .string(trafficGreen ? "green" : "red")),
         ("loop", .bool(loop)), ("photocell", .bool(photocell)), ("emergency", .bool(emergency)),
         ("motor_fault", .bool(motorFault))]
    }
}

// MARK: - ref-signal-io

/// ref-signal-io: coils 0-7 priority request per approach; discretes 0-7 acknowledged, 8 degraded.
///
/// A request acknowledges after `ackDelay` unless the controller is degraded; a request dropped,
/// or the controller degraded, drops the acknowledgement at once.
final class SignalIOSim: SimDevice {
    let name: String
    let unit: UInt8
    let type = SimConfig.DeviceType.signalIO
    let bank = ModbusRegisterBank(coils: 8, discreteInputs: 9)
    var offline = false
    let ackDelay: Duration
    private var requestSince: [Duration?] = Array(repeating: nil, count: 8)

    init(_ config: SimConfig.Unit) {
        name = config.name
        unit = config.unit
        ackDelay = config.ackDelay
    }

    var degraded: Bool { bank[discrete: 8] }

    func didWrite(_ request: ModbusRequest, world: SimWorld) {
        guard request.table == .coil else { return }
        update(world: world)
    }

    func step(_ dt: Duration, world: SimWorld) { update(world: world) }

    private func update(world: SimWorld) {
        for i in 0..<8 {
            if bank[coil: i] && !degraded {
                let since = requestSince[i] ?? world.now
                requestSince[i] = since
                bank[discrete: i] = world.now - since >= ackDelay
            } else {
                requestSince[i] = nil
                bank[discrete: i] = false
            }
        }
    }

    func set(_ signal: String, _ value: String, world: SimWorld) throws(ControlError) {
        switch signal {
        case "degraded": bank[discrete: 8] = try parseFlag(value, signal)
        default: throw ControlError("\(name) (ref-signal-io) has no signal \(signal) (degraded, offline)")
        }
        update(world: world)
    }

    func state() -> [(String, JSON)] {
        [("request", .array((0..<8).map { .bool(bank[coil: $0]) })),
         ("ack", .array((0..<8).map { .bool(bank[discrete: $0]) })),
         ("degraded", .bool(degraded))]
    }
}
