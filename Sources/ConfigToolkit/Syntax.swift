/// Durations as the config files write them: a number and a unit, exact to the nanosecond.
package enum ConfigDuration {
    /// `500ms`, `10s`, `1.5s`, `5m`, `2h`, `7d` (a non-negative number and a unit, no space),
    /// and `250us` when `microseconds`. A bare number is refused: the unit is never guessed.
    /// Exact to the nanosecond (whole units in integers, the fraction rounded to the nearest
    /// nanosecond); below 4e18 ns.
    package static func parse(_ text: String, microseconds: Bool = false) -> Duration? {
        let suffix: String
        let nanosPerUnit: Int64
        switch true {
        case microseconds && text.hasSuffix("us"): (suffix, nanosPerUnit) = ("us", 1_000)
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
    /// `parse(format(d)) == d` for every non-negative `d` in whole nanoseconds below 4e18 ns.
    package static func format(_ d: Duration) -> String {
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
}

/// The small scalar syntaxes shared by the config files: ids, whole numbers, plain numbers.
package enum ConfigScalars {
    /// Ids used in topics and references: `[a-z0-9-]+`, at most 64 characters.
    package static func isID(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 64 && text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }

    /// Decimal (`17`, `-3`, `08`) or hex (`0x1F`) whole number.
    package static func integer(_ text: String) -> Int? {
        let lower = text.lowercased()
        if lower.hasPrefix("0x") { return Int(lower.dropFirst(2), radix: 16) }
        return Int(text)
    }

    /// `1` for 1.0, `0.5` for 0.5 (range messages).
    package static func plain(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}

/// `host:port` addresses: a name or IPv4 address, or an IPv6 address in brackets, then an
/// optional port (`127.0.0.1:502`, `[::1]:1883`, `broker.example`).
package enum HostPort {
    /// "host:port", "[v6]:port", "host" -> (host, port text); nil when malformed (no host, a
    /// space in it, an empty port, or a bare IPv6 address whose colons hide the port).
    package static func split(_ s: String) -> (host: String, port: String?)? {
        var host: Substring, port: Substring?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                port = after.dropFirst()
            }
        } else {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty, !host.contains(" "), port.map({ !$0.isEmpty }) ?? true else { return nil }
        return (String(host), port.map(String.init))
    }

    /// `split` with the port required and a number in `ports`.
    package static func parse(_ s: String, ports: ClosedRange<Int> = 1...65535) -> (host: String, port: Int)? {
        guard let (host, portText) = split(s), let portText, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
              let port = Int(portText), ports.contains(port) else { return nil }
        return (host, port)
    }
}
