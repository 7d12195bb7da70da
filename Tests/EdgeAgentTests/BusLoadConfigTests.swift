import EdgeAgent
import Testing

/// `config check` and the bus load: per-device `poll:`, the bus `poll:` over the roles, and a
/// bus refused (with its figures, at its line) when its safety devices cannot meet their periods.
@Suite struct BusLoadConfigTests {
    /// The fixture with three more bollards on the RTU bus (19200 8E1).
    static func threeBollardsOnRTU(extra: String = "") -> String? {
        ConfigFixture.mutate("  lamp-02:   {profile: ref-luminaire, bus: rs485-1, unit: 2}\n", """
              lamp-02:   {profile: ref-luminaire, bus: rs485-1, unit: 2}
              bollard-2: {profile: ref-bollard, bus: rs485-1, unit: 31\(extra)}
              bollard-3: {profile: ref-bollard, bus: rs485-1, unit: 32\(extra)}
              bollard-4: {profile: ref-bollard, bus: rs485-1, unit: 33\(extra)}

            """)
    }

    @Test func periodsFollowTheRolesTheBusAndTheDevice() throws {
        let fx = ConfigFixture()
        let text = try #require(ConfigFixture.mutate("  lamp-01:   {profile: ref-luminaire, bus: field, unit: 1}", "  lamp-01:   {profile: ref-luminaire, bus: field, unit: 1, poll: 5s}"))
        let c = try fx.load(text)
        #expect(c.buses["field"]?.pollInterval == nil, "no bus poll: the roles decide")
        #expect(c.devices["lamp-01"]?.pollPeriod == .seconds(5))
        #expect(c.devices["bollard-1"]?.pollPeriod == nil)
    }

    @Test func threeBollardsAt19200AreRefusedNamingTheBusAndTheFigures() throws {
        let fx = ConfigFixture()
        let text = try #require(Self.threeBollardsOnRTU())
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        let load = try #require(errors.errors.first { $0.key == "buses.rs485-1" })
        #expect(load.line == ConfigFixture.line(of: "rs485-1: {rtu:", in: text))
        #expect(load.message.hasPrefix("3 bollards at 50 ms need 72.2 ms of every 50 ms at 19200 baud (144 %)"), "\(load)")
        #expect(errors.errors.count == 1, "\(errors)")
    }

    @Test func longerPeriodsPerDeviceMakeTheSameBusFit() throws {
        let fx = ConfigFixture()
        let text = try #require(Self.threeBollardsOnRTU(extra: ", poll: 150ms"))
        let c = try fx.load(text)
        #expect(c.devices["bollard-2"]?.pollPeriod == .milliseconds(150))
    }

    @Test func aSlowSafetyPollIsRefusedAtItsKey() throws {
        let fx = ConfigFixture()
        let text = try #require(ConfigFixture.mutate("field: {tcp: \"127.0.0.1:1502\", timeout: 200ms}", "field: {tcp: \"127.0.0.1:1502\", timeout: 200ms, poll: 1s}"))
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        let junction = try #require(errors.errors.first { $0.key == "buses.field.poll" }, "\(errors)")
        #expect(junction.message.hasPrefix("junction (signal-io) polled every 1s") && junction.message.contains("at least every 250ms"), "\(junction)")
        #expect(errors.errors.contains { $0.key == "bollards.bollard-1" }, "the bollard's own sensor-age check: \(errors)")
        // A device's own poll: is named instead; too short a period is refused.
        let text2 = try #require(ConfigFixture.mutate("  bollard-1: {profile: ref-bollard,   bus: field, unit: 30}", "  bollard-1: {profile: ref-bollard,   bus: field, unit: 30, poll: 5ms}"))
        let e2 = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text2, path: fx.configPath) }
        #expect(e2.errors.map(\.key) == ["devices.bollard-1.poll"], "\(e2)")
        #expect(e2.first.message.contains("at least 10ms"))
    }

    @Test func aGPIODeviceHasNoPollPeriod() throws {
        let fx = ConfigFixture()
        let text = try #require(ConfigFixture.mutate("  pir-02:    {gpio: presence-a}", "  pir-02:    {gpio: presence-a, poll: 50ms}"))
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        #expect(errors.first.key == "devices.pir-02.poll" && errors.first.message.contains("remove poll"), "\(errors)")
    }
}
