/// A configuration problem, located for a technician: the file, the line, and the dotted key
/// path (`lighting.rue-liberte.hold`, `devices.lamp-01.unit`, `lighting.a.lamps[2]`).
///
/// Loading stops at the first problem found, so there is exactly one message to fix at a
/// time. `description` is the one-line form printed by `edge-agent` (exit 78) and
/// `edgectl config check`:
/// `agent.yaml:23: lighting.rue-liberte.hold: bad duration "10 s" (use a number with a unit: 500ms, 10s, 5m, 7d)`.
///
/// Invariants: `file` is the path of the file at fault (the config as given, or the resolved
/// path of a board or profile file); `line` is 1-based, nil only when the problem is not in
/// the file's text (unreadable file); `key` is empty when the problem is the whole document.
public struct ConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String
    public var line: Int?
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        text += ": "
        if !key.isEmpty { text += "\(key): " }
        return text + message
    }
}
