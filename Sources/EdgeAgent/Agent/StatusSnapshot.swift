import Foundation

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
        /// The latest poll's values by point name.
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

    /// The snapshot as the control protocol carries it.
    var controlValue: ControlValue {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(self), let value = try? JSONDecoder().decode(ControlValue.self, from: data) else { return .null }
        return value
    }
}
