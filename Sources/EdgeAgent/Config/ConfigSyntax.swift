public import ConfigToolkit
import FoundationEssentials

/// A config problem located by file, line and key (ConfigToolkit's, shared with the simulator).
public typealias ConfigError = ConfigToolkit.ConfigError
/// Every problem of one config load.
public typealias ConfigErrors = ConfigToolkit.ConfigErrors

/// The small value syntaxes of the config files, shared with `edgectl` (`--for 10m`):
/// durations with a unit (ConfigToolkit's), wall-clock times, dusk/dawn boundaries, ids.
///
/// All parsers are total: they return nil for anything that is not exactly the syntax.
public enum ConfigSyntax {
    /// `500ms`, `10s`, `1.5s`, `5m`, `2h`, `7d` (a non-negative number and a unit, no space).
    /// A bare number is refused: the unit is never guessed. Exact to the nanosecond; below 4e18 ns.
    public static func duration(_ text: String) -> Duration? { ConfigDuration.parse(text) }

    /// The shortest exact form: `500ms`, `10s`, `5m`, `2h`, `7d`, `1500ms`, `0.06ms`.
    /// `duration(format(d)) == d` for every non-negative `d` in whole nanoseconds below 4e18 ns.
    public static func format(_ d: Duration) -> String { ConfigDuration.format(d) }

    /// `HH:MM`, 00:00 to 23:59 (one-digit hours allowed: `5:30`).
    public static func timeOfDay(_ text: String) -> (hour: Int, minute: Int)? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...2).contains(parts[0].count), parts[1].count == 2,
              parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
              let h = Int(parts[0]), let m = Int(parts[1]), (0...23).contains(h), (0...59).contains(m) else { return nil }
        return (h, m)
    }

    /// `dusk`, `dawn`, `dusk+15m`, `dawn-10m`, `dusk+1h` or `HH:MM`. Offsets are whole
    /// minutes, at most 6 hours either way.
    public static func dayBoundary(_ text: String) -> DayBoundary? {
        if let (h, m) = timeOfDay(text) { return .time(hour: h, minute: m) }
        for base in ["dusk", "dawn"] where text.hasPrefix(base) {
            let rest = text.dropFirst(base.count)
            var minutes = 0
            if !rest.isEmpty {
                guard let sign = rest.first, sign == "+" || sign == "-",
                      let d = duration(String(rest.dropFirst())) else { return nil }
                let (s, atto) = d.components
                guard atto == 0, s % 60 == 0, s <= 6 * 3600 else { return nil }
                minutes = Int(s / 60) * (sign == "-" ? -1 : 1)
            }
            return base == "dusk" ? .dusk(offsetMinutes: minutes) : .dawn(offsetMinutes: minutes)
        }
        return nil
    }

    /// Ids used in topics and references: `[a-z0-9-]+`, at most 64 characters.
    public static func isID(_ text: String) -> Bool { ConfigScalars.isID(text) }

    /// `path` if absolute, else `base/path`, normalised.
    static func resolve(_ path: String, against base: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }
}

extension YAMLValue {
    /// A file-system path; relative paths resolve against `base`.
    func path(relativeTo base: String) throws(ConfigError) -> String {
        ConfigSyntax.resolve(try string(), against: base)
    }
}
