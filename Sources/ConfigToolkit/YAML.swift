internal import CYAML

// The one wrapper over libyaml (Debian libyaml-0-2): its parser's events composed into a tree of
// `YAMLNode`s that remember where each value was written.
//
// Rules of the composer (what a config file may hold):
// - One document per file: a second one (`---`) is refused; an empty stream has no root (nil).
// - Scalars keep their text exactly as written and their style (plain, quoted, block): nothing is
//   typed here, so `on`, `N`, `08` and `23:00` stay text; the readers decide (YAMLValue).
// - Keys are scalars. A list, a mapping or an alias as a key is refused with its line, before it
//   is composed (an alias key would stand for its whole anchored tree).
// - No two keys of one mapping have the same text.
// - An alias is the anchored node (shared, not copied), marked where the alias is written. All
//   the aliases of a document together stand for at most `aliasExpansionLimit` values (an
//   "alias bomb" of a few hundred bytes is refused, not expanded); an undefined alias is refused.
// - At most `depthLimit` nested lists and mappings (the tree is composed and freed recursively).
// - Errors carry the line and column (1-based) and the dotted path of the list or mapping at fault.

/// A position in the text: 1-based line and column (columns count characters, as libyaml does).
package struct YAMLMark: Sendable, Equatable, CustomStringConvertible {
    package var line: Int
    package var column: Int
    package init(line: Int, column: Int) { self.line = line; self.column = column }
    package var description: String { "\(line):\(column)" }

    init(_ mark: yaml_mark_t) { self.init(line: Int(mark.line) + 1, column: Int(mark.column) + 1) }
}

/// A scalar exactly as written: its text (escapes resolved, quotes removed) and how it was quoted.
package struct YAMLScalar: Sendable, Equatable {
    /// How the scalar was written; `plain` is the only style YAML types (null, booleans, numbers).
    package enum Style: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    package var string: String
    package var style: Style
    /// An explicit tag (`!!str`), as written after tag-handle expansion; nil when none.
    package var tag: String?
    package var mark: YAMLMark

    package init(_ string: String, style: Style = .plain, tag: String? = nil, mark: YAMLMark = YAMLMark(line: 1, column: 1)) {
        self.string = string; self.style = style; self.tag = tag; self.mark = mark
    }
}

/// A YAML value with its position: a scalar, a list or a mapping (entries in document order).
package enum YAMLNode: Sendable {
    case scalar(YAMLScalar)
    case sequence([YAMLNode], mark: YAMLMark)
    case mapping([(key: YAMLNode, value: YAMLNode)], mark: YAMLMark)

    /// Where the value starts (for an alias: where the alias is written).
    package var mark: YAMLMark {
        switch self {
        case .scalar(let s): return s.mark
        case .sequence(_, let mark), .mapping(_, let mark): return mark
        }
    }

    /// The text when this is a scalar.
    package var string: String? {
        if case .scalar(let s) = self { return s.string }
        return nil
    }

    func marked(_ mark: YAMLMark) -> YAMLNode {
        switch self {
        case .scalar(var s): s.mark = mark; return .scalar(s)
        case .sequence(let items, _): return .sequence(items, mark: mark)
        case .mapping(let entries, _): return .mapping(entries, mark: mark)
        }
    }
}

/// Why a text is not a usable YAML document: where (line, column, path) and what.
package struct YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based; nil only when libyaml gave no position.
    package var line: Int?
    package var column: Int?
    /// Dotted path of the mapping or list at fault (`gpio.lines`, `a[2]`); "" for the document.
    package var path: String
    package var message: String

    package init(line: Int?, column: Int?, path: String = "", message: String) {
        self.line = line; self.column = column; self.path = path; self.message = message
    }

    init(_ mark: YAMLMark, path: String = "", _ message: String) {
        self.init(line: mark.line, column: mark.column, path: path, message: message)
    }

    package var description: String {
        var text = ""
        if let line { text += "\(line):" + (column.map { "\($0):" } ?? "") + " " }
        if !path.isEmpty { text += "\(path): " }
        return text + message
    }
}

/// Composes YAML text into a `YAMLNode` tree (the rules at the top of this file).
package enum YAMLParser {
    /// Nested lists and mappings allowed.
    package static let depthLimit = 200
    /// Values all the aliases of a document may stand for together (a tree shared, never
    /// copied, so this bounds the work of whoever walks it, not memory). Well above any real
    /// config, and above FuzzRegressionTests' bomb of 10^7, which must reach its alias key.
    package static let aliasExpansionLimit = 20_000_000

    /// The root of the single document of `text`, or nil when the text holds no document
    /// (empty, blanks and comments only).
    package static func compose(_ text: String) throws(YAMLError) -> YAMLNode? {
        var text = text
        let result: Result<YAMLNode?, YAMLError> = text.withUTF8 { bytes in
            var composer = Composer()
            return composer.run(bytes)
        }
        return try result.get()
    }
}

/// One composition: the libyaml parser and the open lists and mappings.
private struct Composer {
    /// An open list or mapping.
    struct Frame {
        var mark: YAMLMark
        var anchor: String?
        var isMapping: Bool
        /// Dotted path of this collection (for errors).
        var path: String
        var items: [YAMLNode] = []
        var entries: [(key: YAMLNode, value: YAMLNode)] = []
        /// A mapping's key waiting for its value.
        var pendingKey: YAMLScalar?
        /// First mark of each key text (mappings only), and the texts seen twice.
        var seen: [String: YAMLMark] = [:]
        var duplicates: Set<String> = []
        /// Values this collection stands for, itself included (aliases expanded).
        var size = 1
    }

    var stack: [Frame] = []
    var anchors: [String: (node: YAMLNode, size: Int)] = [:]
    var aliasExpansion = 0
    var root: YAMLNode?
    var documents = 0

    mutating func run(_ bytes: UnsafeBufferPointer<UInt8>) -> Result<YAMLNode?, YAMLError> {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            return .failure(YAMLError(line: nil, column: nil, message: "YAML: out of memory"))
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress, bytes.count)
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                return .failure(Self.parserError(parser, bytes))
            }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { return .success(root) }
            do { try handle(event) } catch { return .failure(error) }
        }
    }

    mutating func handle(_ event: yaml_event_t) throws(YAMLError) {
        let mark = YAMLMark(event.start_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                throw YAMLError(mark, "a second YAML document (---) in the file; it must hold exactly one")
            }
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = s.length == 0 ? "" : String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
            let scalar = YAMLScalar(text, style: Self.style(s.style), tag: Self.string(s.tag), mark: mark)
            try deliver(.scalar(scalar), size: 1, anchor: Self.string(s.anchor), alias: nil)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            if let top = stack.last, top.isMapping, top.pendingKey == nil {
                throw YAMLError(mark, path: top.path, "a key must be a plain name, found an alias (*\(name))")
            }
            guard let (node, size) = anchors[name] else {
                throw YAMLError(mark, path: stack.last?.path ?? "", "YAML syntax: found undefined alias *\(name) (no &\(name) before it)")
            }
            aliasExpansion += size
            if aliasExpansion > YAMLParser.aliasExpansionLimit {
                throw YAMLError(mark, path: stack.last?.path ?? "",
                                "aliases stand for more than \(YAMLParser.aliasExpansionLimit) values in all (nested aliases multiply; write the values out)")
            }
            try deliver(node.marked(mark), size: size, anchor: nil, alias: name)
        case YAML_SEQUENCE_START_EVENT:
            try open(mapping: false, mark: mark, anchor: Self.string(event.data.sequence_start.anchor))
        case YAML_MAPPING_START_EVENT:
            try open(mapping: true, mark: mark, anchor: Self.string(event.data.mapping_start.anchor))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            let frame = stack.removeLast()
            if let first = frame.duplicates.sorted().first {
                let names = frame.duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
                throw YAMLError(line: frame.seen[first]?.line, column: frame.seen[first]?.column, path: first,
                                message: "duplicate key \(names) in one mapping")
            }
            let node: YAMLNode = frame.isMapping ? .mapping(frame.entries, mark: frame.mark) : .sequence(frame.items, mark: frame.mark)
            try deliver(node, size: frame.size, anchor: frame.anchor, alias: nil)
        default:
            break // stream start, document end
        }
    }

    /// Opens a list or mapping; refused as a key, and beyond the depth limit.
    mutating func open(mapping: Bool, mark: YAMLMark, anchor: String?) throws(YAMLError) {
        var path = ""
        if let top = stack.last {
            if top.isMapping {
                guard let key = top.pendingKey else {
                    throw YAMLError(mark, path: top.path, "a key must be a plain name, found \(mapping ? "a mapping" : "a list")")
                }
                path = top.path.isEmpty ? key.string : "\(top.path).\(key.string)"
            } else {
                path = "\(top.path)[\(top.items.count)]"
            }
        }
        guard stack.count < YAMLParser.depthLimit else {
            throw YAMLError(mark, path: stack.last?.path ?? "", "lists and mappings nested more than \(YAMLParser.depthLimit) deep")
        }
        stack.append(Frame(mark: mark, anchor: anchor, isMapping: mapping, path: path))
    }

    /// Hands a finished value to the open collection (or makes it the root) and records its anchor.
    mutating func deliver(_ node: YAMLNode, size: Int, anchor: String?, alias: String?) throws(YAMLError) {
        if let anchor { anchors[anchor] = (node, size) }
        guard !stack.isEmpty else { root = node; return }
        let top = stack.count - 1
        stack[top].size += size
        if !stack[top].isMapping {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            stack[top].entries.append((.scalar(key), node))
            stack[top].pendingKey = nil
        } else {
            guard case .scalar(let key) = node else { return } // collections and aliases as keys are refused earlier
            if stack[top].seen[key.string] == nil {
                stack[top].seen[key.string] = key.mark
            } else {
                stack[top].duplicates.insert(key.string)
            }
            stack[top].pendingKey = key
        }
    }

    static func style(_ style: yaml_scalar_style_t) -> YAMLScalar.Style {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: return .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: return .literal
        case YAML_FOLDED_SCALAR_STYLE: return .folded
        default: return .plain
        }
    }

    static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let p else { return nil }
        return String(cString: p)
    }

    /// libyaml's error as a `YAMLError`: the problem at its mark, with its context.
    static func parserError(_ parser: yaml_parser_t, _ bytes: UnsafeBufferPointer<UInt8>) -> YAMLError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return YAMLError(line: nil, column: nil, message: "YAML: out of memory")
        case YAML_READER_ERROR:
            // The reader has no mark: count lines up to the offending byte.
            let offset = min(Int(parser.problem_offset), bytes.count)
            var line = 1, column = 1
            for byte in bytes[..<offset] {
                if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
            }
            return YAMLError(line: line, column: column, message: "cannot read the text: \(problem)")
        default:
            var message = "YAML syntax: \(problem)"
            if let context = parser.context {
                message += " (\(String(cString: context)) at line \(parser.context_mark.line + 1))"
            }
            return YAMLError(YAMLMark(parser.problem_mark), message)
        }
    }
}
