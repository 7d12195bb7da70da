import FoundationEssentials

/// The agent's state at a glance, as `edgectl status` (and `watch`) show it: devices, lighting
/// groups, bollards, approaches, active alarms. Built by the control step on its own thread
/// and encoded (snake_case keys) for the control socket.
struct StatusSnapshot: Codable, Sendable, Equatable {
    struct Device: Codable, Sendable, Equatable {
        /// nil until the device has answered or failed once.
        var online: Bool?
        var kind: String
        var profile: String?
        var bus: String?
        var unit: Int?
        var line: String?
        /// A GPIO input's level.
        var value: Bool?
        /// The last known value of each point (a poll that did not read a point leaves its last
        /// value), by point name.
        var values: [String: Double]?
        var error: String?
        /// Values the device sent that could not be used.
        var invalid: [String]?
        /// Automation paused by a maintenance write until maintenance ends.
        var manual: Bool?
    }

    struct Group: Codable, Sendable, Equatable {
        var level: Int
        var schedule: Int
        var boosting: Bool
        var override: Int?
    }

    struct Bollard: Codable, Sendable, Equatable {
        var position: String
        var motorUp: Bool
        var motorDown: Bool
        var warning: Bool
        var traffic: String
        var loop: Bool?
        var photocell: Bool?
        var emergency: Bool?
        var fault: String?
        /// Age of the inputs the controller holds, at the snapshot.
        var sensorAgeMs: Double?
        /// Emergency lowering latched (until `clear_emergency`); absent when not.
        var emergencyLatched: Bool?
        /// What is left of a `hold_down`, seconds (0.1 s steps); absent without one.
        var holdS: Double?
    }

    struct Approach: Codable, Sendable, Equatable {
        var request: Bool
        var vehicles: Int
    }

    struct Alarm: Codable, Sendable, Equatable {
        var device: String
        var code: String
        var severity: String
        var message: String
    }

    var gateway: String
    var uptimeS: Double
    var devices: [String: Device]
    var lighting: [String: Group]
    var bollards: [String: Bollard]
    var approaches: [String: Approach]
    var alarms: [Alarm]
    var maintenance: Bool

    /// The snapshot as the control protocol carries it: the same keys and values as its
    /// Codable form (snake_case, absent optionals left out), built directly (a JSON round trip
    /// cost the loop some 18 M instructions a snapshot).
    var controlValue: ControlValue {
        func opt<T>(_ v: T?, _ f: (T) -> ControlValue) -> ControlValue? { v.map(f) }
        var devs: [String: ControlValue] = [:]
        for (name, d) in devices {
            var o: [String: ControlValue] = ["kind": .string(d.kind)]
            o["online"] = opt(d.online) { .bool($0) }
            o["profile"] = opt(d.profile) { .string($0) }
            o["bus"] = opt(d.bus) { .string($0) }
            o["unit"] = opt(d.unit) { .number(Double($0)) }
            o["line"] = opt(d.line) { .string($0) }
            o["value"] = opt(d.value) { .bool($0) }
            o["values"] = opt(d.values) { .object($0.mapValues { .number($0) }) }
            o["error"] = opt(d.error) { .string($0) }
            o["invalid"] = opt(d.invalid) { .array($0.map { .string($0) }) }
            o["manual"] = opt(d.manual) { .bool($0) }
            devs[name] = .object(o)
        }
        var groups: [String: ControlValue] = [:]
        for (name, g) in lighting {
            var o: [String: ControlValue] = ["level": .number(Double(g.level)), "schedule": .number(Double(g.schedule)), "boosting": .bool(g.boosting)]
            o["override"] = opt(g.override) { .number(Double($0)) }
            groups[name] = .object(o)
        }
        var bols: [String: ControlValue] = [:]
        for (name, b) in bollards {
            var o: [String: ControlValue] = ["position": .string(b.position), "motor_up": .bool(b.motorUp), "motor_down": .bool(b.motorDown),
                                             "warning": .bool(b.warning), "traffic": .string(b.traffic)]
            o["loop"] = opt(b.loop) { .bool($0) }
            o["photocell"] = opt(b.photocell) { .bool($0) }
            o["emergency"] = opt(b.emergency) { .bool($0) }
            o["fault"] = opt(b.fault) { .string($0) }
            o["sensor_age_ms"] = opt(b.sensorAgeMs) { .number($0) }
            o["emergency_latched"] = opt(b.emergencyLatched) { .bool($0) }
            o["hold_s"] = opt(b.holdS) { .number($0) }
            bols[name] = .object(o)
        }
        return .object([
            "gateway": .string(gateway),
            "uptime_s": .number(uptimeS),
            "devices": .object(devs),
            "lighting": .object(groups),
            "bollards": .object(bols),
            "approaches": .object(approaches.mapValues { .object(["request": .bool($0.request), "vehicles": .number(Double($0.vehicles))]) }),
            "alarms": .array(alarms.map { .object(["device": .string($0.device), "code": .string($0.code), "severity": .string($0.severity), "message": .string($0.message)]) }),
            "maintenance": .bool(maintenance),
        ])
    }

    /// The Codable form as the control protocol would carry it (JSON, snake_case): what
    /// `controlValue` must equal (tested).
    var encodedControlValue: ControlValue {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(self), let value = try? JSONDecoder().decode(ControlValue.self, from: data) else { return .null }
        return value
    }
}
