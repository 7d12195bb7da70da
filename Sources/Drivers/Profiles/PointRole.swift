/// What a profile point is for: the points the drivers and the control core use
/// (CONTRACT.md section 2), one case per point name. A profile names its points by role;
/// every role has a fixed slot in `PointValues`, so a poll fills slots and the control step
/// reads them with no string in sight. The profile loader checks a profile against
/// `specs(for:)`; the codec decodes by role.
///
/// Invariant: `pointName` and `init(pointName:)` are inverse; raw values are dense from 0.
public enum PointRole: Int, CaseIterable, Sendable, Hashable {
    // Luminaire
    case setpoint, fade, level, powerW, energyWh, status, temperatureC
    // Bits of a luminaire's `status` word (named by the profile's `bits:`)
    case lampFailure, driverFault, overTemperature
    // Presence sensor
    case presence, lux
    // Bollard: outputs, then inputs
    case motorUp, motorDown, warning, buzzer, traffic
    case atTop, atBottom, loop, photocell, motorFault, emergency
    // Signal I/O of a junction controller: approach 1-8 requests and acknowledgements
    case request1, request2, request3, request4, request5, request6, request7, request8
    case ack1, ack2, ack3, ack4, ack5, ack6, ack7, ack8
    case degraded

    /// The point's name in profiles, the contract and telemetry.
    public var pointName: String {
        switch self {
        case .setpoint: "setpoint"
        case .fade: "fade"
        case .level: "level"
        case .powerW: "power_w"
        case .energyWh: "energy_wh"
        case .status: "status"
        case .temperatureC: "temperature_c"
        case .lampFailure: "lamp_failure"
        case .driverFault: "driver_fault"
        case .overTemperature: "over_temperature"
        case .presence: "presence"
        case .lux: "lux"
        case .motorUp: "motor_up"
        case .motorDown: "motor_down"
        case .warning: "warning"
        case .buzzer: "buzzer"
        case .traffic: "traffic"
        case .atTop: "at_top"
        case .atBottom: "at_bottom"
        case .loop: "loop"
        case .photocell: "photocell"
        case .motorFault: "motor_fault"
        case .emergency: "emergency"
        case .degraded: "degraded"
        case .request1, .request2, .request3, .request4, .request5, .request6, .request7, .request8:
            "request_\(rawValue - PointRole.request1.rawValue + 1)"
        case .ack1, .ack2, .ack3, .ack4, .ack5, .ack6, .ack7, .ack8:
            "ack_\(rawValue - PointRole.ack1.rawValue + 1)"
        }
    }

    private static let byName: [String: PointRole] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.pointName, $0) })

    /// The role of a point name; nil for a name no driver uses.
    public init?(pointName: String) {
        guard let r = Self.byName[pointName] else { return nil }
        self = r
    }

    /// `request_<n>`, n = 1...8.
    public static func request(_ approach: Int) -> PointRole {
        precondition((1...8).contains(approach), "approach \(approach) outside 1-8")
        return PointRole(rawValue: PointRole.request1.rawValue + approach - 1)!
    }

    /// `ack_<n>`, n = 1...8.
    public static func ack(_ approach: Int) -> PointRole {
        precondition((1...8).contains(approach), "approach \(approach) outside 1-8")
        return PointRole(rawValue: PointRole.ack1.rawValue + approach - 1)!
    }

    /// n for `request_<n>`.
    public var requestApproach: Int? {
        (PointRole.request1.rawValue...PointRole.request8.rawValue).contains(rawValue) ? rawValue - PointRole.request1.rawValue + 1 : nil
    }

    /// n for `ack_<n>`.
    public var ackApproach: Int? {
        (PointRole.ack1.rawValue...PointRole.ack8.rawValue).contains(rawValue) ? rawValue - PointRole.ack1.rawValue + 1 : nil
    }

    /// An input the safety rules of `kind` act on (`PollPeriods.isSafety`): a bollard's end
    /// switches, loop, photocell, motor fault and emergency input; a signal I/O's
    /// acknowledgements and degraded input; a presence sensor's detection. Its block is read at
    /// every poll; blocks without one are read at `PollPeriods.slowBlocks` (`PointCodec`).
    public func isSafetyInput(of kind: DeviceProfile.Kind) -> Bool {
        switch kind {
        case .bollard: return self == .atTop || self == .atBottom || self == .loop || self == .photocell || self == .motorFault || self == .emergency
        case .signalIO: return ackApproach != nil || self == .degraded
        case .presence: return self == .presence
        case .luminaire: return false
        }
    }

    /// A status bit: read from its word's raw bits, not from a point of its own.
    public var isStatusBit: Bool { self == .lampFailure || self == .driverFault || self == .overTemperature }

    /// The value of an output point that is safe (off): motors, buzzer, priority requests and
    /// the traffic light's green are 0; nil for outputs with no safe direction (a setpoint, a
    /// fade time, the warning lights). Writes put every point going to its safe value before
    /// any point leaving it.
    public var safeValue: Double? {
        switch self {
        case .motorUp, .motorDown, .buzzer, .traffic: 0
        default: requestApproach != nil ? 0 : nil
        }
    }

    /// The engineering values a device may report for this role; anything else (or NaN, or
    /// an infinity) is an invalid reading. nil = any finite value.
    public var validRange: ClosedRange<Double>? {
        switch self {
        case .setpoint, .level: 0...100
        case .fade: 0...6553.5
        case .powerW: 0...1_000_000
        case .energyWh: 0...4_294_967_295
        case .status: 0...65535
        case .temperatureC: -100...300
        case .lux: 0...1_000_000
        default: nil
        }
    }

    /// One role a kind of device uses: the tables its point may live in, and whether every
    /// profile of that kind must have it.
    public struct Spec: Sendable, Equatable {
        public var role: PointRole
        public var tables: [DeviceProfile.RegisterTable]
        public var required: Bool
    }

    /// The roles each kind's driver uses (CONTRACT.md section 2). Status bits are not listed:
    /// they are bits of `status`.
    public static func specs(for kind: DeviceProfile.Kind) -> [Spec] {
        let registers: [DeviceProfile.RegisterTable] = [.input, .holding]
        switch kind {
        case .luminaire:
            return [
                Spec(role: .setpoint, tables: [.holding], required: true),
                Spec(role: .fade, tables: [.holding], required: false),
                Spec(role: .level, tables: registers, required: true),
                Spec(role: .powerW, tables: registers, required: false),
                Spec(role: .energyWh, tables: registers, required: false),
                Spec(role: .status, tables: registers, required: false),
                Spec(role: .temperatureC, tables: registers, required: false),
            ]
        case .presence:
            return [
                Spec(role: .presence, tables: [.discrete, .coil, .input, .holding], required: true),
                Spec(role: .lux, tables: registers, required: false),
            ]
        case .bollard:
            return [
                Spec(role: .motorUp, tables: [.coil], required: true),
                Spec(role: .motorDown, tables: [.coil], required: true),
                Spec(role: .warning, tables: [.coil], required: true),
                Spec(role: .buzzer, tables: [.coil], required: false),
                Spec(role: .traffic, tables: [.coil], required: false),
                Spec(role: .atTop, tables: [.discrete], required: true),
                Spec(role: .atBottom, tables: [.discrete], required: true),
                Spec(role: .loop, tables: [.discrete], required: true),
                Spec(role: .photocell, tables: [.discrete], required: true),
                Spec(role: .motorFault, tables: [.discrete], required: false),
                Spec(role: .emergency, tables: [.discrete], required: true),
            ]
        case .signalIO:
            return (1...8).flatMap { n in
                [Spec(role: .request(n), tables: [.coil], required: n == 1),
                 Spec(role: .ack(n), tables: [.discrete], required: false)]
            } + [Spec(role: .degraded, tables: [.discrete], required: false)]
        }
    }
}

/// The values of one poll, one slot per `PointRole` (no dictionary, no string): a slot is
/// nil when the device has no such point, or when what it sent could not be used.
public struct PointValues: Sendable, Equatable {
    private var slots: [Double]

    public init() { slots = Array(repeating: .nan, count: PointRole.allCases.count) }

    public subscript(_ role: PointRole) -> Double? {
        get {
            let v = slots[role.rawValue]
            return v.isNaN ? nil : v
        }
        set { slots[role.rawValue] = newValue.flatMap { $0.isNaN ? nil : $0 } ?? .nan }
    }

    /// A bit (or a non-zero value) is set; an absent value is not.
    public func isOn(_ role: PointRole) -> Bool { (self[role] ?? 0) != 0 }

    /// No slot is filled.
    public var isEmpty: Bool { slots.allSatisfy(\.isNaN) }

    /// The same slots filled with the same values (`==` compares the raw slots, where an empty
    /// one, NaN, never equals itself); allocates nothing.
    public func sameValues(as other: PointValues) -> Bool {
        guard slots.count == other.slots.count else { return false }
        for i in slots.indices {
            let a = slots[i], b = other.slots[i]
            if a != b && !(a.isNaN && b.isNaN) { return false }
        }
        return true
    }

    /// The filled slots, in role order.
    public var present: [(role: PointRole, value: Double)] {
        PointRole.allCases.compactMap { r in self[r].map { (r, $0) } }
    }

    /// Whether every slot outside `except` holds the same value as in `other` (empty equals
    /// empty); allocates nothing.
    public func sameValues(as other: PointValues, except: PointRoleSet) -> Bool {
        guard !except.isEmpty else { return sameValues(as: other) }
        guard slots.count == other.slots.count else { return false }
        for i in slots.indices where except.bits & (1 << UInt64(i)) == 0 {
            let a = slots[i], b = other.slots[i]
            if a != b && !(a.isNaN && b.isNaN) { return false }
        }
        return true
    }

    /// Takes `other`'s slots except those of `keep`, which hold their value (the last known
    /// value of roles a poll did not read); in place (allocates nothing once this buffer is
    /// its own).
    public mutating func update(from other: PointValues, keeping keep: PointRoleSet) {
        for i in slots.indices where keep.bits & (1 << UInt64(i)) == 0 { slots[i] = other.slots[i] }
    }

    /// Empties every slot (a reused buffer).
    public mutating func removeAll() {
        for i in slots.indices { slots[i] = .nan }
    }
}

/// A set of roles, one bit per `PointRole` (no allocation): which roles a poll did not read.
public struct PointRoleSet: Sendable, Equatable {
    public private(set) var bits: UInt64

    public init() { bits = 0 }

    public init(_ roles: some Sequence<PointRole>) {
        bits = 0
        for r in roles { insert(r) }
    }

    public var isEmpty: Bool { bits == 0 }
    public func contains(_ role: PointRole) -> Bool { bits & (1 << UInt64(role.rawValue)) != 0 }
    public mutating func insert(_ role: PointRole) { bits |= 1 << UInt64(role.rawValue) }
    public mutating func formUnion(_ other: PointRoleSet) { bits |= other.bits }
}
