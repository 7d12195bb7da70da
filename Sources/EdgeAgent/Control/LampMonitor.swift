public import EdgeRuntime

/// Lamp monitoring of one luminaire (TALQ LampMonitor): turns its status bits and power
/// reading into alarms `lamp_failure`, `power_high`, `power_low`, `driver_fault`,
/// `over_temperature`, raised and cleared. Pure logic: no I/O, no clock.
///
/// Rules:
/// - `driver_fault` and `over_temperature` follow their status bits at once.
/// - `lamp_failure`: the lamp-failure status bit, or (power check) the lamp should be lit
///   but draws less than 10 % of the expected power.
/// - Power check (only with a rated power): expected = rated * level / 100, where the level
///   is the one the agent commanded (a driver that reports 0 % while commanded 80 % and draws
///   nothing has failed; judging its own report would hide it), or the reported one when no
///   command is known. After `warmUp` since that level last changed (or the device came back), power above
///   expected * (1 + tolerance) raises `power_high`, below expected * (1 - tolerance)
///   raises `power_low`; each clears once the power is back within 80 % of the tolerance
///   band (hysteresis, so a reading on the limit does not flap). No power check at level 0.
/// - An offline device is not judged: alarms keep their state, and warm-up restarts when
///   it answers again.
///
/// Invariant: events are made only when an alarm changes state. `nextDeadline` is the end of
/// the warm-up (the only instant time alone changes a verdict); the control loop sleeps until
/// it (`TicklessEquivalenceTests`).
public struct LampMonitor: Sendable {
    /// Status register bits of the reference luminaire (input register 4).
    public struct StatusBits: OptionSet, Sendable, Hashable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        public static let lampFailure = StatusBits(rawValue: 1 << 0)
        public static let driverFault = StatusBits(rawValue: 1 << 1)
        public static let overTemperature = StatusBits(rawValue: 1 << 2)
    }

    /// What the runner reports from each poll of the luminaire.
    public enum Input: Sendable, Equatable {
        /// One poll of the luminaire: actual level (%), power (W), status bits, and the level
        /// the agent commanded (nil when unknown).
        case reading(actualLevel: Int, powerW: Double, status: StatusBits, commandedLevel: Int? = nil)
        /// The luminaire does not answer.
        case offline
    }

    /// Alarms currently active.
    public struct Alarms: OptionSet, Sendable, Hashable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let lampFailure = Alarms(rawValue: 1 << 0)
        public static let powerHigh = Alarms(rawValue: 1 << 1)
        public static let powerLow = Alarms(rawValue: 1 << 2)
        public static let driverFault = Alarms(rawValue: 1 << 3)
        public static let overTemperature = Alarms(rawValue: 1 << 4)
    }

    public let lamp: String
    public let ratedPowerW: Double?
    public let tolerance: Double
    public let warmUp: Duration

    public private(set) var active: Alarms = []
    private var lastReading: (level: Int, powerW: Double, status: StatusBits)?
    private var levelChangedAt: MonotonicInstant?
    private var isOnline = true
    private var clock: MonotonicInstant?
    private var queue = EventQueue()

    /// - Parameters:
    ///   - ratedPowerW: power at 100 %; nil = no power check.
    ///   - tolerance: allowed deviation as a fraction of expected power (e.g. 0.3).
    public init(lamp: String, ratedPowerW: Double?, tolerance: Double, warmUp: Duration) {
        self.lamp = lamp
        self.ratedPowerW = ratedPowerW
        self.tolerance = tolerance
        self.warmUp = warmUp
    }

    /// A monitor for `lamp` with its group's monitoring settings.
    public init(lamp: String, config: LightingGroupConfig) {
        self.init(lamp: lamp, ratedPowerW: config.ratedPowerW, tolerance: config.powerTolerance, warmUp: config.warmUp)
    }

    /// When the warm-up after the last level change ends (the power check starts then).
    public var nextDeadline: MonotonicInstant? {
        guard ratedPowerW != nil, isOnline, let t = levelChangedAt, let now = clock else { return nil }
        let end = t + warmUp
        return end > now ? end : nil
    }

    public mutating func handle(_ input: Input, at: MonotonicInstant) {
        let now = advance(to: at)
        switch input {
        case .offline:
            isOnline = false
            return
        case .reading(let actual, let power, let status, let commanded):
            let level = commanded ?? actual
            if !isOnline || lastReading?.level != level { levelChangedAt = now }
            isOnline = true
            lastReading = (level, power, status)
        }
        evaluate(now: now)
    }

    public mutating func tick(at: MonotonicInstant) {
        let now = advance(to: at)
        if isOnline { evaluate(now: now) }
    }

    public mutating func drainEvents() -> [ControlEvent] { queue.drain() }
    public mutating func drainEvents(into buffer: inout [ControlEvent]) { queue.drain(into: &buffer) }

    // MARK: - internals

    private mutating func advance(to at: MonotonicInstant) -> MonotonicInstant {
        let now = clock.map { max($0, at) } ?? at
        clock = now
        return now
    }

    private mutating func evaluate(now: MonotonicInstant) {
        guard let r = lastReading else { return }
        var next = active
        next.set(.driverFault, r.status.contains(.driverFault))
        next.set(.overTemperature, r.status.contains(.overTemperature))

        var expected = 0.0
        if let rated = ratedPowerW, r.level > 0 {
            // Judge power only after warm-up since the last level change.
            if let t = levelChangedAt, now - t >= warmUp {
                expected = rated * Double(r.level) / 100
                let noPower = r.powerW < expected * 0.1
                powerFailure = noPower
                let deviation = (r.powerW - expected) / expected
                let clearBand = tolerance * 0.8
                if noPower {
                    next.remove(.powerHigh)
                    next.remove(.powerLow)
                } else {
                    if deviation > tolerance { next.insert(.powerHigh) } else if deviation <= clearBand { next.remove(.powerHigh) }
                    if deviation < -tolerance { next.insert(.powerLow) } else if deviation >= -clearBand { next.remove(.powerLow) }
                }
            }
        } else {
            // Off (nothing to draw) or no rated power: no power judgement.
            powerFailure = false
            next.remove(.powerHigh)
            next.remove(.powerLow)
        }
        next.set(.lampFailure, r.status.contains(.lampFailure) || powerFailure)
        guard next != active else { return }
        let changed = next.symmetricDifference(active)
        active = next
        emit(changed, r: r, expected: expected, now: now)
    }

    /// Latched result of the last judged power reading: lit but drawing (almost) nothing.
    private var powerFailure = false

    private mutating func emit(_ changed: Alarms, r: (level: Int, powerW: Double, status: StatusBits), expected: Double, now: MonotonicInstant) {
        let power = "\(Self.format(r.powerW)) W"
        let band = "expected \(Self.format(expected)) W ±\(Int((tolerance * 100).rounded()))% at level \(r.level)%"
        let table: [(Alarms, ControlEvent.AlarmCode, ControlEvent.Severity, String)] = [
            (.lampFailure, .lampFailure, .major,
             r.status.contains(.lampFailure) ? "lamp \(lamp): driver reports lamp failure at level \(r.level)%"
                 : "lamp \(lamp): should be lit at level \(r.level)% but draws \(power) (\(band))"),
            (.powerHigh, .powerHigh, .minor, "lamp \(lamp): power \(power) above \(band)"),
            (.powerLow, .powerLow, .minor, "lamp \(lamp): power \(power) below \(band)"),
            (.driverFault, .driverFault, .major, "lamp \(lamp): driver fault (status bit 1)"),
            (.overTemperature, .overTemperature, .minor, "lamp \(lamp): driver over temperature (status bit 2)"),
        ]
        for (bit, code, severity, message) in table where changed.contains(bit) {
            let on = active.contains(bit)
            queue.append(ControlEvent(at: now, source: lamp, kind: .alarm(.init(
                code: code, active: on, severity: severity,
                message: on ? message : "lamp \(lamp): \(code.rawValue) cleared (level \(r.level)%, \(power))"))))
        }
    }

    private static func format(_ w: Double) -> String {
        let tenths = Int((abs(w) * 10).rounded())
        return "\(w < 0 ? "-" : "")\(tenths / 10).\(tenths % 10)"
    }
}

extension OptionSet {
    fileprivate mutating func set(_ member: Element, _ on: Bool) where Element == Self {
        if on { insert(member) } else { remove(member) }
    }
}
