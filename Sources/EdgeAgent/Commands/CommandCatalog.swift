/// A centre command's action with its arguments checked and typed.
public enum CentreAction: Sendable, Equatable {
    /// Luminaire or lighting group override: `level` percent for `duration`.
    case setLevel(level: Int, duration: Duration)
    /// End a luminaire or lighting group override.
    case release
    case raise
    case lower
    /// Lower and hold until cleared (outranks every other bollard command).
    case emergencyLower
    case clearEmergency
    /// Keep the bollard down for `duration`.
    case holdDown(duration: Duration)
    case priorityRequest(vehicle: String, line: String, eta: Duration)
    case priorityCancel(vehicle: String)
    case ping
    case reloadConfig
}

/// The actions each kind of target accepts and the ranges of their arguments
/// (CONTRACT.md 1, Actions).
///
/// - luminaire / lighting group: `set_level {level: integer 0-100, duration_s: > 0, <= 7 d}`, `release`
/// - bollard: `raise`, `lower`, `emergency_lower`, `clear_emergency`, `hold_down {duration_s: > 0, <= 7 d}`
/// - approach: `priority_request {vehicle: string, line: string, eta_s: 0-600}`, `priority_cancel {vehicle}`
/// - gateway: `ping`, `reload_config`
///
/// A missing or mistyped argument, or an argument the action does not take, is `malformed`;
/// a value outside its range is `out_of_range`; an action the target kind does not have is
/// `unknown_action`; no target kind (the target is not configured) is `unknown_target`.
public enum CommandCatalog {
    /// Actions that only move outputs toward their safe state (bollard down and held down,
    /// a priority request dropped) or touch nothing (`ping`). They run even when the state
    /// disk fails (the replay record is then kept in memory); every other action is refused
    /// with `unavailable` while the replay store cannot record it.
    public static let towardSafeState: Set<String> = ["emergency_lower", "lower", "hold_down", "priority_cancel", "ping"]

    /// What a command's target is, as resolved by the caller from the configuration.
    public enum TargetKind: Sendable {
        case lamp
        case lightingGroup
        case bollard
        case approach
        case gateway
    }

    /// Longest accepted override or hold-down.
    public static let maxDurationSeconds: Double = 7 * 24 * 3600
    /// Longest accepted bus arrival estimate.
    public static let maxETASeconds: Double = 600
    /// Longest vehicle or line identifier.
    public static let maxNameLength = 64

    /// Nil when the command is acceptable for a target of `targetKind`; otherwise the rejection.
    public static func validate(_ command: CentreCommand, targetKind: TargetKind?) -> CommandRejection? {
        if case .failure(let rejection) = parse(command, targetKind: targetKind) { return rejection }
        return nil
    }

    /// The typed action, or the rejection (same rules as `validate`).
    public static func parse(_ command: CentreCommand, targetKind: TargetKind?) -> Result<CentreAction, CommandRejection> {
        guard let targetKind else {
            return .failure(CommandRejection(code: CommandRejection.unknownTarget, message: "unknown target '\(CommandVerifier.printable(command.target))'", id: command.id))
        }
        var args = Arguments(command: command)
        let action: CentreAction
        do {
            switch (targetKind, command.action) {
            case (.lamp, "set_level"), (.lightingGroup, "set_level"):
                let level = try args.number("level")
                guard level.rounded() == level else { throw args.outOfRange("level \(level) is not a whole percent") }
                guard (0...100).contains(level) else { throw args.outOfRange("level \(Int(level)) is outside 0-100") }
                action = .setLevel(level: Int(level), duration: try args.duration("duration_s"))
            case (.lamp, "release"), (.lightingGroup, "release"): action = .release
            case (.bollard, "raise"): action = .raise
            case (.bollard, "lower"): action = .lower
            case (.bollard, "emergency_lower"): action = .emergencyLower
            case (.bollard, "clear_emergency"): action = .clearEmergency
            case (.bollard, "hold_down"): action = .holdDown(duration: try args.duration("duration_s"))
            case (.approach, "priority_request"):
                let vehicle = try args.name("vehicle")
                let line = try args.name("line")
                let eta = try args.number("eta_s")
                guard eta >= 0, eta <= maxETASeconds else { throw args.outOfRange("eta_s \(eta) is outside 0-\(Int(maxETASeconds))") }
                action = .priorityRequest(vehicle: vehicle, line: line, eta: .milliseconds(Int64((eta * 1000).rounded())))
            case (.approach, "priority_cancel"): action = .priorityCancel(vehicle: try args.name("vehicle"))
            case (.gateway, "ping"): action = .ping
            case (.gateway, "reload_config"): action = .reloadConfig
            default:
                return .failure(CommandRejection(
                    code: CommandRejection.unknownAction,
                    message: "target '\(CommandVerifier.printable(command.target))' (\(targetKind)) has no action '\(CommandVerifier.printable(command.action))'",
                    id: command.id))
            }
            try args.requireAllUsed()
        } catch {
            return .failure((error as? CommandRejection) ?? CommandRejection(code: "malformed", message: "\(error)", id: command.id))
        }
        return .success(action)
    }

    /// Reads arguments, remembering which were used so leftovers can be refused.
    private struct Arguments {
        let command: CentreCommand
        var used: Set<String> = []

        init(command: CentreCommand) { self.command = command }

        mutating func value(_ key: String) throws(CommandRejection) -> ControlValue {
            used.insert(key)
            guard let v = command.args[key] else { throw malformed("\(command.action) needs argument '\(key)'") }
            return v
        }

        mutating func number(_ key: String) throws(CommandRejection) -> Double {
            guard let n = try value(key).number, n.isFinite else { throw malformed("argument '\(key)' must be a number") }
            return n
        }

        mutating func duration(_ key: String) throws(CommandRejection) -> Duration {
            let s = try number(key)
            guard s > 0, s <= CommandCatalog.maxDurationSeconds else {
                throw outOfRange("\(key) \(s) is outside (0, \(Int(CommandCatalog.maxDurationSeconds))] seconds")
            }
            return .milliseconds(Int64((s * 1000).rounded()))
        }

        mutating func name(_ key: String) throws(CommandRejection) -> String {
            guard let s = try value(key).string, !s.isEmpty else { throw malformed("argument '\(key)' must be a non-empty string") }
            guard s.count <= CommandCatalog.maxNameLength, !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw outOfRange("argument '\(key)' must be at most \(CommandCatalog.maxNameLength) printable characters")
            }
            return s
        }

        func requireAllUsed() throws(CommandRejection) {
            let extra = Set(command.args.keys).subtracting(used)
            if let first = extra.sorted().first {
                throw malformed("\(command.action) takes no argument '\(CommandVerifier.printable(first))'")
            }
        }

        func malformed(_ message: String) -> CommandRejection {
            CommandRejection(code: CommandRejection.malformed, message: message, id: command.id)
        }

        func outOfRange(_ message: String) -> CommandRejection {
            CommandRejection(code: CommandRejection.outOfRange, message: message, id: command.id)
        }
    }
}
