/// A YAML value with where it came from (file, line, dotted key path), so that every check
/// can throw a `ConfigError` a technician can act on. Wraps the composed `YAMLNode` tree:
/// scalars are read from their raw text (never through YAML 1.1 type guessing, so `on:`,
/// `N` and `23:00` stay what was written).
///
/// How the readers type a scalar (the same whether it is quoted or not, except null):
/// - null: plain empty, `~`, `null`, `Null`, `NULL` (a quoted "null" or "" is text);
/// - `bool()`: `true`/`yes` and `false`/`no`, any case (`on`/`off`/`y`/`n` are refused);
/// - `int(in:)`: decimal with an optional `-` (leading zeros are decimal: `08` is 8) or `0x` hex;
/// - `double(in:)`: Swift's `Double(_:)` syntax, finite only (`1e3`, `.5`; not `.inf`, `nan`);
/// - `string()`: the text as written, not empty.
package struct YAMLValue {
    package let node: YAMLNode
    package let file: String
    /// Dotted key path from the document root; "" for the root.
    package let path: String
    /// Line of the key that introduced this value (nil for the root or list items).
    package let keyLine: Int?

    package init(node: YAMLNode, file: String, path: String, keyLine: Int?) {
        self.node = node; self.file = file; self.path = path; self.keyLine = keyLine
    }

    /// Line to report for a problem with this value.
    package var line: Int? {
        if isNull, let keyLine { return keyLine }
        return node.mark.line
    }

    /// Line to report for a problem with the key itself (missing children, wrong name).
    package var ownerLine: Int? { keyLine ?? node.mark.line }

    package func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, key: path, message: message)
    }

    package func keyError(_ message: String) -> ConfigError {
        ConfigError(file: file, line: ownerLine, key: path, message: message)
    }

    package func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// `key:` with nothing, `~` or `null` (plain, not quoted).
    package var isNull: Bool {
        guard case .scalar(let s) = node else { return false }
        return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// "a mapping", "a list", "the value "x"", for type errors.
    package var shape: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let s): return isNull ? "nothing" : "\"\(s.string)\""
        }
    }

    // MARK: Mappings

    /// This value as a mapping with a fixed set of keys: unknown keys (with a "did you mean"),
    /// then missing required keys, are reported in document order. A null value is an empty mapping.
    package func map(allowed: [String], required: [String] = []) throws(ConfigError) -> YAMLMap {
        let entries = try openMap()
        for entry in entries where !allowed.contains(entry.key) {
            let hint = Suggest.hint(entry.key, among: allowed).map { " (did you mean \"\($0)\"?)" }
                ?? " (expected one of: \(allowed.joined(separator: ", ")))"
            throw ConfigError(file: file, line: entry.value.keyLine, key: entry.value.path, message: "unknown key \"\(entry.key)\"\(hint)")
        }
        let map = YAMLMap(owner: self, entries: entries)
        for key in required where !map.contains(key) {
            throw ConfigError(file: file, line: ownerLine, key: childPath(key), message: "missing required key \"\(key)\"")
        }
        return map
    }

    /// `map(allowed:required:)` that records every unknown key and every missing required
    /// key in `diagnostics` and goes on (unknown keys are then never read); throws only when
    /// this value is not a mapping at all.
    package func map(allowed: [String], required: [String] = [], reporting diagnostics: ConfigDiagnostics) throws(ConfigError) -> YAMLMap {
        let entries = try openMap()
        for entry in entries where !allowed.contains(entry.key) {
            let hint = Suggest.hint(entry.key, among: allowed).map { " (did you mean \"\($0)\"?)" }
                ?? " (expected one of: \(allowed.joined(separator: ", ")))"
            diagnostics.record(ConfigError(file: file, line: entry.value.keyLine, key: entry.value.path, message: "unknown key \"\(entry.key)\"\(hint)"))
        }
        let map = YAMLMap(owner: self, entries: entries)
        for key in required where !map.contains(key) {
            diagnostics.record(ConfigError(file: file, line: ownerLine, key: childPath(key), message: "missing required key \"\(key)\""))
        }
        return map
    }

    /// This value as a mapping whose keys are names chosen by the user (devices, buses ...),
    /// in document order. A null value is an empty mapping.
    package func openMap() throws(ConfigError) -> [(key: String, value: YAMLValue)] {
        if isNull { return [] }
        guard case .mapping(let mapping, _) = node else {
            throw error("expected a mapping (key: value), found \(shape)")
        }
        var result: [(key: String, value: YAMLValue)] = []
        for (k, v) in mapping {
            guard case .scalar(let ks) = k else {
                throw ConfigError(file: file, line: k.mark.line, key: path, message: "a key must be a plain name, found \(YAMLValue(node: k, file: file, path: path, keyLine: nil).shape)")
            }
            let name = ks.string
            if name == "<<" {
                throw ConfigError(file: file, line: k.mark.line, key: path, message: "YAML merge keys (<<) are not supported; write the keys out")
            }
            result.append((name, YAMLValue(node: v, file: file, path: childPath(name), keyLine: k.mark.line)))
        }
        return result
    }

    // MARK: Lists

    /// This value as a list; a null value is an empty list.
    package func list() throws(ConfigError) -> [YAMLValue] {
        if isNull { return [] }
        guard case .sequence(let seq, _) = node else {
            throw error("expected a list ([a, b] or one \"- item\" per line), found \(shape)")
        }
        return seq.enumerated().map { i, n in
            YAMLValue(node: n, file: file, path: "\(path)[\(i)]", keyLine: n.mark.line)
        }
    }

    // MARK: Scalars

    /// The raw text of a scalar (quoted or not); not empty.
    package func string() throws(ConfigError) -> String {
        guard case .scalar(let s) = node else { throw error("expected a single value, found \(shape)") }
        if isNull || s.string.isEmpty { throw error("has no value") }
        return s.string
    }

    /// A name used in topics and references: `[a-z0-9-]+`.
    package func id(_ what: String = "name") throws(ConfigError) -> String {
        let s = try string()
        guard ConfigScalars.isID(s) else {
            throw error("bad \(what) \"\(s)\" (use lowercase letters, digits and \"-\")")
        }
        return s
    }

    /// A whole number (decimal or 0x hex) within `range`.
    package func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let s = try string()
        guard let v = ConfigScalars.integer(s) else { throw error("expected a whole number, found \"\(s)\"") }
        guard range.contains(v) else { throw error("\(v) is out of range (\(range.lowerBound) to \(range.upperBound))") }
        return v
    }

    /// A finite number within `range`.
    package func double(in range: ClosedRange<Double>) throws(ConfigError) -> Double {
        let s = try string()
        guard let v = Double(s), v.isFinite else { throw error("expected a number, found \"\(s)\"") }
        guard range.contains(v) else {
            throw error("\(s) is out of range (\(ConfigScalars.plain(range.lowerBound)) to \(ConfigScalars.plain(range.upperBound)))")
        }
        return v
    }

    /// true/false (also yes/no).
    package func bool() throws(ConfigError) -> Bool {
        let s = try string()
        switch s.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw error("expected true or false, found \"\(s)\"")
        }
    }

    /// A duration with a unit (`500ms`, `10s`, `5m`, `2h`, `7d`), positive unless `allowZero`.
    package func duration(allowZero: Bool = false, max: Duration? = nil) throws(ConfigError) -> Duration {
        let s = try string()
        guard let d = ConfigDuration.parse(s) else {
            throw error("bad duration \"\(s)\" (use a number with a unit: 500ms, 10s, 5m, 7d)")
        }
        if d == .zero && !allowZero { throw error("must be longer than 0") }
        if let max, d > max { throw error("\(s) is too long (at most \(ConfigDuration.format(max)))") }
        return d
    }
}

/// A mapping's entries in document order.
package typealias YAMLEntries = [(key: String, value: YAMLValue)]

/// A mapping checked against its allowed keys.
package struct YAMLMap {
    package let owner: YAMLValue
    package let entries: [(key: String, value: YAMLValue)]

    /// Whether the key is written (even with a null value).
    package func contains(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// The value, or nil when absent or null.
    package subscript(_ key: String) -> YAMLValue? {
        guard let v = entries.first(where: { $0.key == key })?.value, !v.isNull else { return nil }
        return v
    }

    /// The value; absent or null is an error naming the key.
    package func required(_ key: String) throws(ConfigError) -> YAMLValue {
        guard let v = entries.first(where: { $0.key == key })?.value else {
            throw ConfigError(file: owner.file, line: owner.ownerLine, key: owner.childPath(key), message: "missing required key \"\(key)\"")
        }
        if v.isNull { throw v.error("has no value") }
        return v
    }
}

/// Reading and composing YAML files into located values.
package enum YAMLFile {
    /// Reads a UTF-8 file; errors name `path` as given.
    package static func read(_ path: String) throws(ConfigError) -> String {
        func fault(_ message: String) -> ConfigError { ConfigError(file: path, line: nil, key: "", message: message) }
        switch ConfigFile.read(path) {
        case .success(let bytes):
            guard let text = ConfigFile.utf8(bytes) else { throw fault("not UTF-8 text") }
            return text
        case .failure(.notFound): throw fault("file not found")
        case .failure(.isFolder): throw fault("is a folder, not a file")
        case .failure(.unreadable): throw fault("cannot read the file (permissions?)")
        }
    }

    /// Composes the single YAML document of `text` (YAMLParser's rules); syntax errors carry
    /// their line, and the key path when they are about a key.
    package static func parse(_ text: String, file: String) throws(ConfigError) -> YAMLValue {
        let root: YAMLNode?
        do { root = try YAMLParser.compose(text) } catch {
            throw ConfigError(file: file, line: error.line, key: error.path, message: error.message)
        }
        guard let root else {
            throw ConfigError(file: file, line: 1, key: "", message: "the file is empty")
        }
        return YAMLValue(node: root, file: file, path: "", keyLine: nil)
    }
}
