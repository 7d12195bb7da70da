/// A JSON value written with its keys in the order given, so replies read `{"ok":true,...}` first.
enum JSON: Sendable {
    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    /// Compact JSON text on one line.
    var text: String {
        var out = ""
        write(to: &out)
        return out
    }

    private func write(to out: inout String) {
        switch self {
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .number(d):
            guard d.isFinite else { out += "null"; return }
            let rounded = (d * 1000).rounded() / 1000
            if rounded == rounded.rounded(), abs(rounded) < 1e15 {
                out += String(Int(rounded))
            } else {
                out += String(rounded)
            }
        case let .string(s): JSON.quote(s, into: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case let .object(pairs):
            out += "{"
            for (i, (key, value)) in pairs.enumerated() {
                if i > 0 { out += "," }
                JSON.quote(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    private static func quote(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    /// `{"ok":true, ...fields}`.
    static func ok(_ fields: [(String, JSON)] = []) -> String {
        JSON.object([("ok", .bool(true))] + fields).text
    }

    /// `{"ok":false,"error":"..."}`.
    static func failure(_ message: String) -> String {
        JSON.object([("ok", .bool(false)), ("error", .string(message))]).text
    }
}
