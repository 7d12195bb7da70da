@testable import EdgeAgent
import Drivers
import Testing

/// Readings that did not read a device's slow blocks (coil read-back, lux: `DeviceReading.unread`),
/// on the virtual clock: absent is not zero and not off. The output tracker compares nothing
/// against them (no rewrite), the loop is not woken by them, and status and telemetry keep each
/// role's last known value. Lighting does not use lux at all (nothing to keep there).
@Suite struct SlowBlockWiringTests {
    static let coils = PointRoleSet([.motorUp, .motorDown, .warning, .buzzer, .traffic])
    static let down: [PointRole: Double] = [.atTop: 0, .atBottom: 1, .loop: 0, .photocell: 0, .motorFault: 0, .emergency: 0,
                                            .motorUp: 0, .motorDown: 0, .warning: 0, .buzzer: 0, .traffic: 1]

    static func rig() throws -> CoreRig {
        try CoreRig(devices: """
          b1: {profile: ref-bollard, bus: field, unit: 30}
          pir: {profile: ref-presence, bus: field, unit: 20}
          l1: {profile: ref-luminaire, bus: field, unit: 1}
        """, extra: """
        lighting:
          g: {lamps: [l1], presence: [pir], base: 30, boost: 100, hold: 2s}
        bollards:
          b1: {pre_warning: 300ms, travel_timeout: 5s}
        """)
    }

    @Test func pollsWithoutTheReadBackWriteNothingAndStatusKeepsItsLastValue() throws {
        let rig = try Self.rig()
        rig.poll("b1", Self.down)
        rig.step()
        #expect(rig.writes(to: "b1").count == 1, "at rest: the outputs written once")
        rig.step()
        rig.clearWrites()
        // A second and more of polls reading the discrete inputs only.
        rig.run(.seconds(3)) { rig.poll("b1", Self.down, unread: Self.coils) }
        #expect(rig.writes(to: "b1").isEmpty, "an unread coil is not a lost one: \(rig.writes)")
        let b1 = try #require(rig.core.snapshot(now: rig.now).devices["b1"]?.values)
        #expect(b1["traffic"] == 1 && b1["motor_up"] == 0, "status keeps the last read-back: \(b1)")
        #expect(b1["at_bottom"] == 1)
        // The read-back comes, and says the unit lost its traffic light (it rebooted): written again.
        var lost = Self.down
        lost[.traffic] = 0
        rig.poll("b1", lost)
        rig.step()
        #expect(rig.writes(to: "b1").contains { w in w.points.contains { $0.point == "traffic" && $0.value == 1 } })
    }

    @Test func aPresenceSensorsLuxIsKeptBetweenItsReads() throws {
        let rig = try Self.rig()
        rig.poll("pir", [.presence: 0, .lux: 120])
        rig.poll("l1", [.level: 30, .setpoint: 30])
        rig.step()
        let level = rig.core.snapshot(now: rig.now).lighting["g"]?.level
        let sent = rig.telemetry.filter { $0.0 == "pir" }.count
        // 70 s of polls without lux (telemetry every 60 s).
        rig.run(.seconds(70), every: .milliseconds(100)) { rig.poll("pir", [.presence: 0, .lux: 120], unread: PointRoleSet([.lux])) }
        let pir = try #require(rig.core.snapshot(now: rig.now).devices["pir"]?.values)
        #expect(pir["lux"] == 120 && pir["presence"] == 0, "\(pir)")
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.level == level, "lighting unchanged")
        let telemetry = rig.telemetry.filter { $0.0 == "pir" }
        #expect(telemetry.count - sent == 1, "only the interval's message: \(telemetry.count - sent)")
        #expect(telemetry.allSatisfy { $0.1["lux"] == .number(120) }, "\(telemetry.map(\.1))")
        // Offline forgets it; the next whole read brings it back.
        rig.poll("pir", [:], online: false)
        rig.step()
        #expect(rig.core.snapshot(now: rig.now).devices["pir"]?.values?["lux"] == nil)
    }

    /// A poll that differs from the one before only in roles it did not read does not wake the loop.
    @Test func unreadRolesAreNoChangeToTheWakeFilter() {
        let filter = ReadingWakeFilter(waking: [true])
        func reading(_ values: [PointRole: Double], unread: PointRoleSet = PointRoleSet()) -> DeviceReading {
            var v = PointValues()
            for (r, x) in values where !unread.contains(r) { v[r] = x }
            return DeviceReading(device: 0, online: true, values: v, timestampNanos: 0, unread: unread)
        }
        let lux = PointRoleSet([.lux])
        #expect(filter.wakes(reading([.presence: 0, .lux: 120])))
        #expect(!filter.wakes(reading([.presence: 0], unread: lux)), "lux not read: no change")
        #expect(!filter.wakes(reading([.presence: 0, .lux: 120])), "lux read again, the same")
        #expect(filter.wakes(reading([.presence: 1], unread: lux)), "presence changed")
        #expect(!filter.wakes(reading([.presence: 1, .lux: 120])), "the last known lux stood through the change")
        #expect(filter.wakes(reading([.presence: 1, .lux: 300])), "lux changed when read")
    }
}
