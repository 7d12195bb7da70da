import EdgeAgent
import Foundation
import Testing
import TestSupport

/// Issue 17's uplink keys: a broker list, the dialect, Sparkplug settings, reconnect backoff.
struct ConfigUplinkCentreTests {
    let fx = ConfigFixture()

    @Test func aBrokerListIsTheFailoverOrderAndDefaultsStay() throws {
        let base = try fx.load(fx.baseText)
        #expect(base.uplink.brokers == ["mqtts://broker.example:8883"])
        #expect(base.uplink.dialect == .edge)
        #expect(base.uplink.reconnectInitial == .milliseconds(500) && base.uplink.reconnectMax == .seconds(30) && base.uplink.reconnectJitter == 0.25)
        let text = try #require(ConfigFixture.mutate("  broker: mqtts://broker.example:8883\n",
            "  broker: [mqtts://a.example:8883, \"mqtts://b.example:8884\"]\n  reconnect: {initial: 1s, max: 10s, jitter: 1}\n  dialect: sparkplug\n  sparkplug: {group_id: city, primary_host: scada-1}\n"))
        let c = try fx.load(text)
        #expect(c.uplink.broker == "mqtts://a.example:8883")
        #expect(c.uplink.brokers == ["mqtts://a.example:8883", "mqtts://b.example:8884"])
        #expect(c.uplink.reconnectInitial == .seconds(1) && c.uplink.reconnectMax == .seconds(10) && c.uplink.reconnectJitter == 1)
        #expect(c.uplink.dialect == .sparkplug)
        #expect(c.uplink.sparkplug == AgentConfig.Uplink.Sparkplug(groupID: "city", primaryHost: "scada-1"))
    }

    @Test func everyProblemOfTheNewKeysIsReported() throws {
        let text = try #require(ConfigFixture.mutate("  broker: mqtts://broker.example:8883\n",
            "  broker: [mqtts://a.example:8883, mqtt://b.example:1883, mqtts://a.example:8883, \"http://c\"]\n  reconnect: {initial: 10s, max: 1s, jitter: 2}\n  dialect: sparkplugb\n  sparkplug: {group_id: \"a/b\"}\n"))
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        let messages = errors.errors.map { "\($0.key): \($0.message)" }
        #expect(messages.contains { $0.contains("broker") && $0.contains("scheme of the first") }, "\(messages)")
        #expect(messages.contains { $0.contains("listed twice") }, "\(messages)")
        #expect(messages.contains { $0.contains("bad broker URL \"http://c\"") }, "\(messages)")
        #expect(messages.contains { $0.contains("reconnect.jitter") }, "\(messages)")
        #expect(messages.contains { $0.contains("reconnect.max is shorter") }, "\(messages)")
        #expect(messages.contains { $0.contains("unknown dialect \"sparkplugb\"") && $0.contains("did you mean \"sparkplug\"") }, "\(messages)")
        #expect(messages.contains { $0.contains("group_id") && $0.contains("may not contain") }, "\(messages)")
        #expect(messages.contains { $0.contains("uplink.dialect is not sparkplug") }, "\(messages)")
    }
}
