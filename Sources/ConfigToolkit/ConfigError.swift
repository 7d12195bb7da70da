/// A configuration problem, located for a technician: the file, the line, and the dotted key
/// path (`lighting.rue-liberte.hold`, `devices.lamp-01.unit`, `lighting.a.lamps[2]`).
///
/// `description` is the one-line form printed by `edge-agent` (exit 78), `edgectl config check`
/// and `edge-sim`:
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

    /// Thrown by a check whose input was already found at fault (a device whose entry is
    /// broken, a bus that did not parse): the first report stands, the follow-on is silent.
    package static let alreadyReported = ConfigError(file: "", line: nil, key: "", message: "")
}

/// Every problem found in one config, its board and its profiles, so a technician fixing a
/// file by hand sees them all in one run (`edgectl config check`, `edge-agent` at start).
///
/// Invariants: `errors` is not empty; no two are equal; the config file's own problems come
/// first, by line, then those of the other files (board, profiles) by file and line.
public struct ConfigErrors: Error, CustomStringConvertible, Sendable, Equatable {
    public var errors: [ConfigError]

    public init(_ errors: [ConfigError]) {
        precondition(!errors.isEmpty, "ConfigErrors needs at least one error")
        self.errors = errors
    }

    /// The first problem (the one `ConfigLoader.load` throws).
    public var first: ConfigError { errors[0] }

    /// One line per problem.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Collects the problems of one load; each check runs in `check`, so a problem is recorded
/// and the next check still runs. A reference type: the parsers' helpers share one.
package final class ConfigDiagnostics {
    /// At most this many are kept (a file of garbage must not print a thousand lines).
    package static let limit = 200
    package private(set) var errors: [ConfigError] = []
    package private(set) var truncated = 0

    package init() {}

    package func record(_ error: ConfigError) {
        guard error != .alreadyReported, !errors.contains(error) else { return }
        if errors.count >= Self.limit { truncated += 1; return }
        errors.append(error)
    }

    /// Runs one check; a problem is recorded and nil returned.
    package func check<T>(_ body: () throws(ConfigError) -> T) -> T? {
        do { return try body() } catch { record(error); return nil }
    }

    /// The problems in report order (see `ConfigErrors`), or nil when there are none.
    package func sorted(mainFile: String) -> ConfigErrors? {
        guard !errors.isEmpty else { return nil }
        var ordered = errors.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if (x.file == mainFile) != (y.file == mainFile) { return x.file == mainFile }
            if x.file != y.file { return x.file < y.file }
            if x.line != y.line { return (x.line ?? 0) < (y.line ?? 0) }
            return a.offset < b.offset
        }.map(\.element)
        if truncated > 0 {
            ordered.append(ConfigError(file: mainFile, line: nil, key: "", message: "\(truncated) more problems not shown"))
        }
        return ConfigErrors(ordered)
    }
}
