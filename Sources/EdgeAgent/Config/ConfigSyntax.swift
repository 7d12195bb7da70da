import Foundation

/// The small value syntaxes of the config files, shared with `edgectl` (`--for 10m`):
/// durations with a unit, wall-clock times, dusk/dawn boundaries, ids.
///
/// All parsers are total: they return nil for anything that is not exactly the syntax.
public enum ConfigSyntax {
    /// `500ms`, `10s`, `1.5s`, `5m`, `2h`, `7d` (a non-negative number and a unit, no space).
    /// A bare number is refused: the unit is never guessed. Exact to the nanosecond (whole
    /// units in integers, the fraction rounded to the nearest nanosecond); below 4e18 ns.
    public static func duration(_ text: String) -> Duration? {
        let suffix: String
        let nanosPerUnit: Int64
        switch true {
        case text.hasSuffix("ms"): (suffix, nanosPerUnit) = ("ms", 1_000_000)
        case text.hasSuffix("s"): (suffix, nanosPerUnit) = ("s", 1_000_000_000)
        case text.hasSuffix("m"): (suffix, nanosPerUnit) = ("m", 60_000_000_000)
        case text.hasSuffix("h"): (suffix, nanosPerUnit) = ("h", 3_600_000_000_000)
        case text.hasSuffix("d"): (suffix, nanosPerUnit) = ("d", 86_400_000_000_000)
        default: return nil
        }
        let number = text.dropLast(suffix.count)
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              number.first != ".", number.last != ".", number.filter({ $0 == "." }).count <= 1 else { return nil }
        let parts = number.split(separator: ".", maxSplits: 1)
        guard let whole = Int64(parts[0]) else { return nil }
        let (wholeNanos, overflow) = whole.multipliedReportingOverflow(by: nanosPerUnit)
        guard !overflow else { return nil }
        var fractionNanos: Int64 = 0
        if parts.count == 2 {
            // Less than one unit (< 2^53 ns), so a Double carries it to the nanosecond.
            guard let fraction = Double("0." + parts[1]) else { return nil }
            fractionNanos = Int64((fraction * Double(nanosPerUnit)).rounded())
        }
        let nanos = wholeNanos.addingReportingOverflow(fractionNanos)
        guard !nanos.overflow, nanos.partialValue < 4_000_000_000_000_000_000 else { return nil }
        return .nanoseconds(nanos.partialValue)
    }

    /// The shortest exact form: `500ms`, `10s`, `5m`, `2h`, `7d`, `1500ms`; below a whole
    /// millisecond, milliseconds with a fraction to the nanosecond (`0.06ms`, `2.000001ms`).
    /// `duration(format(d)) == d` for every non-negative `d` in whole nanoseconds below 4e18 ns.
    public static func format(_ d: Duration) -> String {
        let (s, atto) = d.components
        var ms = s * 1000 + atto / 1_000_000_000_000_000
        let subMillisecond = atto % 1_000_000_000_000_000
        if subMillisecond != 0 {
            var nanos = Int64((Double(subMillisecond) / 1e9).rounded())
            if nanos == 1_000_000 { ms += 1; nanos = 0 }
            if nanos != 0 {
                var digits = String(nanos)
                digits = String(repeating: "0", count: 6 - digits.count) + digits
                while digits.hasSuffix("0") { digits.removeLast() }
                return "\(ms).\(digits)ms"
            }
        }
        if ms % 1000 != 0 || ms == 0 { return "\(ms)ms" }
        let seconds = ms / 1000
        if seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

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
    public static func isID(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }

    /// Decimal (`17`, `-3`) or hex (`0x1F`) whole number.
    static func integer(_ text: String) -> Int? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return Int(lower.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// `1` for 1.0, `0.5` for 0.5 (range messages).
    static func plain(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }

    /// `path` if absolute, else `base/path`, normalised.
    static func resolve(_ path: String, against base: String) -> String {
        let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : URL(fileURLWithPath: base).appendingPathComponent(path)
        return url.standardizedFileURL.path
    }
}
