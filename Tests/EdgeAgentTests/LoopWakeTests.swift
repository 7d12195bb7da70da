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
        #expect(core.wakingDevices == ["bollard-1", "pir-01", "pir-02", "junction"])
        #expect(!core.wakingDevices.contains("lamp-01") && !core.wakingDevices.contains("lamp-02"))
    }
}
