import EdgeAgent
import Foundation
import Testing

/// What fuzzing found (docs/reliability/fuzzing.md), each input fed through the API it broke,
/// and the control-socket protocol functions the fuzz target drives (ControlProtocol).
@Suite struct FuzzRegressionTests {
    // MARK: FuzzConfig: a duration formatted below a millisecond did not parse back

    /// `format` wrote `6e-05s` for `0.0000010m` and `1e-06s` for `0.000001s` (Double's exponent
    /// form), which `duration` refuses; `duration` also went through a Double for the whole value.
    @Test(arguments: [
        ("0.0000010m", "0.06ms"), ("0.000001s", "0.001ms"), ("0.0000001s", "0.0001ms"), ("1.000000001s", "1000.000001ms"),
        ("0.5ms", "0.5ms"), ("0.9999999999s", "1s"), ("1.5s", "1500ms"), ("90s", "90s"), ("1.5h", "90m"),
    ])
    func subMillisecondDurationsFormatInTheSyntax(_ text: String, _ formatted: String) throws {
        let d = try #require(ConfigSyntax.duration(text))
        #expect(ConfigSyntax.format(d) == formatted)
        #expect(ConfigSyntax.duration(ConfigSyntax.format(d)) == d)
    }

    @Test func durationsAreExactToTheNanosecondUpToTheLimit() throws {
        #expect(ConfigSyntax.duration("3999999999.999999999s") == .nanoseconds(3_999_999_999_999_999_999))
        #expect(ConfigSyntax.duration("4000000000s") == nil)
        #expect(ConfigSyntax.duration("46296.3d") == nil)
        #expect(ConfigSyntax.duration("99999999999999999999ms") == nil)
        for text in ["3999999999.999999999s", "123456789.123456789s", "46296.2962962d", "0.000000001s", "7d"] {
            let d = try #require(ConfigSyntax.duration(text), "\(text)")
            #expect(ConfigSyntax.duration(ConfigSyntax.format(d)) == d, "\(text) -> \(ConfigSyntax.format(d))")
        }
    }

    // MARK: YAML aliases as keys: exponential time in the duplicate-key check

    /// Seven levels of ten aliases, the deepest used as a mapping key. Yams hashes every key to
    /// find duplicates, and an alias key is its whole anchored tree: 10^7 nodes here took 7 s
    /// in a debug build before the fix, each further level ten times more (nine levels did not
    /// finish in 20 s under the fuzzer).
    static let aliasBomb: String = {
        var lines = ["a0: &a0 [x,x,x,x,x,x,x,x,x,x]"]
        for i in 1...6 { lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ",") + "]") }
        return lines.joined(separator: "\n") + "\n? *a6\n: 1\n"
    }()

    @Test func anAliasUsedAsAKeyIsRefusedAtOnce() {
        let start = ContinuousClock.now
        #expect(throws: ConfigError(file: "/etc/edge-agent/agent.yaml", line: 8, key: "", message: "a key must be a plain name, found an alias (*a6)")) {
            try ConfigLoader.load(text: Self.aliasBomb, path: "/etc/edge-agent/agent.yaml")
        }
        #expect(throws: ConfigError.self) { try ProfileLoader.parse(Self.aliasBomb, file: "bomb.yaml") }
        #expect(throws: ConfigError.self) { try BoardLoader.parse(Self.aliasBomb, file: "bomb.yaml") }
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    @Test func listsAndMappingsAsKeysAreRefusedWithTheirLine() {
        let text = "name: sim\ngpio:\n  backend: simulated\n  lines:\n    ? [a, b]\n    : {chip: c, offset: 1, direction: input}\n"
        #expect(throws: ConfigError(file: "b.yaml", line: 5, key: "gpio.lines", message: "a key must be a plain name, found a list")) {
            try BoardLoader.parse(text, file: "b.yaml")
        }
        #expect(throws: ConfigError(file: "b.yaml", line: 1, key: "", message: "a key must be a plain name, found a mapping")) {
            try BoardLoader.parse("{a: 1}: x\n", file: "b.yaml")
        }
    }

    @Test func aliasesAsValuesAndAsterisksInTextStillLoad() throws {
        let fixture = ConfigFixture()
        var text = try #require(ConfigFixture.mutate("    base: 30\n", "    base: &level 30\n"))
        text = text.replacingOccurrences(of: "    boost: 100\n", with: "    boost: *level   # same as *base*\n")
        let config = try fixture.load(text)
        #expect(config.lighting["rue-liberte"]?.boost == 30)

        let profile = """
            name: starred
            kind: presence
            description: "a *starred* device, 2 * 3 = 6"
            points:
              presence: {table: discrete, address: 0}   # *not* an alias

            """
        #expect(try ProfileLoader.parse(profile, file: "starred.yaml").description == "a *starred* device, 2 * 3 = 6")
    }

    @Test func anUndefinedAliasIsASyntaxErrorWithItsLine() {
        #expect {
            try BoardLoader.parse("name: sim\ndescription: *nothing\n", file: "b.yaml")
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.line == 2 && e.message.contains("undefined alias")
        }
    }
}

/// The control socket's request decoding and routing (the functions the fuzz target drives).
@Suite struct ControlProtocolTests {
    static func kind(_ target: String) -> CommandAction.TargetKind? {
        ["": .gateway, "lamp-01": .lamp, "b1": .bollard, "north": .approach, "pir": .device][target]
    }

    static func route(_ r: ControlRequest) throws(CommandError) -> ControlRoute { try ControlProtocol.route(r, targetKind: kind) }

    @Test func edgectlVerbsRouteToTheirActions() throws {
        #expect(try Self.route(ControlRequest(verb: "status")) == .read(verb: "status"))
        #expect(try Self.route(ControlRequest(verb: "io.read", target: "lamp-01")) == .read(verb: "io.read"))
        let expected: [(ControlRequest, CommandAction)] = [
            (ControlRequest(verb: "lamp.set", target: "lamp-01", args: ["level": .number(80), "duration_s": .number(600)]), .setLevel(level: 80, duration: .seconds(600))),
            (ControlRequest(verb: "lamp.release", target: "lamp-01"), .release),
            (ControlRequest(verb: "bollard.raise", target: "b1"), .raise),
            (ControlRequest(verb: "bollard.lower", target: "b1"), .lower),
            (ControlRequest(verb: "bollard.emergency-lower", target: "b1"), .emergencyLower),
            (ControlRequest(verb: "bollard.clear", target: "b1"), .clearEmergency),
            (ControlRequest(verb: "bollard.hold-down", target: "b1", args: ["duration_s": .number(60)]), .holdDown(duration: .seconds(60))),
            (ControlRequest(verb: "priority.request", target: "north", args: ["vehicle": .string("bus-1")]), .priorityRequest(vehicle: "bus-1", line: nil, etaSeconds: nil)),
            (ControlRequest(verb: "priority.cancel", target: "north", args: ["vehicle": .string("bus-1")]), .priorityCancel(vehicle: "bus-1")),
            (ControlRequest(verb: "io.write", target: "pir", args: ["point": .string("presence"), "value": .number(1)]), .ioWrite(point: "presence", value: 1)),
            (ControlRequest(verb: "maintenance", args: ["on": .bool(true)]), .maintenance(on: true)),
            (ControlRequest(verb: "ping"), .ping),
            (ControlRequest(verb: "config.reload"), .reloadConfig),
        ]
        for (request, action) in expected {
            #expect(try Self.route(request) == .command(action), "\(request.verb)")
            #expect(ControlProtocol.requiredRole(verb: request.verb) == .actuate, "\(request.verb)")
        }
        #expect(ControlProtocol.requiredRole(verb: "status") == .read && ControlProtocol.requiredRole(verb: "io.read") == .read)
        #expect(ControlProtocol.requiredRole(verb: "no.such.verb") == .actuate)
    }

    @Test func refusalsCarryContractCodesAndPrintableMessages() {
        #expect(throws: CommandError(.malformed, "io.read needs a device")) {
            try Self.route(ControlRequest(verb: "io.read"))
        }
        #expect(throws: CommandError(.unknownAction, "unknown verb bollard.[2Jfly")) {
            try Self.route(ControlRequest(verb: "bollard.\u{1B}[2Jfly\n"))
        }
        #expect(throws: CommandError(.unknownTarget, "unknown target 'lamp-99'")) {
            try Self.route(ControlRequest(verb: "lamp.release", target: "lamp-99"))
        }
        #expect(throws: CommandError(.outOfRange, "duration_s 90000.0 is outside (0 s, 24 h]")) {
            try Self.route(ControlRequest(verb: "bollard.hold-down", target: "b1", args: ["duration_s": .number(90_000)]))
        }
        #expect {
            try ControlProtocol.decode(line: Array("{\"target\":\"lamp-01\"}".utf8))
        } throws: { error in
            (error as? CommandError)?.code == .malformed && (error as? CommandError)?.response.ok == false
        }
    }

    @Test func aRequestLineDecodesAsTheServerReadsIt() throws {
        let line = Array(#"{"verb":"lamp.set","target":"lamp-01","args":{"level":80,"duration_s":600,"x":[true,null,"s",{"k":-1.5}]}}"#.utf8)
        let request = try ControlProtocol.decode(line: line)
        #expect(request == ControlRequest(verb: "lamp.set", target: "lamp-01", args: [
            "level": .number(80), "duration_s": .number(600), "x": .array([.bool(true), .null, .string("s"), .object(["k": .number(-1.5)])]),
        ]))
        #expect(try ControlProtocol.decode(line: Array(#"{"verb":"status"}"#.utf8)).args.isEmpty)
    }
}
