import EdgeRuntime
import FoundationEssentials

/// One request on the local control socket: a JSON object on one line.
///
/// `verb` names the operation (`status`, `lamp.set`, `lamp.release`, `bollard.raise`,
/// `bollard.lower`, `bollard.emergency-lower`, `bollard.clear`, `bollard.hold-down`,
/// `priority.request`, `priority.cancel`, `io.read`, `io.write`, `ping`); `target` the device,
/// group or approach; `args` numbers or strings.
public struct ControlRequest: Codable, Sendable, Equatable {
    public var verb: String
    public var target: String?
    public var args: [String: ControlValue]

    public init(verb: String, target: String? = nil, args: [String: ControlValue] = [:]) {
        self.verb = verb
        self.target = target
        self.args = args
    }

    enum CodingKeys: String, CodingKey { case verb, target, args }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        verb = try c.decode(String.self, forKey: .verb)
        target = try c.decodeIfPresent(String.self, forKey: .target)
        args = try c.decodeIfPresent([String: ControlValue].self, forKey: .args) ?? [:]
    }
}

/// A JSON scalar or nested value carried in control requests and replies.
public enum ControlValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case string(String)
    case bool(Bool)
    case array([ControlValue])
    case object([String: ControlValue])
    case null

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ControlValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ControlValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .number(let d):
            if d.rounded() == d, abs(d) < 1e15 { try c.encode(Int64(d)) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .bool(let b): try c.encode(b)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        case .null: try c.encodeNil()
        }
    }

    public var number: Double? { if case .number(let d) = self { return d }; return nil }
    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var object: [String: ControlValue]? { if case .object(let o) = self { return o }; return nil }
    public var array: [ControlValue]? { if case .array(let a) = self { return a }; return nil }

    public var description: String {
        switch self {
        case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(cFormat: "%.2f", d)
        case .string(let s): return s
        case .bool(let b): return b ? "yes" : "no"
        case .array(let a): return a.map(\.description).joined(separator: ",")
        case .object(let o): return o.keys.sorted().map { "\($0)=\(o[$0]!)" }.joined(separator: " ")
        case .null: return "-"
        }
    }
}

/// The answer to a control request: `ok` with a result, or a contract error code and a message
/// a technician understands (`interlock`: "vehicle loop occupied").
public struct ControlResponse: Codable, Sendable, Equatable {
    public var ok: Bool
    public var result: ControlValue?
    public var code: CommandError.Code?
    public var message: String?

    public static func success(_ result: ControlValue? = nil) -> ControlResponse {
        ControlResponse(ok: true, result: result, code: nil, message: nil)
    }

    public static func failure(_ code: CommandError.Code, _ message: String) -> ControlResponse {
        ControlResponse(ok: false, result: nil, code: code, message: message)
    }
}

enum ControlCoding {
    static func encodeLine<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes = (try? [UInt8](encoder.encode(value))) ?? Array(#"{"ok":false,"code":"unavailable","message":"encoding failed"}"#.utf8)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

/// What the agent does with a control request: answer from its state (`status`, `io.read`)
/// or pass a typed command to the gateway or the control loop.
public enum ControlRoute: Sendable, Equatable {
    /// Answered from a state snapshot: `status`, or `io.read` of the request's target.
    case read(verb: String)
    /// A command, parsed with the centre's rules and limits (`CommandAction.parse`).
    case command(CommandAction)
}

/// What a control-socket peer may do. Read-only (`monitor_group`): the reads (`status`, which
/// `edgectl watch` repeats, and `io.read`); actuate (`control_group`, root, the agent's own
/// user): everything. `edgectl config check` reads the file itself and needs no role.
public enum ControlRole: Int, Sendable, Comparable, CustomStringConvertible {
    case read = 1
    case actuate = 2

    public static func < (a: ControlRole, b: ControlRole) -> Bool { a.rawValue < b.rawValue }
    public var description: String { self == .read ? "read-only" : "actuate" }
}

/// The control socket's line protocol without the socket: decoding one request line and
/// routing its verb (CONTRACT.md section 3). Pure and total: any bytes give a request or a
/// refusal, never a trap.
public enum ControlProtocol {
    /// Longest request line the server reads; a longer one closes the connection.
    public static let maxLineBytes = 65_536

    /// The verbs a read-only peer may use; every other verb needs `ControlRole.actuate`.
    public static let readVerbs: Set<String> = ["status", "io.read"]

    /// Verb -> the action name of the command it becomes (parsed by `CommandAction.parse`).
    public static let commandActions: [String: String] = [
        "lamp.set": "set_level", "lamp.release": "release",
        "bollard.raise": "raise", "bollard.lower": "lower", "bollard.emergency-lower": "emergency_lower",
        "bollard.clear": "clear_emergency", "bollard.hold-down": "hold_down",
        "priority.request": "priority_request", "priority.cancel": "priority_cancel",
        "io.write": "io_write", "maintenance": "maintenance", "debug.hang-loop": "debug_hang", "ping": "ping", "config.reload": "reload_config",
    ]

    /// The role a request's verb needs.
    public static func requiredRole(verb: String) -> ControlRole {
        readVerbs.contains(verb) ? .read : .actuate
    }

    /// One request line (without its newline) as the server decodes it.
    /// - Throws: `malformed` when the line is not a JSON object with a string `verb`.
    public static func decode(line: some Collection<UInt8>) throws(CommandError) -> ControlRequest {
        do {
            return try JSONDecoder().decode(ControlRequest.self, from: Data(line))
        } catch {
            throw CommandError(.malformed, "request is not a JSON object with a \"verb\": \(error)")
        }
    }

    /// Where a decoded request goes; a command's action is parsed for its target's kind
    /// (`targetKind` resolves a target name in the running config).
    /// - Throws: `unknown_action` for an unknown verb, `malformed` for `io.read` without a
    ///   device, and the parser's refusals (`unknown_target`, `unknown_action`, `malformed`,
    ///   `out_of_range`).
    public static func route(_ request: ControlRequest, targetKind: (String) -> CommandAction.TargetKind?) throws(CommandError) -> ControlRoute {
        switch request.verb {
        case "status":
            return .read(verb: "status")
        case "io.read":
            guard request.target != nil else { throw CommandError(.malformed, "io.read needs a device") }
            return .read(verb: "io.read")
        default:
            guard let action = commandActions[request.verb] else {
                throw CommandError(.unknownAction, "unknown verb \(CommandVerifier.printable(request.verb))")
            }
            let target = request.target ?? ""
            return .command(try CommandAction.parse(action: action, args: request.args, target: target, targetKind: targetKind(target), source: .local).get())
        }
    }
}
