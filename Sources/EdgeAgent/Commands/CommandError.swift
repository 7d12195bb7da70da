/// Why a command or a control request was refused: one of the contract's error codes, a
/// sentence for the technician ("vehicle loop occupied"), and the command id when one could be
/// read (for `bad_signature` it comes from unverified bytes and is only for correlating the
/// reply). The one error type of every command layer: the centre's verifier and argument
/// parser, the control socket, the control loop and the control machines. Nothing was actuated.
public struct CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The contract's error codes (CONTRACT.md 1, Commands; 3 for the control socket's own);
    /// `rawValue` is the string on the wire.
    public enum Code: String, Sendable, Equatable, CaseIterable, Codable {
        // Centre and control socket (CONTRACT.md 1, Commands).
        case badSignature = "bad_signature"
        case wrongGateway = "wrong_gateway"
        case expired
        case replay
        case malformed
        case unknownTarget = "unknown_target"
        case unknownAction = "unknown_action"
        case outOfRange = "out_of_range"
        case interlock
        case deviceOffline = "device_offline"
        case unavailable
        // Control socket only (CONTRACT.md 3).
        /// Not run: the control loop did not take the command in time (it never runs later).
        case timeout
        /// Too many control connections (of this user, or in all).
        case busy
        /// The peer's user or groups may not make this request.
        case permissionDenied = "permission_denied"
        /// The agent is stopping.
        case stopping
    }

    public var code: Code
    public var message: String
    public var id: String?

    public init(_ code: Code, _ message: String, id: String? = nil) {
        self.code = code
        self.message = message
        self.id = id
    }

    public init(code: Code, message: String, id: String? = nil) {
        self.init(code, message, id: id)
    }

    /// The control socket's answer for this refusal.
    public var response: ControlResponse { .failure(code, message) }

    public var description: String { "\(code.rawValue): \(message)" + (id.map { " (command \($0))" } ?? "") }
}
