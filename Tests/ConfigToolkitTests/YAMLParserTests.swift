import ConfigToolkit
import Testing

/// The libyaml composer: marks, scalar styles, anchors and aliases, and every refusal with its
/// line and column.
@Suite struct YAMLParserTests {
    static func compose(_ text: String) throws -> YAMLNode {
        try #require(try YAMLParser.compose(text))
    }

    static func entries(_ node: YAMLNode) -> [(key: YAMLNode, value: YAMLNode)] {
        if case .mapping(let entries, _) = node { return entries }
        return []
    }

    static func items(_ node: YAMLNode) -> [YAMLNode] {
        if case .sequence(let items, _) = node { return items }
        return []
    }

    static func scalar(_ node: YAMLNode) -> YAMLScalar? {
        if case .scalar(let s) = node { return s }
        return nil
    }

    static func error(_ text: String) -> YAMLError? {
        do { _ = try YAMLParser.compose(text); return nil } catch { return error }
    }

    @Test func marksAreOneBasedLineAndColumn() throws {
        let root = try Self.compose("# header\ngateway:\n  id: cab-0042\n  tags: [a, \"b\"]\nlist:\n  - x\n  -   y\n")
        #expect(root.mark == YAMLMark(line: 2, column: 1))
        let top = Self.entries(root)
        #expect(top.map { $0.key.string } == ["gateway", "list"])
        #expect(top[0].key.mark == YAMLMark(line: 2, column: 1))
        let gateway = Self.entries(top[0].value)
        #expect(gateway[0].key.mark == YAMLMark(line: 3, column: 3))
        #expect(gateway[0].value.mark == YAMLMark(line: 3, column: 7))
        #expect(gateway[1].value.mark == YAMLMark(line: 4, column: 9))
        #expect(Self.items(gateway[1].value)[1].mark == YAMLMark(line: 4, column: 13))
        let list = Self.items(top[1].value)
        #expect(list.map(\.mark) == [YAMLMark(line: 6, column: 5), YAMLMark(line: 7, column: 7)])
        #expect(list.map(\.string) == ["x", "y"])
    }

    @Test func scalarsKeepTheirTextAndStyle() throws {
        let root = try Self.compose("""
            a: yes
            b: "yes"
            c: 'no'
            d: 08
            e: ~
            f:
            g: |
              two
              lines
            h: >
              folded
              text
            i: "tab\\there"
            j: 23:00
            k: !!str on

            """)
        var v: [String: YAMLScalar] = [:]
        for (key, value) in Self.entries(root) { v[key.string ?? ""] = Self.scalar(value) }
        #expect(v["a"] == YAMLScalar("yes", style: .plain, mark: YAMLMark(line: 1, column: 4)))
        #expect(v["b"]?.string == "yes" && v["b"]?.style == .doubleQuoted)
        #expect(v["c"]?.string == "no" && v["c"]?.style == .singleQuoted)
        #expect(v["d"]?.string == "08" && v["d"]?.style == .plain)
        #expect(v["e"]?.string == "~")
        #expect(v["f"]?.string == "" && v["f"]?.style == .plain)
        #expect(v["g"]?.string == "two\nlines\n" && v["g"]?.style == .literal)
        #expect(v["h"]?.string == "folded text\n" && v["h"]?.style == .folded)
        #expect(v["i"]?.string == "tab\there")
        #expect(v["j"]?.string == "23:00")
        #expect(v["k"]?.string == "on" && v["k"]?.tag == "tag:yaml.org,2002:str")
    }

    @Test func anEmptyTextHasNoDocument() throws {
        #expect(try YAMLParser.compose("") == nil)
        #expect(try YAMLParser.compose("# only a comment\n\n   \n") == nil)
        // An explicit empty document is a null scalar, not "no document".
        #expect(Self.scalar(try Self.compose("---\n"))?.string == "")
    }

    @Test func aliasesStandForTheirAnchorMarkedWhereTheyAreUsed() throws {
        let root = try Self.compose("base: &level 30\nboost: *level\nlamps: &l [a, b]\nagain: *l\n")
        let top = Self.entries(root)
        #expect(top[1].value.string == "30")
        #expect(top[1].value.mark == YAMLMark(line: 2, column: 8))
        #expect(Self.items(top[3].value).map(\.string) == ["a", "b"])
        #expect(top[3].value.mark == YAMLMark(line: 4, column: 8))
        // A later anchor of the same name shadows the earlier one.
        let shadow = Self.entries(try Self.compose("a: &x 1\nb: *x\nc: &x 2\nd: *x\n"))
        #expect(shadow.map { $0.value.string } == ["1", "1", "2", "2"])
    }

    @Test func anUndefinedAliasIsRefusedWithItsPosition() {
        let e = Self.error("name: sim\ndescription: *nothing\n")
        #expect(e == YAMLError(line: 2, column: 14, path: "", message: "YAML syntax: found undefined alias *nothing (no &nothing before it)"))
    }

    @Test func keysMustBePlainNames() {
        #expect(Self.error("a: &k x\n*k : 1\n") == YAMLError(line: 2, column: 1, path: "", message: "a key must be a plain name, found an alias (*k)"))
        #expect(Self.error("gpio:\n  lines:\n    ? [a, b]\n    : 1\n") == YAMLError(line: 3, column: 7, path: "gpio.lines", message: "a key must be a plain name, found a list"))
        #expect(Self.error("list:\n  - {a: 1}: x\n") == YAMLError(line: 2, column: 5, path: "list[0]", message: "a key must be a plain name, found a mapping"))
    }

    @Test func duplicateKeysAreRefusedAtTheFirst() {
        #expect(Self.error("gateway:\n  id: a\n  name: n\n  id: b\n") == YAMLError(line: 2, column: 3, path: "id", message: "duplicate key \"id\" in one mapping"))
        #expect(Self.error("{b: 1, a: 2, b: 3, a: 4}\n")?.message == "duplicate key \"a\", \"b\" in one mapping")
        // Same text quoted or not is the same key.
        #expect(Self.error("a: 1\n\"a\": 2\n")?.line == 1)
    }

    @Test func aSecondDocumentIsRefused() {
        #expect(Self.error("a: 1\n---\nb: 2\n") == YAMLError(line: 2, column: 1, path: "", message: "a second YAML document (---) in the file; it must hold exactly one"))
        #expect(Self.error("a: 1\n...\n---\nb: 2\n")?.line == 3)
    }

    @Test func malformedTextGivesLineAndColumn() throws {
        let open = try #require(Self.error("lighting:\n  lamps: [lamp-01\n  presence: [pir-01]\n"))
        #expect(open.line == 3)
        #expect(open.column != nil)
        #expect(open.message.hasPrefix("YAML syntax: "))
        #expect(open.message.contains("at line 2"), "the context names where the list opened: \(open.message)")

        let badIndent = try #require(Self.error("a:\n  b: 1\n c: 2\n"))
        #expect(badIndent.line == 3 && badIndent.message.hasPrefix("YAML syntax: "))

        let quote = try #require(Self.error("a: \"open\nb: 1\n"))
        #expect(quote.line == 3 && quote.message.contains("found unexpected end of stream"))

        #expect(Self.error("a: 1\nb: [1, 2\n")?.line == 3)
        #expect(Self.error("a: b: c\n") == YAMLError(line: 1, column: 5, path: "", message: "YAML syntax: mapping values are not allowed in this context"))
    }

    @Test func controlCharactersAreAReaderErrorWithTheirLine() {
        let e = Self.error("a: 1\nb: x\u{01}y\n")
        #expect(e?.line == 2 && e?.column == 5)
        #expect(e?.message == "cannot read the text: control characters are not allowed")
    }

    @Test func tabsIndentNothingButStayInsideValues() throws {
        let e = try #require(Self.error("gateway:\n\tid: a\n"))
        #expect(e.line == 2)
        #expect(e.message.contains("cannot start any token"), "\(e.message)")
        let root = try Self.compose("a:\t1   \nb: \"x\ty\"\nc: x\ty\n")
        #expect(Self.entries(root).map { $0.value.string } == ["1", "x\ty", "x\ty"])
    }

    @Test func aliasBombsAreRefusedBeforeTheyExpand() throws {
        var lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"]
        for i in 1...8 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ",") + "]") }
        let e = try #require(Self.error(lines.joined(separator: "\n") + "\n"))
        #expect(e.line == 8, "a7 is the first to pass 2x10^7 values: \(e)")
        #expect(e.path == "a7")
        #expect(e.message.contains("aliases stand for more than 20000000 values"))
        // Aliases that stand for less than the limit are fine.
        lines = Array(lines.prefix(4))
        #expect(Self.items(Self.entries(try Self.compose(lines.joined(separator: "\n")))[3].value).count == 10)
    }

    @Test func nestingIsLimited() throws {
        let deep = String(repeating: "[", count: YAMLParser.depthLimit) + String(repeating: "]", count: YAMLParser.depthLimit)
        _ = try Self.compose(deep)
        let tooDeep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let e = try #require(Self.error(tooDeep))
        #expect(e.line == 1 && e.column == YAMLParser.depthLimit + 1)
        #expect(e.message == "lists and mappings nested more than \(YAMLParser.depthLimit) deep")
    }

    @Test func aHugeFileComposesWithItsMarks() throws {
        // 50 000 devices, 200 000 lines, about 6 MB.
        var text = "devices:\n"
        for i in 0..<50_000 {
            text += "  lamp-\(i):\n    bus: field\n    unit: \(i % 247 + 1)\n    profile: \"ref-luminaire\"\n"
        }
        let root = try Self.compose(text)
        let devices = Self.entries(Self.entries(root)[0].value)
        #expect(devices.count == 50_000)
        let last = try #require(devices.last)
        #expect(last.key.string == "lamp-49999")
        #expect(last.key.mark.line == 2 + 4 * 49_999)
        #expect(Self.entries(last.value)[2].value.string == "ref-luminaire")
        // The same file with one fault at its end: the line is exact.
        let e = try #require(Self.error(text + "  lamp-x: [\n"))
        #expect(e.line == 200_003)
    }

    @Test func nonASCIITextKeepsItsCharactersAndColumns() throws {
        let root = try Self.compose("nom: \"Rue de la Libert\u{E9}\"\nlieu: Dijon \u{1F6A6}\n")
        let e = Self.entries(root)
        #expect(e[0].value.string == "Rue de la Libert\u{E9}")
        #expect(e[1].value.string == "Dijon \u{1F6A6}")
        #expect(Self.error("\u{E9}t\u{E9}: [\n")?.line == 2)
    }
}
