/// The ranges of command arguments (CONTRACT.md 1, Actions), the only copy: centre and
/// control-socket commands are parsed against them, and the control machines check the same.
///
/// - `level`: a whole percent 0-100.
/// - `set_level` `duration_s`: more than 0, at most 7 days (an override outlasts a weekend).
/// - `hold_down` `duration_s`: more than 0, at most 24 h (the bollard machine's own bound: a
///   bollard held down is an open access; a longer hold is renewed, not signed once).
/// - `priority_request` `eta_s`: 0-600 s; `vehicle`, `line`: 1-64 printable characters.
/// - `debug_hang` (test hook) `duration_s`: 0-600 s, default 30 s.
public enum CommandLimits {
    public static let level = 0...100
    public static let maxOverride: Duration = .seconds(7 * 86_400)
    public static let maxHoldDown: Duration = .seconds(86_400)
    public static let maxETASeconds = 600
    public static let maxNameLength = 64
    public static let maxDebugHang: Duration = .seconds(600)
    public static let defaultDebugHang: Duration = .seconds(30)
}

/// A command's action with its arguments checked and typed: what the control loop executes,
/// whether it came from the centre or from the control socket. A value exists only within
/// `CommandLimits` and for a target kind that has the action.
public enum CommandAction: Sendable, Equatable {
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
    /// Check a vehicle in; `line` and `etaSeconds` are optional.
    case priorityRequest(vehicle: String, line: String?, etaSeconds: Int?)
    case priorityCancel(vehicle: String)
    case ping
    case reloadConfig
    /// Control socket only: a technician's write of one point (maintenance mode).
    case ioWrite(point: String, value: Double)
    /// Control socket only: maintenance mode on or off.
    case maintenance(on: Bool)
    /// Control socket only, test hook (with `EDGE_AGENT_TEST_HOOKS=1`): block the loop.
    case debugHang(duration: Duration)

    /// Where a command came from: the centre may use the contract's actions only.
    public enum Source: Sendable, Equatable { case centre, local }

    /// What a command's target is, resolved from the configuration (`TargetKind(of:in:)`).
    public enum TargetKind: Sendable, Equatable {
        /// A luminaire of a lighting group.
        case lamp
        case lightingGroup
        case bollard
        case approach
        /// `gateway`, this gateway's id, or no target.
        case gateway
        /// Any other device (presence sensor, signal I/O, a lamp of no group).
        case device

        /// The kind of `target` in `config`; nil when nothing of that name is configured.
        public init?(of target: String, in config: AgentConfig) {
            if target.isEmpty || target == "gateway" || target == config.gateway.id { self = .gateway }
            else if config.lighting[target] != nil { self = .lightingGroup }
            else if config.bollards[target] != nil { self = .bollard }
            else if config.priority[target] != nil { self = .approach }
            else if config.lighting.values.contains(where: { $0.lamps.contains(target) }) { self = .lamp }
            else if config.devices[target] != nil { self = .device }
            else { return nil }
        }

        var isDevice: Bool { self == .lamp || self == .bollard || self == .device }
    }

    /// The contract's (or the control socket's) name of the action.
    public var name: String {
        switch self {
        case .setLevel: "set_level"
        case .release: "release"
        case .raise: "raise"
        case .lower: "lower"
        case .emergencyLower: "emergency_lower"
        case .clearEmergency: "clear_emergency"
        case .holdDown: "hold_down"
        case .priorityRequest: "priority_request"
        case .priorityCancel: "priority_cancel"
        case .ping: "ping"
        case .reloadConfig: "reload_config"
        case .ioWrite: "io_write"
        case .maintenance: "maintenance"
        case .debugHang: "debug_hang"
        }
    }

    /// Actions that only move outputs toward their safe state (bollard down and held down,
    /// a priority request dropped) or touch nothing (`ping`). They run even when the state
    /// disk fails (the replay record is then kept in memory); every other centre action is
    /// refused with `unavailable` while the replay store cannot record it.
    public var isTowardSafeState: Bool {
        switch self {
        case .emergencyLower, .lower, .holdDown, .priorityCancel, .ping: true
        default: false
        }
    }

    /// The names of the actions toward the safe state, for messages.
    public static let towardSafeStateNames = ["emergency_lower", "hold_down", "lower", "ping", "priority_cancel"]

    /// Parses `action` with `args` for a target of `targetKind` (nil: not configured).
    ///
    /// - luminaire / lighting group: `set_level {level, duration_s}`, `release`
    /// - bollard: `raise`, `lower`, `emergency_lower`, `clear_emergency`, `hold_down {duration_s}`
    /// - approach: `priority_request {vehicle, line?, eta_s?}`, `priority_cancel {vehicle}`
    /// - gateway: `ping`, `reload_config`; from the control socket also `maintenance {on}`
    ///   and `debug_hang {duration_s?}`
    /// - any device, from the control socket: `io_write {point, value}`
    ///
    /// No target kind (the target is not configured) is `unknown_target`; an action the
    /// target kind (or the source) does not have is `unknown_action`; a missing or mistyped
    /// argument, or one the action does not take, is `malformed`; a value outside
    /// `CommandLimits` is `out_of_range`. `id` goes into the error.
    public static func parse(action: String, args: [String: ControlValue], target: String, targetKind: TargetKind?,
                             source: Source, id: String? = nil) -> Result<CommandAction, CommandError> {
        guard let targetKind else {
            return .failure(CommandError(.unknownTarget, "unknown target '\(CommandVerifier.printable(target))'", id: id))
        }
        var a = Arguments(action: action, args: args, id: id)
        let parsed: CommandAction
        do throws(CommandError) {
            switch (targetKind, action, source) {
            case (.lamp, "set_level", _), (.lightingGroup, "set_level", _):
                let level = try a.number("level")
                guard level.rounded() == level else { throw a.outOfRange("level \(level) is not a whole percent") }
                guard level >= Double(CommandLimits.level.lowerBound), level <= Double(CommandLimits.level.upperBound) else {
                    throw a.outOfRange("level \(Int(level)) is outside \(CommandLimits.level.lowerBound)-\(CommandLimits.level.upperBound)")
                }
                parsed = .setLevel(level: Int(level), duration: try a.duration("duration_s", max: CommandLimits.maxOverride, maxText: "7 days"))
            case (.lamp, "release", _), (.lightingGroup, "release", _): parsed = .release
            case (.bollard, "raise", _): parsed = .raise
            case (.bollard, "lower", _): parsed = .lower
            case (.bollard, "emergency_lower", _): parsed = .emergencyLower
            case (.bollard, "clear_emergency", _): parsed = .clearEmergency
            case (.bollard, "hold_down", _): parsed = .holdDown(duration: try a.duration("duration_s", max: CommandLimits.maxHoldDown, maxText: "24 h"))
            case (.approach, "priority_request", _):
                let vehicle = try a.name("vehicle")
                let line = try a.has("line") ? a.name("line") : nil
                var eta: Int?
                if a.has("eta_s") {
                    let e = try a.number("eta_s")
                    guard e >= 0, e <= Double(CommandLimits.maxETASeconds) else {
                        throw a.outOfRange("eta_s \(e) is outside 0-\(CommandLimits.maxETASeconds)")
                    }
                    eta = Int(e.rounded())
                }
                parsed = .priorityRequest(vehicle: vehicle, line: line, etaSeconds: eta)
            case (.approach, "priority_cancel", _): parsed = .priorityCancel(vehicle: try a.name("vehicle"))
            case (.gateway, "ping", _): parsed = .ping
            case (.gateway, "reload_config", _): parsed = .reloadConfig
            case (.gateway, "maintenance", .local):
                guard let on = try a.value("on").bool else { throw a.malformed("argument 'on' must be true or false") }
                parsed = .maintenance(on: on)
            case (.gateway, "debug_hang", .local):
                var d = CommandLimits.defaultDebugHang
                if a.has("duration_s") {
                    let s = try a.number("duration_s")
                    guard s >= 0, s <= CommandLimits.maxDebugHang.seconds else { throw a.outOfRange("duration_s \(s) is outside 0-600") }
                    d = .milliseconds(Int64((s * 1000).rounded()))
                }
                parsed = .debugHang(duration: d)
            case (let kind, "io_write", .local) where kind.isDevice:
                guard let point = try a.value("point").string, !point.isEmpty else { throw a.malformed("argument 'point' must be a point name") }
                parsed = .ioWrite(point: point, value: try a.number("value"))
            default:
                return .failure(CommandError(
                    .unknownAction,
                    "target '\(CommandVerifier.printable(target))' (\(targetKind)) has no action '\(CommandVerifier.printable(action))'", id: id))
            }
            try a.requireAllUsed()
        } catch {
            return .failure(error)
        }
        return .success(parsed)
    }

    /// A verified centre command's action, for its target's kind (same rules as above).
    public static func parse(_ command: CentreCommand, targetKind: TargetKind?) -> Result<CommandAction, CommandError> {
        parse(action: command.action, args: command.args, target: command.target, targetKind: targetKind, source: .centre, id: command.id)
    }

    /// Reads arguments, remembering which were used so leftovers can be refused.
    private struct Arguments {
        let action: String
        let args: [String: ControlValue]
        let id: String?
        var used: Set<String> = []

        init(action: String, args: [String: ControlValue], id: String?) {
            self.action = action
            self.args = args
            self.id = id
        }

        mutating func has(_ key: String) -> Bool {
            used.insert(key)
            return args[key] != nil && args[key] != .null
        }

        mutating func value(_ key: String) throws(CommandError) -> ControlValue {
            used.insert(key)
            guard let v = args[key] else { throw malformed("\(CommandVerifier.printable(action)) needs argument '\(key)'") }
            return v
        }

        mutating func number(_ key: String) throws(CommandError) -> Double {
            guard let n = try value(key).number, n.isFinite else { throw malformed("argument '\(key)' must be a number") }
            return n
        }

        mutating func duration(_ key: String, max: Duration, maxText: String) throws(CommandError) -> Duration {
            let s = try number(key)
            guard s > 0, s <= max.seconds else { throw outOfRange("\(key) \(s) is outside (0 s, \(maxText)]") }
            return .milliseconds(Int64((s * 1000).rounded()))
        }

        mutating func name(_ key: String) throws(CommandError) -> String {
            guard let s = try value(key).string, !s.isEmpty else { throw malformed("argument '\(key)' must be a non-empty string") }
            guard s.count <= CommandLimits.maxNameLength, !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw outOfRange("argument '\(key)' must be at most \(CommandLimits.maxNameLength) printable characters")
            }
            return s
        }

        func requireAllUsed() throws(CommandError) {
            let extra = Set(args.keys).subtracting(used)
            if let first = extra.sorted().first {
                throw malformed("\(CommandVerifier.printable(action)) takes no argument '\(CommandVerifier.printable(first))'")
            }
        }

        func malformed(_ message: String) -> CommandError { CommandError(.malformed, message, id: id) }
        func outOfRange(_ message: String) -> CommandError { CommandError(.outOfRange, message, id: id) }
    }
}
