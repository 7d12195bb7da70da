public import EdgeRuntime

/// Something a control machine wants the uplink and the log to know: a state change, a
/// priority request, an alarm raised or cleared.
///
/// Machines queue events in a preallocated buffer (`drainEvents`); an event is made only
/// when something changed, never on an idle tick. `type` is the contract's event type
/// (`presence`, `lighting.level`, `bollard.state`, `priority.request`, `priority.granted`,
/// `priority.checkout`, `priority.timeout`) or `alarm` (published on `alarm/<device>/<code>`).
public struct ControlEvent: Sendable, Equatable {
    /// When it happened (the machine's clock).
    public var at: MonotonicInstant
    /// The config key of what it is about: lighting group, lamp, bollard or approach.
    public var source: String
    public var kind: Kind

    public init(at: MonotonicInstant, source: String, kind: Kind) {
        self.at = at
        self.source = source
        self.kind = kind
    }

    /// What happened, with the numbers a technician or the centre needs.
    public enum Kind: Sendable, Equatable {
        /// A lighting group's presence started (any sensor detecting) or ended (none).
        case presence(detected: Bool)
        /// A lighting group's target level changed; `fade` is the fade time written with it.
        case lightingLevel(level: Int, fade: Duration, cause: LightingGroup.Cause)
        /// A bollard changed position or mode.
        case bollardState(from: BollardController.Position, to: BollardController.Position, cause: BollardController.Cause)
        /// A vehicle's request is on the approach's output (see `PriorityApproach`).
        case priorityRequest(PriorityApproach.RequestInfo)
        /// The junction controller acknowledged the request; `latency` is request-to-ack.
        case priorityGranted(latency: Duration)
        /// A vehicle checked out; `remaining` vehicles are still checked in.
        case priorityCheckout(vehicle: String?, remaining: Int, reason: PriorityApproach.CheckoutReason)
        /// The request reached `max_hold`: output dropped, `dropped` vehicles forgotten.
        case priorityTimeout(dropped: Int, heldFor: Duration)
        /// An alarm raised (`active`) or cleared.
        case alarm(Alarm)
    }

    /// An alarm state change for `alarm/<source>/<code>` (retained by the uplink).
    public struct Alarm: Sendable, Equatable {
        public var code: AlarmCode
        public var active: Bool
        public var severity: Severity
        /// What a technician reads: the device, the measured value and the limit.
        public var message: String

        public init(code: AlarmCode, active: Bool, severity: Severity, message: String) {
            self.code = code
            self.active = active
            self.severity = severity
            self.message = message
        }
    }

    /// Alarm severity, as in the contract.
    public enum Severity: String, Sendable, Equatable {
        case critical, major, minor
    }

    /// An alarm code (the last topic level of `alarm/<device>/<code>`).
    public struct AlarmCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        // Lamp monitoring (TALQ LampMonitor).
        public static let lampFailure = AlarmCode(rawValue: "lamp_failure")
        public static let powerHigh = AlarmCode(rawValue: "power_high")
        public static let powerLow = AlarmCode(rawValue: "power_low")
        public static let driverFault = AlarmCode(rawValue: "driver_fault")
        public static let overTemperature = AlarmCode(rawValue: "over_temperature")
        // Bollards.
        public static let ioLost = AlarmCode(rawValue: "io_lost")
        public static let travelTimeout = AlarmCode(rawValue: "travel_timeout")
        public static let motorFault = AlarmCode(rawValue: "motor_fault")
        public static let positionUnknown = AlarmCode(rawValue: "position_unknown")
        public static let sensorStale = AlarmCode(rawValue: "sensor_stale")
        /// A device sent values that cannot be used (not finite, out of range, wrong sign).
        public static let invalidValue = AlarmCode(rawValue: "invalid_value")
        // Bus priority.
        public static let controllerDegraded = AlarmCode(rawValue: "controller_degraded")
        // Gateway: the kept safety state (`SafetyStateStore`).
        /// Unreadable at start: every bollard started with its emergency latched.
        public static let safetyStateLost = AlarmCode(rawValue: "safety_state_lost")
        /// The last write of it failed: a restart would lose the latest latches and holds.
        public static let safetyStateUnsaved = AlarmCode(rawValue: "safety_state_unsaved")
    }

    /// The contract's event type string (`alarm` for alarms).
    public var type: String {
        switch kind {
        case .presence: "presence"
        case .lightingLevel: "lighting.level"
        case .bollardState: "bollard.state"
        case .priorityRequest: "priority.request"
        case .priorityGranted: "priority.granted"
        case .priorityCheckout: "priority.checkout"
        case .priorityTimeout: "priority.timeout"
        case .alarm: "alarm"
        }
    }

    /// A JSON-ready value of `data`.
    public enum Value: Sendable, Equatable {
        case int(Int)
        case double(Double)
        case string(String)
        case bool(Bool)
    }

    /// The event's `data` object for the uplink (durations in milliseconds as `*_ms`).
    /// For alarms: `code`, `active`, `severity`, `message`. Allocates: call off the hot path.
    public var data: [String: Value] {
        switch kind {
        case .presence(let detected):
            return ["detected": .bool(detected)]
        case .lightingLevel(let level, let fade, let cause):
            return ["level": .int(level), "fade_ms": .double(ms(fade)), "cause": .string(cause.rawValue)]
        case .bollardState(let from, let to, let cause):
            return ["from": .string(from.rawValue), "state": .string(to.rawValue), "cause": .string(cause.rawValue)]
        case .priorityRequest(let info):
            var d: [String: Value] = [
                "vehicles": .int(info.vehicles),
                "latency_ms": .double(ms(info.latency)),
                "delayed": .bool(info.delayed),
            ]
            if let v = info.vehicle { d["vehicle"] = .string(v) } else { d["anonymous"] = .bool(true) }
            if let l = info.line { d["line"] = .string(l) }
            if let e = info.etaSeconds { d["eta_s"] = .int(e) }
            return d
        case .priorityGranted(let latency):
            return ["latency_ms": .double(ms(latency))]
        case .priorityCheckout(let vehicle, let remaining, let reason):
            var d: [String: Value] = ["remaining": .int(remaining), "reason": .string(reason.rawValue)]
            if let v = vehicle { d["vehicle"] = .string(v) } else { d["anonymous"] = .bool(true) }
            return d
        case .priorityTimeout(let dropped, let heldFor):
            return ["dropped": .int(dropped), "held_ms": .double(ms(heldFor))]
        case .alarm(let a):
            return ["code": .string(a.code.rawValue), "active": .bool(a.active), "severity": .string(a.severity.rawValue), "message": .string(a.message)]
        }
    }
}

/// The answer of a control machine to a command (centre, technician or runner).
public enum ControlOutcome: Sendable, Equatable {
    case accepted
    case refused(CommandError)

    public var isAccepted: Bool { if case .accepted = self { true } else { false } }
}

/// A bounded event queue with its storage reserved up front: appending below the bound
/// never allocates; past it the oldest event is dropped and counted.
struct EventQueue: Sendable {
    static let capacity = 64
    private(set) var events: [ControlEvent] = []
    private(set) var dropped = 0

    init() { events.reserveCapacity(Self.capacity) }

    mutating func append(_ e: ControlEvent) {
        if events.count >= Self.capacity {
            events.removeFirst()
            dropped += 1
        }
        events.append(e)
    }

    mutating func drain() -> [ControlEvent] {
        if events.isEmpty { return [] }
        let out = events
        events.removeAll(keepingCapacity: false)
        events.reserveCapacity(Self.capacity)
        return out
    }

    mutating func drain(into buffer: inout [ControlEvent]) {
        if events.isEmpty { return }
        buffer.append(contentsOf: events)
        events.removeAll(keepingCapacity: true)
    }
}

/// Milliseconds as a Double (for event data).
private func ms(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}
