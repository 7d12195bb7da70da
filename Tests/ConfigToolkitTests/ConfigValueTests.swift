import ConfigToolkit
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The readers over the composed tree (how scalars are typed, located errors), the small
/// syntaxes (durations, host:port, did-you-mean) and reading files.
@Suite struct ConfigValueTests {
    static func value(_ text: String, file: String = "t.yaml") throws -> YAMLValue {
        try YAMLFile.parse(text, file: file)
    }

    static func field(_ yaml: String) throws -> YAMLValue {
        let root = try value("v: \(yaml)\n")
        return try #require(try root.openMap().first?.value)
    }

    // MARK: scalar typing (the loaders' rules: raw text, never YAML 1.1 guessing)

    @Test(arguments: ["", "~", "null", "Null", "NULL"])
    func plainNullsAreNull(_ text: String) throws {
        let v = try Self.field(text)
        #expect(v.isNull)
        #expect(v.shape == "nothing")
        #expect(throws: ConfigError(file: "t.yaml", line: 1, key: "v", message: "has no value")) { try v.string() }
        #expect(try v.list().isEmpty)
        #expect(try v.openMap().isEmpty)
    }

    @Test(arguments: ["\"\"", "''", "\"~\"", "'null'", "nULL", "none"])
    func quotedOrOtherNullsAreNotNull(_ text: String) throws {
        #expect(!(try Self.field(text)).isNull)
    }

    @Test(arguments: [("true", true), ("yes", true), ("Yes", true), ("TRUE", true), ("\"yes\"", true),
                      ("false", false), ("no", false), ("NO", false), ("'no'", false)])
    func booleansAreTrueYesFalseNoQuotedOrNot(_ text: String, _ expected: Bool) throws {
        #expect(try Self.field(text).bool() == expected)
    }

    @Test(arguments: ["on", "off", "y", "n", "1", "0", "~"])
    func otherYAML11BooleansAreRefused(_ text: String) throws {
        let v = try Self.field(text)
        #expect(throws: ConfigError.self) { try v.bool() }
    }

    @Test func onAndOffStayText() throws {
        #expect(try Self.field("on").string() == "on")
        #expect(try Self.field("off").string() == "off")
        #expect(try Self.field("N").string() == "N")
        #expect(try Self.field("23:00").string() == "23:00")
        #expect(try Self.field("\"yes\"").string() == "yes")
        #expect(try Self.value("on: 1\n").openMap().first?.key == "on")
    }

    @Test(arguments: [("08", 8), ("010", 10), ("-3", -3), ("0x1F", 31), ("0X10", 16), ("\"42\"", 42), ("'7'", 7)])
    func wholeNumbersAreDecimalOrHex(_ text: String, _ expected: Int) throws {
        #expect(try Self.field(text).int(in: -100...100) == expected)
    }

    @Test(arguments: ["1.5", "1e3", "0o17", "1_000", "+", "seven", "0b101"])
    func otherNumbersAreNotWhole(_ text: String) throws {
        let v = try Self.field(text)
        #expect(throws: ConfigError(file: "t.yaml", line: 1, key: "v", message: "expected a whole number, found \"\(text)\"")) {
            try v.int(in: 0...100_000)
        }
    }

    @Test func numbersAreFiniteAndInRange() throws {
        #expect(try Self.field("47.3220").double(in: -90...90) == 47.322)
        #expect(try Self.field("1e1").double(in: 0...100) == 10)
        #expect(try Self.field(".5").double(in: 0...1) == 0.5)
        #expect(try Self.field("08").double(in: 0...10) == 8)
        for text in [".inf", "nan", "inf", "1,5"] {
            let v = try Self.field(text)
            #expect(throws: ConfigError(file: "t.yaml", line: 1, key: "v", message: "expected a number, found \"\(text)\"")) { try v.double(in: 0...1) }
        }
        let out = try Self.field("1.5")
        #expect(throws: ConfigError(file: "t.yaml", line: 1, key: "v", message: "1.5 is out of range (0 to 1)")) { try out.double(in: 0...1) }
        let half = try Self.field("2")
        #expect(throws: ConfigError(file: "t.yaml", line: 1, key: "v", message: "2 is out of range (0 to 0.5)")) { try half.double(in: 0...0.5) }
    }

    // MARK: located errors

    @Test func errorsNameTheFileLineAndKeyPath() throws {
        let root = try Self.value("""
            lighting:
              rue-liberte:
                hodl: 60s
                lamps: [lamp-01, LAMP]
                fade: "10 s"

            """, file: "agent.yaml")
        let group = try #require(try root.map(allowed: ["lighting"]).required("lighting").openMap().first?.value)
        #expect(throws: ConfigError(file: "agent.yaml", line: 3, key: "lighting.rue-liberte.hodl", message: "unknown key \"hodl\" (did you mean \"hold\"?)")) {
            try group.map(allowed: ["hold", "lamps", "fade"])
        }
        #expect(throws: ConfigError(file: "agent.yaml", line: 2, key: "lighting.rue-liberte.base", message: "missing required key \"base\"")) {
            try group.map(allowed: ["hodl", "lamps", "fade", "base"], required: ["base"])
        }
        let m = try group.map(allowed: ["hodl", "lamps", "fade"])
        let lamps = try m.required("lamps").list()
        #expect(throws: ConfigError(file: "agent.yaml", line: 4, key: "lighting.rue-liberte.lamps[1]", message: "bad lamp \"LAMP\" (use lowercase letters, digits and \"-\")")) {
            try lamps[1].id("lamp")
        }
        #expect(throws: ConfigError(file: "agent.yaml", line: 5, key: "lighting.rue-liberte.fade", message: "bad duration \"10 s\" (use a number with a unit: 500ms, 10s, 5m, 7d)")) {
            try m.required("fade").duration()
        }
        #expect(throws: ConfigError(file: "agent.yaml", line: 4, key: "lighting.rue-liberte.lamps", message: "expected a mapping (key: value), found a list")) {
            try m.required("lamps").openMap()
        }
        #expect(try m.required("hodl").duration(max: .seconds(60)) == .seconds(60))
        #expect(throws: ConfigError(file: "agent.yaml", line: 3, key: "lighting.rue-liberte.hodl", message: "60s is too long (at most 30s)")) {
            try m.required("hodl").duration(max: .seconds(30))
        }
        // The description is the one line edge-agent and edgectl print.
        #expect(ConfigError(file: "agent.yaml", line: 23, key: "lighting.a.hold", message: "m").description == "agent.yaml:23: lighting.a.hold: m")
        #expect(ConfigError(file: "agent.yaml", line: nil, key: "", message: "file not found").description == "agent.yaml: file not found")
    }

    @Test func syntaxErrorsBecomeConfigErrors() throws {
        #expect(throws: ConfigError(file: "e.yaml", line: 1, key: "", message: "the file is empty")) { try Self.value("", file: "e.yaml") }
        #expect(throws: ConfigError(file: "e.yaml", line: 1, key: "", message: "the file is empty")) { try Self.value("# nothing\n", file: "e.yaml") }
        #expect(throws: ConfigError(file: "e.yaml", line: 2, key: "a", message: "duplicate key \"a\" in one mapping")) {
            try Self.value("x: 1\na: 1\na: 2\n", file: "e.yaml")
        }
        #expect(throws: ConfigError(file: "e.yaml", line: 2, key: "", message: "YAML syntax: found undefined alias *n (no &n before it)")) {
            try Self.value("a: 1\nb: *n\n", file: "e.yaml")
        }
        #expect(throws: ConfigError(file: "e.yaml", line: 1, key: "", message: "YAML merge keys (<<) are not supported; write the keys out")) {
            try Self.value("<<: {a: 1}\n", file: "e.yaml").openMap()
        }
    }

    // MARK: durations

    @Test(arguments: [("500ms", Duration.milliseconds(500)), ("10s", .seconds(10)), ("1.5s", .milliseconds(1500)), ("5m", .seconds(300)),
                      ("2h", .seconds(7200)), ("1h", .seconds(3600)), ("7d", .seconds(604_800)), ("250ms", .milliseconds(250)), ("0s", .zero),
                      ("0.000000001s", .nanoseconds(1))])
    func durationsParse(_ text: String, _ expected: Duration) {
        #expect(ConfigDuration.parse(text) == expected)
        #expect(ConfigDuration.parse(ConfigDuration.format(expected)) == expected)
    }

    @Test(arguments: ["", "10", "s", "ms", "10 s", " 10s", "-1s", "1w", ".5s", "5.s", "1.2.3s", "1e3ms", "250us", "0x10s", "4000000000s"])
    func otherDurationsAreRefused(_ text: String) {
        #expect(ConfigDuration.parse(text) == nil)
    }

    @Test func microsecondsOnlyWhenAsked() {
        #expect(ConfigDuration.parse("250us", microseconds: true) == .microseconds(250))
        #expect(ConfigDuration.parse("1.5us", microseconds: true) == .nanoseconds(1500))
        #expect(ConfigDuration.parse("10ms", microseconds: true) == .milliseconds(10))
        #expect(ConfigDuration.parse("us", microseconds: true) == nil)
    }

    @Test func durationsFormatShortest() {
        #expect(ConfigDuration.format(.milliseconds(1500)) == "1500ms")
        #expect(ConfigDuration.format(.seconds(90)) == "90s")
        #expect(ConfigDuration.format(.seconds(5400)) == "90m")
        #expect(ConfigDuration.format(.seconds(86_400 * 7)) == "7d")
        #expect(ConfigDuration.format(.microseconds(60)) == "0.06ms")
        #expect(ConfigDuration.format(.zero) == "0ms")
    }

    // MARK: host:port

    @Test func hostPortSplits() {
        #expect(HostPort.split("127.0.0.1:502")! == ("127.0.0.1", "502"))
        #expect(HostPort.split("[::1]:1883")! == ("::1", "1883"))
        #expect(HostPort.split("[fe80::1]")! == ("fe80::1", nil))
        #expect(HostPort.split("broker.example")! == ("broker.example", nil))
        for bad in ["", ":502", "host:", "::1:502", "[::1", "[::1]502", "a b:1", "[]:1"] {
            #expect(HostPort.split(bad) == nil, "\(bad)")
        }
    }

    @Test func hostPortParsesWithAPortInRange() {
        #expect(HostPort.parse("127.0.0.1:1502")! == ("127.0.0.1", 1502))
        #expect(HostPort.parse("[::1]:0", ports: 0...65535)! == ("::1", 0))
        for bad in ["127.0.0.1", "h:0", "h:65536", "h:-1", "h:+1", "h:x", "nowhere"] {
            #expect(HostPort.parse(bad) == nil, "\(bad)")
        }
    }

    // MARK: did you mean

    @Test func didYouMeanFindsPlausibleTypos() {
        #expect(Suggest.distance("hodl", "hold") == 1)
        #expect(Suggest.distance("kitten", "sitting") == 3)
        #expect(Suggest.distance("", "abc") == 3)
        #expect(Suggest.hint("lightning", among: ["gateway", "lighting", "uplink"]) == "lighting")
        #expect(Suggest.hint("timout", among: ["tcp", "timeout", "poll"]) == "timeout")
        #expect(Suggest.hint("auto_raise", among: ["pre_warning", "auto_raise_after"]) == "auto_raise_after")
        #expect(Suggest.hint("colour", among: ["broker", "prefix", "tls"]) == nil)
        #expect(Suggest.hint("LON", among: ["lat", "lon"]) == "lon")
        #expect(Suggest.suffix("junktion", among: ["junction", "bollard-1"]) == " (did you mean \"junction\"?)")
        #expect(Suggest.suffix("x", among: ["junction"]) == "")
    }

    // MARK: files

    @Test func filesAreReadWithTheirFaultsNamed() throws {
        let dir = "/tmp/config-toolkit-tests-\(getpid())"
        mkdir(dir, 0o755)
        defer {
            for f in ["ok.yaml", "latin1.yaml", "secret.yaml"] { unlink("\(dir)/\(f)") }
            rmdir("\(dir)/folder.yaml")
            rmdir(dir)
        }
        func put(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o644) {
            let fd = open("\(dir)/\(name)", O_WRONLY | O_CREAT | O_TRUNC, mode)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        put("ok.yaml", Array("nom: Libert\u{E9}\n".utf8))
        put("latin1.yaml", [0x6E, 0x6F, 0x6D, 0x3A, 0x20, 0xE9, 0x0A])
        put("secret.yaml", Array("a: 1\n".utf8), mode: 0o000)
        mkdir("\(dir)/folder.yaml", 0o755)

        #expect(try YAMLFile.read("\(dir)/ok.yaml") == "nom: Libert\u{E9}\n")
        #expect(throws: ConfigError(file: "\(dir)/latin1.yaml", line: nil, key: "", message: "not UTF-8 text")) { try YAMLFile.read("\(dir)/latin1.yaml") }
        #expect(throws: ConfigError(file: "\(dir)/none.yaml", line: nil, key: "", message: "file not found")) { try YAMLFile.read("\(dir)/none.yaml") }
        #expect(throws: ConfigError(file: "\(dir)/folder.yaml", line: nil, key: "", message: "is a folder, not a file")) { try YAMLFile.read("\(dir)/folder.yaml") }
        if geteuid() != 0 {
            #expect(throws: ConfigError(file: "\(dir)/secret.yaml", line: nil, key: "", message: "cannot read the file (permissions?)")) { try YAMLFile.read("\(dir)/secret.yaml") }
        }
        #expect(ConfigFile.utf8([0xF0, 0x9F, 0x98]) == nil)
        #expect(ConfigFile.utf8([0xEF, 0xBF, 0xBD]) == "\u{FFFD}")
    }
}
