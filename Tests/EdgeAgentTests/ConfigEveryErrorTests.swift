import EdgeAgent
import Foundation
import Testing

/// `config check` and the agent's start report every problem of a file in one run, each with
/// file:line:key and its hint, without repeating a problem's follow-ons; and devices, lighting
/// groups and approaches share one id namespace (they share the event and alarm topics).
struct ConfigEveryErrorTests {
    /// Replaces each `(old, new)` (each occurring once) in the fixture.
    static func broken(_ edits: [(String, String)]) -> String {
        var text = ConfigFixture.base
        for (old, new) in edits {
            #expect(text.components(separatedBy: old).count == 2, "\(old) must occur once")
            text = text.replacingOccurrences(of: old, with: new)
        }
        return text
    }

    /// 1-based number of the line that is exactly `line`.
    static func exactLine(_ line: String, in text: String) -> Int? {
        text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0 == line }.map { $0 + 1 }
    }

    @Test func everyProblemOfTheFileIsReportedInLineOrder() throws {
        let fx = ConfigFixture()
        let text = Self.broken([
            ("  timezone: Europe/Paris\n", "  timezone: Europe/Pariss\n"),
            ("  telemetry_interval: 60s\n", "  telemetry_intervall: 60s\n"),
            ("unit: 20}", "unit: 300}"),
            ("    hold: 60s\n", "    hodl: 60s\n"),
            ("    boost: 80\n", "    boost: 10\n"),
            ("max_hold: 60s,", "max_hold: 1y,"),
        ])
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        func line(_ needle: String) -> Int? { ConfigFixture.line(of: needle, in: text) }
        let expected = [
            ConfigError(file: fx.configPath, line: line("timezone:"), key: "gateway.timezone", message: "unknown time zone \"Europe/Pariss\" (no zone file /usr/share/zoneinfo/Europe/Pariss; use an IANA name such as Europe/Paris)"),
            ConfigError(file: fx.configPath, line: line("telemetry_intervall"), key: "uplink.telemetry_intervall", message: "unknown key \"telemetry_intervall\" (did you mean \"telemetry_interval\"?)"),
            ConfigError(file: fx.configPath, line: line("unit: 300"), key: "devices.pir-01.unit", message: "300 is out of range (1 to 247)"),
            ConfigError(file: fx.configPath, line: line("hodl:"), key: "lighting.rue-liberte.hodl", message: "unknown key \"hodl\" (did you mean \"hold\"?)"),
            ConfigError(file: fx.configPath, line: Self.exactLine("    boost: 10", in: text), key: "lighting.place-darcy.boost", message: "boost 10 is below base 20 (presence never lowers the light)"),
            ConfigError(file: fx.configPath, line: line("max_hold: 1y"), key: "priority.north.max_hold", message: "bad duration \"1y\" (use a number with a unit: 500ms, 10s, 5m, 7d)"),
        ]
        #expect(errors.errors == expected, "\(errors)")
        // `load` still throws one problem: the first of them.
        #expect(throws: expected[0]) { try fx.load(text) }
        #expect(errors.description.split(separator: "\n").count == expected.count)
    }

    @Test func aProblemsFollowOnsAreNotRepeated() throws {
        let fx = ConfigFixture()
        // The bus does not parse and pir-01 is misnamed: the devices on the bus and the group
        // that lists the sensor are judged on the rest, not reported again.
        let text = Self.broken([
            ("timeout: 200ms}", "timeout: 200}"),
            ("  pir-01:    {profile: ref-presence,  bus: field, unit: 20}\n", "  PIR_01:    {profile: ref-presence,  bus: field, unit: 20}\n"),
            ("presence: [pir-01, pir-02]", "presence: [PIR_01, pir-02]"),
        ])
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        #expect(errors.errors.map(\.key) == ["buses.field.timeout", "devices.PIR_01"], "\(errors)")
    }

    @Test func aLightingGroupCannotTakeADevicesID() throws {
        let fx = ConfigFixture()
        let text = Self.broken([("  place-darcy:\n", "  junction:\n"), ("neighbours: [place-darcy]", "neighbours: [junction]")])
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        #expect(errors.errors.count == 1, "\(errors)")
        #expect(errors.first.key == "lighting.junction")
        #expect(errors.first.line == Self.exactLine("  junction:", in: text))
        #expect(errors.first.message.hasPrefix("lighting group \"junction\" has the id of device junction; devices, lighting groups and approaches share one namespace"))
    }

    @Test func anApproachCannotTakeADevicesOrAGroupsID() throws {
        let fx = ConfigFixture()
        for (id, what) in [("bollard-1", "device bollard-1"), ("place-darcy", "lighting group place-darcy")] {
            let text = Self.broken([("  north: {device: junction", "  \(id): {device: junction")])
            let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
            #expect(errors.errors.count == 1, "\(errors)")
            #expect(errors.first.key == "priority.\(id)")
            #expect(errors.first.message.hasPrefix("approach \"\(id)\" has the id of \(what); devices, lighting groups and approaches share one namespace"), "\(errors)")
        }
    }

    /// A bollard wired to GPIO lines: every point a role (did you mean), the required ones
    /// there, outputs on output lines, inputs on inputs.
    @Test func aGPIOWiredBollardIsCheckedPointByPoint() throws {
        let fx = ConfigFixture()
        let board = fx.dir.write("wired.yaml", GPIOWiredDeviceTests.board + "\n    presence-a: {chip: c, offset: 20, direction: input}\n    bus-detect-north: {chip: c, offset: 21, direction: input}\n    stopline-north: {chip: c, offset: 22, direction: input}\n")
        let good = ConfigFixture.base.replacingOccurrences(of: "board: \(ConfigFixture.simBoard)", with: "board: \(board)")
            .replacingOccurrences(of: "  bollard-1: {profile: ref-bollard,   bus: field, unit: 30}", with: "  bollard-1: {kind: bollard, gpio: {motor_up: b-up, motor_down: b-down, warning: b-warn, at_top: b-top, at_bottom: b-bottom, loop: b-loop, photocell: b-photo, emergency: b-key}}")
        let config = try ConfigLoader.check(text: good, path: fx.configPath)
        #expect(config.devices["bollard-1"]?.attachment == .gpioPoints(kind: .bollard, lines: [
            .motorUp: "b-up", .motorDown: "b-down", .warning: "b-warn", .atTop: "b-top", .atBottom: "b-bottom", .loop: "b-loop", .photocell: "b-photo", .emergency: "b-key"]))
        let bad = good.replacingOccurrences(of: "motor_up: b-up, motor_down: b-down", with: "motor_upp: b-up, motor_down: b-top")
            .replacingOccurrences(of: ", emergency: b-key}", with: "}")
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: bad, path: fx.configPath) }
        let messages = errors.errors.map(\.message)
        #expect(messages.contains { $0.hasPrefix("motor_upp is not a point of a bollard (did you mean \"motor_up\"?)") }, "\(errors)")
        #expect(messages.contains("motor_down is an output: line b-top must be an output line of board wired, not an input"), "\(errors)")
        #expect(messages.contains("line b-top is already used by bollard-1.motor_down") || messages.contains { $0.contains("b-top") }, "\(errors)")
        #expect(messages.contains("a bollard wired to GPIO needs point motor_up (a board line)"), "\(errors)")
        #expect(messages.contains("a bollard wired to GPIO needs point emergency (a board line)"), "\(errors)")
    }

    @Test func aGarbageFileIsCappedNotEndless() throws {
        let fx = ConfigFixture()
        var text = ConfigFixture.base + "devices2:\n"
        text = text.replacingOccurrences(of: "devices:\n", with: "devices:\n" + (0..<300).map { "  bad-\($0): {colour: red}\n" }.joined())
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        #expect(errors.errors.count == 201)
        #expect(errors.errors.last?.message.hasSuffix("more problems not shown") == true)
    }
}
