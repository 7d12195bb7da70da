@testable import EdgeAgent
import Logging
import Testing

/// Which device polls wake the control loop at once: those a safety or latency rule depends
/// on. A luminaire's poll (status, power) waits for the next periodic tick.
@Suite struct LoopWakeTests {
    @Test func bollardsPresenceAndSignalIOWakeTheLoopLuminairesDoNot() throws {
        let fixture = ConfigFixture()
        let config = try fixture.load(fixture.baseText)
        let core = ControlCore(config: config, field: FieldIO(config: config, logger: Logger(label: "test")), inbox: ControlInbox(),
                               logger: Logger(label: "test"), onEvents: { _ in })
        let waking = Set(core.map.names.indices.filter { core.waking[$0] }.map { core.map.names[$0] })
        #expect(waking == ["bollard-1", "pir-01", "pir-02", "junction"])
        #expect(!waking.contains("lamp-01") && !waking.contains("lamp-02"))
    }
}
