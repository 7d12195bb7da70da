@testable import EdgeAgent
import Drivers
import Logging
import Synchronization
import Testing

/// Which device polls wake the control loop at once: those a safety or latency rule depends
/// on (when it changes something: `ReadingWakeFilter`). A luminaire's poll waits for the next step.
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

    /// A poll wakes the loop only when it changes something (online, a value, the invalid
    /// ones) or when the loop marked the device eager; a luminaire's never does.
    @Test func onlyAChangedPollOrAnEagerDeviceWakesTheLoop() {
        let filter = ReadingWakeFilter(waking: [true, false])
        func reading(_ device: Int, online: Bool = true, _ values: [PointRole: Double], invalid: [String] = []) -> DeviceReading {
            var v = PointValues()
            for (r, x) in values { v[r] = x }
            return DeviceReading(device: device, online: online, values: v, timestampNanos: 0, invalid: invalid)
        }
        #expect(filter.wakes(reading(0, [.loop: 0, .atBottom: 1])), "the first poll")
        #expect(!filter.wakes(reading(0, [.loop: 0, .atBottom: 1])), "a repeat")
        #expect(filter.wakes(reading(0, [.loop: 1, .atBottom: 1])), "a value changed")
        #expect(filter.wakes(reading(0, [.loop: 1, .atBottom: 1, .atTop: 0])), "a value appeared")
        #expect(filter.wakes(reading(0, online: false, [:])), "went offline")
        #expect(!filter.wakes(reading(0, online: false, [:])), "still offline")
        #expect(filter.wakes(reading(0, [.loop: 1, .atBottom: 1, .atTop: 0], invalid: ["x"])))
        filter.setEager(0, true)
        #expect(filter.wakes(reading(0, [.loop: 1, .atBottom: 1, .atTop: 0], invalid: ["x"])), "eager: every poll")
        filter.setEager(0, false)
        #expect(!filter.wakes(reading(0, [.loop: 1, .atBottom: 1, .atTop: 0], invalid: ["x"])))
        #expect(!filter.wakes(reading(1, [.level: 50])) && !filter.wakes(reading(1, [.level: 60])), "a luminaire never wakes the loop")
        #expect(!filter.wakes(reading(7, [:])), "an id out of range")
    }

    /// A write's completion wakes the loop (a write in flight holds the device's next one back).
    @Test func aWriteCompletionWakesTheLoop() {
        let inbox = ControlInbox()
        let wakes = Atomic<Int>(0)
        inbox.setWaker { wakes.add(1, ordering: .relaxed) }
        inbox.post(.writeDone(device: 0), wake: true)
        inbox.post(.reading(DeviceReading(device: 0, online: true, timestampNanos: 0)))
        #expect(wakes.load(ordering: .relaxed) == 1)
    }

    /// A moving bollard's every poll wakes the loop; one at rest only on a change.
    @Test func aBollardNotAtRestIsEager() throws {
        let rig = try CoreRig(devices: """
          b1: {profile: ref-bollard, bus: field, unit: 30}
        """, extra: """
        bollards:
          b1: {pre_warning: 100ms, travel_timeout: 2s}
        """)
        let id = rig.id("b1")
        rig.poll("b1", ControlWiringTests.bollardDown)
        rig.step()
        #expect(!rig.core.wakeFilter.isEager(id))
        #expect(rig.command("raise", "b1").ok)
        rig.step()
        #expect(rig.core.wakeFilter.isEager(id), "waiting for a fresh poll after the pre-warning")
        rig.run(.milliseconds(400)) { rig.poll("b1", ControlWiringTests.bollardMidway) }
        #expect(rig.core.wakeFilter.isEager(id), "rising")
        rig.poll("b1", [.atTop: 1, .atBottom: 0, .loop: 0, .photocell: 0, .motorFault: 0, .emergency: 0])
        rig.step()
        #expect(!rig.core.wakeFilter.isEager(id), "up, at rest")
    }
}
