import Foundation
import Yams

/// A YAML value with where it came from (file, line, dotted key path), so that every check
/// can throw a `ConfigError` a technician can act on. Wraps Yams' composed `Node` tree:
/// scalars are read from their raw text (never through YAML 1.1 type guessing, so `on:`,
/// `N` and `23:00` stay what was written).
struct YAMLValue {
    let node: Node
    let file: String
    /// Dotted key path from the document root; "" for the root.
    let path: String
    /// Line of the key that introduced this value (nil for the root or list items).
    let keyLine: Int?

    /// Line to report for a problem with this value.
    var line: Int? {
        if isNull, let keyLine { return keyLine }
        return node.mark?.line ?? keyLine
    }

    /// Line to report for a problem with the key itself (missing children, wrong name).
    var ownerLine: Int? { keyLine ?? node.mark?.line }

    func error(_ message: String) -> ConfigError {
        ConfigError(file: file, line: line, key: path, message: message)
    }

    func keyError(_ message: String) -> ConfigError {
        ConfigError(file: file, line: ownerLine, key: path, message: message)
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// `key:` with nothing, `~` or `null` (plain, not quoted).
    var isNull: Bool {
        guard case .scalar(let s) = node else { return false }
        return s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    /// "a mapping", "a list", "the value "x"", for type errors.
    var shape: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s): return isNull ? "nothing" : "\"\(s.string)\""
        }
    }

    // MARK: Mappings

    /// This value as a mapping with a fixed set of keys: unknown keys (with a "did you mean"),
    /// then missing required keys, are reported in document order. A null value is an empty mapping.
    func map(allowed: [String], required: [String] = []) throws(ConfigError) -> YAMLMap {
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
    func map(allowed: [String], required: [String] = [], reporting diagnostics: ConfigDiagnostics) throws(ConfigError) -> YAMLMap {
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
    func openMap() throws(ConfigError) -> [(key: String, value: YAMLValue)] {
        if isNull { return [] }
        guard case .mapping(let mapping) = node else {
            throw error("expected a mapping (key: value), found \(shape)")
        }
        var result: [(key: String, value: YAMLValue)] = []
        for (k, v) in mapping {
            guard case .scalar(let ks) = k else {
                throw ConfigError(file: file, line: k.mark?.line, key: path, message: "a key must be a plain name, found \(YAMLValue(node: k, file: file, path: path, keyLine: nil).shape)")
            }
            let name = ks.string
            if name == "<<" {
                throw ConfigError(file: file, line: k.mark?.line, key: path, message: "YAML merge keys (<<) are not supported; write the keys out")
            }
            result.append((name, YAMLValue(node: v, file: file, path: childPath(name), keyLine: k.mark?.line)))
        }
        return result
    }

    // MARK: Lists

    /// This value as a list; a null value is an empty list.
    func list() throws(ConfigError) -> [YAMLValue] {
        if isNull { return [] }
        guard case .sequence(let seq) = node else {
            throw error("expected a list ([a, b] or one \"- item\" per line), found \(shape)")
        }
        return seq.enumerated().map { i, n in
            YAMLValue(node: n, file: file, path: "\(path)[\(i)]", keyLine: n.mark?.line ?? line)
        }
    }

    // MARK: Scalars

    /// The raw text of a scalar (quoted or not); not empty.
    func string() throws(ConfigError) -> String {
        guard case .scalar(let s) = node else { throw error("expected a single value, found \(shape)") }
        if isNull || s.string.isEmpty { throw error("has no value") }
        return s.string
    }

    /// A name used in topics and references: `[a-z0-9-]+`.
    func id(_ what: String = "name") throws(ConfigError) -> String {
        let s = try string()
        guard ConfigSyntax.isID(s) else {
            throw error("bad \(what) \"\(s)\" (use lowercase letters, digits and \"-\")")
        }
        return s
    }

    /// A whole number (decimal or 0x hex) within `range`.
    func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let s = try string()
        guard let v = ConfigSyntax.integer(s) else { throw error("expected a whole number, found \"\(s)\"") }
        guard range.contains(v) else { throw error("\(v) is out of range (\(range.lowerBound) to \(range.upperBound))") }
        return v
    }

    /// A finite number within `range`.
    func double(in range: ClosedRange<Double>) throws(ConfigError) -> Double {
        let s = try string()
        guard let v = Double(s), v.isFinite else { throw error("expected a number, found \"\(s)\"") }
        guard range.contains(v) else {
            throw error("\(s) is out of range (\(ConfigSyntax.plain(range.lowerBound)) to \(ConfigSyntax.plain(range.upperBound)))")
        }
        return v
    }

    /// true/false (also yes/no).
    func bool() throws(ConfigError) -> Bool {
        let s = try string()
        switch s.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw error("expected true or false, found \"\(s)\"")
        }
    }

    /// A duration with a unit (`500ms`, `10s`, `5m`, `2h`, `7d`), positive unless `allowZero`.
    func duration(allowZero: Bool = false, max: Duration? = nil) throws(ConfigError) -> Duration {
        let s = try string()
        guard let d = ConfigSyntax.duration(s) else {
            throw error("bad duration \"\(s)\" (use a number with a unit: 500ms, 10s, 5m, 7d)")
        }
        if d == .zero && !allowZero { throw error("must be longer than 0") }
        if let max, d > max { throw error("\(s) is too long (at most \(ConfigSyntax.format(max)))") }
        return d
    }

    /// A file-system path; relative paths resolve against `base`.
    func path(relativeTo base: String) throws(ConfigError) -> String {
        ConfigSyntax.resolve(try string(), against: base)
    }
}

/// A mapping's entries in document order.
typealias YAMLEntries = [(key: String, value: YAMLValue)]

/// A mapping checked against its allowed keys.
struct YAMLMap {
    let owner: YAMLValue
    let entries: [(key: String, value: YAMLValue)]

    /// Whether the key is written (even with a null value).
    func contains(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// The value, or nil when absent or null.
    subscript(_ key: String) -> YAMLValue? {
        guard let v = entries.first(where: { $0.key == key })?.value, !v.isNull else { return nil }
        return v
    }

    /// The value; absent or null is an error naming the key.
    func required(_ key: String) throws(ConfigError) -> YAMLValue {
        guard let v = entries.first(where: { $0.key == key })?.value else {
            throw ConfigError(file: owner.file, line: owner.ownerLine, key: owner.childPath(key), message: "missing required key \"\(key)\"")
        }
        if v.isNull { throw v.error("has no value") }
        return v
    }
}

/// Reading and composing YAML files into located values.
enum YAMLFile {
    /// Reads a UTF-8 file; errors name `path` as given.
    static func read(_ path: String) throws(ConfigError) -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ConfigError(file: path, line: nil, key: "", message: "file not found")
        }
        if isDir.boolValue { throw ConfigError(file: path, line: nil, key: "", message: "is a folder, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: nil, key: "", message: "cannot read the file (permissions?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, key: "", message: "not UTF-8 text")
        }
        return text
    }

    /// Composes the single YAML document of `text`; syntax errors carry their line.
    ///
    /// Keys are plain names in every file here, and must be before composing: Yams checks each
    /// mapping for duplicate keys by hashing the key nodes, and an alias used as a key stands
    /// for its whole anchored tree, so nested aliases as keys (a "billion laughs" of 300 bytes)
    /// would take exponential time. When the text has a `*`, it is first composed with every
    /// `*` made inert (aliases become plain scalars in the same places, so nothing expands),
    /// and an alias or a list or mapping used as a key is refused with its line.
    static func parse(_ text: String, file: String) throws(ConfigError) -> YAMLValue {
        if text.contains("*") {
            let inert = text.replacingOccurrences(of: "*", with: inertAsterisk)
            if let root = try compose(inert, file: file, restoring: true) {
                try refuseComplexKeys(root, file: file)
            }
        }
        guard let root = try compose(text, file: file) else {
            throw ConfigError(file: file, line: 1, key: "", message: "the file is empty")
        }
        return YAMLValue(node: root, file: file, path: "", keyLine: nil)
    }

    /// Stands for `*` in the inert pass (a private-use character: one character, as `*` is).
    private static let inertAsterisk = "\u{E000}"

    private static func compose(_ text: String, file: String, restoring: Bool = false) throws(ConfigError) -> Node? {
        do {
            return try Yams.compose(yaml: text)
        } catch {
            var e = (error as? YamlError).map { translate($0, file: file) }
                ?? ConfigError(file: file, line: nil, key: "", message: "YAML error: \(error)")
            if restoring {
                e.message = e.message.replacingOccurrences(of: inertAsterisk, with: "*")
                e.key = e.key.replacingOccurrences(of: inertAsterisk, with: "*")
            }
            throw e
        }
    }

    /// Every mapping key of the (alias-free) tree is a scalar that was not an alias.
    private static func refuseComplexKeys(_ root: Node, file: String) throws(ConfigError) {
        var pending: [(node: Node, path: String)] = [(root, "")]
        while let (node, path) = pending.popLast() {
            switch node {
            case .mapping(let mapping):
                for (k, v) in mapping {
                    let childPath: String
                    switch k {
                    case .scalar(let s) where !(s.style == .plain && s.string.hasPrefix(inertAsterisk)):
                        childPath = path.isEmpty ? s.string : "\(path).\(s.string)"
                    default:
                        let found: String
                        switch k {
                        case .scalar(let s): found = "an alias (\(s.string.replacingOccurrences(of: inertAsterisk, with: "*")))"
                        case .sequence: found = "a list"
                        default: found = "a mapping"
                        }
                        throw ConfigError(file: file, line: k.mark?.line, key: path, message: "a key must be a plain name, found \(found)")
                    }
                    pending.append((v, childPath))
                }
            case .sequence(let sequence):
                for (i, item) in sequence.enumerated() { pending.append((item, "\(path)[\(i)]")) }
            case .scalar, .alias:
                break
            }
        }
    }

    static func translate(_ e: YamlError, file: String) -> ConfigError {
        func located(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> ConfigError {
            var msg = "YAML syntax: \(problem)"
            if let context { msg += " (\(context.text) at line \(context.mark.line))" }
            return ConfigError(file: file, line: mark.line, key: "", message: msg)
        }
        switch e {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return located(mark, problem, context)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ConfigError(file: file, line: context.mark.line, key: duplicates.first ?? "", message: "duplicate key \(names) in one mapping")
        case .reader(let problem, _, _, _):
            return ConfigError(file: file, line: nil, key: "", message: "cannot read the text: \(problem)")
        default:
            return ConfigError(file: file, line: nil, key: "", message: "YAML error: \(e)")
        }
    }
}

/// "Did you mean" for misspelt keys and names.
enum Suggest {
    /// The closest candidate when it is plausibly a typo of `word`.
    static func hint(_ word: String, among candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let w = word.lowercased()
        for c in candidates {
            let lc = c.lowercased()
            var d = distance(w, lc)
            if d > 0, w.count >= 4, lc.hasPrefix(w) || w.hasPrefix(lc) { d = min(d, 2) }
            let limit = max(1, min(3, c.count / 3))
            if d <= limit, best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    /// " (did you mean "x"?)" or "".
    static func suffix(_ word: String, among candidates: some Sequence<String>) -> String {
        hint(word, among: candidates).map { " (did you mean \"\($0)\"?)" } ?? ""
    }

    /// Edit distance counting insertions, deletions, substitutions and swaps of two
    /// neighbouring characters (optimal string alignment): "hodl" is 1 from "hold".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = Swift.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = Swift.min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
