import Drivers
import EdgeAgent
import Foundation
import Testing

/// One broken variant of a profile and the error expected.
struct BrokenProfile: Sendable, CustomTestStringConvertible {
    let base: String
    let old: String
    let new: String
    let key: String
    let lineOf: String
    let message: String
    var testDescription: String { "\(key): \(message)" }
    init(_ old: String, _ new: String, key: String, line lineOf: String, _ message: String, base: String = ProfileFixtures.luminaire) {
        self.base = base
        self.old = old
        self.new = new
        self.key = key
        self.lineOf = lineOf
        self.message = message
    }
}

enum ProfileFixtures {
    static let luminaire = """
    name: vendor-lum
    kind: luminaire
    description: test
    points:
      setpoint:      {table: holding, address: 0}
      fade:          {table: holding, address: 1, scale: 0.1}
      level:         {table: input,   address: 0}
      energy_wh:     {table: input,   address: 2, type: uint32, word_order: low_first}
      status:        {table: input,   address: 4, bits: {0: lamp_failure, 2: over_temperature}}
      temperature_c: {table: input,   address: 5, type: int16, scale: 0.1, offset: -40}

    """
    static let bollard = """
    name: vendor-bollard
    kind: bollard
    points:
      motor_up:   {table: coil, address: 0}
      motor_down: {table: coil, address: 1}
      warning:    {table: coil, address: 2}
      at_top:     {table: discrete, address: 0}
      at_bottom:  {table: discrete, address: 1}
      loop:       {table: discrete, address: 2}
      photocell:  {table: discrete, address: 3}
      emergency:  {table: discrete, address: 5}

    """
    static let signalIO = """
    name: vendor-io
    kind: signal-io
    points:
      request_1: {table: coil, address: 0}
      ack_1:     {table: discrete, address: 0}
      ack_2:     {table: discrete, address: 1}

    """
}

let brokenProfiles: [BrokenProfile] = [
    .init("kind: luminaire", "kind: luminary", key: "kind", line: "kind:", "unknown kind \"luminary\" (did you mean \"luminaire\"?)"),
    .init("description: test\n", "descripton: test\n", key: "descripton", line: "descripton", "unknown key \"descripton\" (did you mean \"description\"?)"),
    .init("name: vendor-lum\n", "", key: "name", line: "kind:", "missing required key \"name\""),
    .init("  setpoint:      {table: holding, address: 0}\n", "", key: "points.setpoint", line: "points:", "a luminaire profile needs point \"setpoint\" (holding)"),
    .init("  level:         {table: input,   address: 0}\n", "", key: "points.level", line: "points:", "needs point \"level\" (input or holding)"),
    .init("setpoint:      {table: holding, address: 0}", "setpoint:      {table: input, address: 9}", key: "points.setpoint.table", line: "setpoint:", "setpoint must be in the holding table, not input"),
    .init("{table: holding, address: 0}", "{table: holdng, address: 0}", key: "points.setpoint.table", line: "setpoint:", "unknown table \"holdng\" (did you mean \"holding\"?)"),
    .init("{table: holding, address: 0}", "{table: holding}", key: "points.setpoint.address", line: "setpoint:", "missing required key \"address\""),
    .init("{table: holding, address: 0}", "{table: holding, adress: 0}", key: "points.setpoint.adress", line: "setpoint:", "(did you mean \"address\"?)"),
    .init("address: 5, type: int16", "address: 70000, type: int16", key: "points.temperature_c.address", line: "temperature_c:", "70000 is out of range (0 to 65535)"),
    .init("address: 5, type: int16", "address: -1, type: int16", key: "points.temperature_c.address", line: "temperature_c:", "-1 is out of range (0 to 65535)"),
    .init("address: 2, type: uint32", "address: 65535, type: uint32", key: "points.energy_wh.address", line: "energy_wh:", "runs past register 65535"),
    .init("status:        {table: input,   address: 4", "status:        {table: input,   address: 3", key: "points.status.address", line: "status:", "input 3 overlaps point energy_wh (input 2-3)"),
    .init("fade:          {table: holding, address: 1", "fade:          {table: holding, address: 0", key: "points.fade.address", line: "fade:", "holding 0 overlaps point setpoint (holding 0)"),
    .init("type: int16, scale", "type: int64, scale", key: "points.temperature_c.type", line: "temperature_c:", "unknown type \"int64\""),
    .init("word_order: low_first", "word_order: middle", key: "points.energy_wh.word_order", line: "energy_wh:", "unknown word order \"middle\""),
    .init("type: int16, scale", "type: int16, word_order: high_first, scale", key: "points.temperature_c.word_order", line: "temperature_c:", "word_order applies to uint32/int32 points only"),
    .init("{0: lamp_failure,", "{16: lamp_failure,", key: "points.status.bits.16", line: "status:", "bit \"16\" is not a bit number 0-15"),
    .init("2: over_temperature}", "2: lamp_failure}", key: "points.status.bits.2", line: "status:", "bit name \"lamp_failure\" is used twice"),
    .init("address: 2, type: uint32, word_order: low_first}", "address: 2, type: uint32, bits: {0: x}}", key: "points.energy_wh.bits", line: "energy_wh:", "bits apply to 16-bit registers"),
    .init("scale: 0.1}", "scale: 0}", key: "points.fade.scale", line: "fade:", "scale must not be 0"),
    .init("  level:  ", "  Level:  ", key: "points.Level", line: "Level:", "bad point name \"Level\""),
    .init("", "", key: "points", line: "points:", "expected a mapping", base: "name: x\nkind: presence\npoints: []\n"),
    .init("  emergency:  {table: discrete, address: 5}\n", "", key: "points.emergency", line: "points:", "a bollard profile needs point \"emergency\" (discrete)", base: ProfileFixtures.bollard),
    .init("motor_up:   {table: coil, address: 0}", "motor_up:   {table: holding, address: 0}", key: "points.motor_up.table", line: "motor_up:", "motor_up must be in the coil table, not holding", base: ProfileFixtures.bollard),
    .init("motor_up:   {table: coil, address: 0}", "motor_up:   {table: coil, address: 0, type: uint16}", key: "points.motor_up.type", line: "motor_up:", "a coil is a single bit: type must be bool", base: ProfileFixtures.bollard),
    .init("loop:       {table: discrete, address: 2}", "loop:       {table: discrete, address: 1}", key: "points.loop.address", line: "loop:", "discrete 1 overlaps point at_bottom", base: ProfileFixtures.bollard),
    .init("ack_2:     {table: discrete, address: 1}\n", "ack_2:     {table: discrete, address: 1}\n  degraded: {table: coil, address: 9}\n", key: "points.degraded.table", line: "degraded:", "degraded must be in the discrete table, not coil", base: ProfileFixtures.signalIO),
]

@Suite struct ProfileLoaderTests {
    static let repo = ConfigFixture.repo

    @Test func everyShippedProfileLoadsAndMatchesTheContract() throws {
        let dir = Self.repo + "/Profiles"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == ["ref-bollard.yaml", "ref-luminaire.yaml", "ref-presence.yaml", "ref-signal-io.yaml"])
        for f in files {
            let p = try ProfileLoader.load(path: dir + "/" + f, expectedName: String(f.dropLast(5)))
            #expect(!p.description.isEmpty)
        }
    }

    @Test func refLuminaireIsTheContractMap() throws {
        let p = try ProfileLoader.load(path: Self.repo + "/Profiles/ref-luminaire.yaml")
        #expect(p.kind == .luminaire)
        #expect(p.points == [
            "setpoint": .init(table: .holding, address: 0, type: .uint16),
            "fade": .init(table: .holding, address: 1, type: .uint16, scale: 0.1),
            "level": .init(table: .input, address: 0, type: .uint16),
            "power_w": .init(table: .input, address: 1, type: .uint16, scale: 0.1),
            "energy_wh": .init(table: .input, address: 2, type: .uint32, wordOrder: .highFirst),
            "status": .init(table: .input, address: 4, type: .uint16, bits: [0: "lamp_failure", 1: "driver_fault", 2: "over_temperature"]),
            "temperature_c": .init(table: .input, address: 5, type: .int16, scale: 0.1),
        ])
    }

    @Test func refPresenceBollardSignalIOAreTheContractMaps() throws {
        let presence = try ProfileLoader.load(path: Self.repo + "/Profiles/ref-presence.yaml")
        #expect(presence.kind == .presence)
        #expect(presence.points == ["presence": .init(table: .discrete, address: 0, type: .bool), "lux": .init(table: .input, address: 0)])

        let bollard = try ProfileLoader.load(path: Self.repo + "/Profiles/ref-bollard.yaml")
        #expect(bollard.kind == .bollard)
        let coils = ["motor_up", "motor_down", "warning", "buzzer", "traffic"]
        let inputs = ["at_top", "at_bottom", "loop", "photocell", "motor_fault", "emergency"]
        var expected: [String: DeviceProfile.Point] = [:]
        for (i, n) in coils.enumerated() { expected[n] = .init(table: .coil, address: UInt16(i), type: .bool) }
        for (i, n) in inputs.enumerated() { expected[n] = .init(table: .discrete, address: UInt16(i), type: .bool) }
        #expect(bollard.points == expected)

        let io = try ProfileLoader.load(path: Self.repo + "/Profiles/ref-signal-io.yaml")
        #expect(io.kind == .signalIO)
        expected = ["degraded": .init(table: .discrete, address: 8, type: .bool)]
        for n in 1...8 {
            expected["request_\(n)"] = .init(table: .coil, address: UInt16(n - 1), type: .bool)
            expected["ack_\(n)"] = .init(table: .discrete, address: UInt16(n - 1), type: .bool)
        }
        #expect(io.points == expected)
    }

    @Test func vendorProfileOptionsAreRead() throws {
        let p = try ProfileLoader.parse(ProfileFixtures.luminaire, file: "vendor-lum.yaml")
        #expect(p.name == "vendor-lum" && p.description == "test")
        #expect(p.points["energy_wh"]?.wordOrder == .lowFirst)
        #expect(p.points["status"]?.bits == [0: "lamp_failure", 2: "over_temperature"])
        #expect(p.points["temperature_c"] == .init(table: .input, address: 5, type: .int16, scale: 0.1, offset: -40))
        #expect(p.points["power_w"] == nil)
        // Hex addresses are accepted (vendor manuals often give them so).
        let hex = try ProfileLoader.parse(ProfileFixtures.bollard.replacingOccurrences(of: "address: 5}", with: "address: 0x10}"), file: "b.yaml")
        #expect(hex.points["emergency"]?.address == 16)
        #expect(try ProfileLoader.parse(ProfileFixtures.signalIO + "  request_2: {table: coil, address: 1}\n", file: "io.yaml").points.count == 4)
    }

    @Test func fileNameMustMatchProfileName() throws {
        let error = try #require(throws: ConfigError.self) {
            try ProfileLoader.parse(ProfileFixtures.luminaire, file: "Profiles/other.yaml", expectedName: "other")
        }
        #expect(error == ConfigError(file: "Profiles/other.yaml", line: 1, key: "name",
                                     message: "the profile is named \"vendor-lum\" but its file is other.yaml (they must match)"))
    }

    @Test func ackWithoutRequestIsRefused() throws {
        let text = ProfileFixtures.signalIO
        let error = try #require(throws: ConfigError.self) { try ProfileLoader.parse(text, file: "io.yaml") }
        #expect(error == ConfigError(file: "io.yaml", line: 3, key: "points.request_2", message: "ack_2 has no matching request_2 (coil)"))
    }

    @Test(arguments: brokenProfiles)
    func brokenProfileGivesFileLineKey(_ c: BrokenProfile) throws {
        var text = c.base
        if c.old.isEmpty == false {
            let parts = text.components(separatedBy: c.old)
            try #require(parts.count == 2, "fixture must contain \(c.old) exactly once")
            text = parts.joined(separator: c.new)
        }
        // The signal-io fixture is deliberately incomplete (ack_2 without request_2): complete it.
        if c.base == ProfileFixtures.signalIO { text += "  request_2: {table: coil, address: 1}\n" }
        let line = try #require(ConfigFixture.line(of: c.lineOf, in: text))
        let error = try #require(throws: ConfigError.self) { try ProfileLoader.parse(text, file: "/p/vendor.yaml") }
        #expect(error.file == "/p/vendor.yaml")
        #expect(error.key == c.key)
        #expect(error.line == line)
        #expect(error.message.contains(c.message), "message was: \(error.message)")
    }
}
