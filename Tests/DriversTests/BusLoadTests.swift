import Testing
@testable import Drivers

/// `BusLoad`: line time from baud, frames and t3.5, and the verdict `config check` prints.
@Suite struct BusLoadTests {
    static func bit(_ t: DeviceProfile.RegisterTable, _ a: UInt16) -> DeviceProfile.Point { DeviceProfile.Point(table: t, address: a, type: .bool) }
    static let bollard = DeviceProfile(name: "ref-bollard", kind: .bollard, points: [
        "motor_up": bit(.coil, 0), "motor_down": bit(.coil, 1), "warning": bit(.coil, 2), "buzzer": bit(.coil, 3),
        "at_top": bit(.discrete, 0), "at_bottom": bit(.discrete, 1), "loop": bit(.discrete, 2),
        "photocell": bit(.discrete, 3), "motor_fault": bit(.discrete, 4), "emergency": bit(.discrete, 5),
    ])
    static let lamp = DeviceProfile(name: "ref-luminaire", kind: .luminaire, points: [
        "setpoint": .init(table: .holding, address: 0), "fade": .init(table: .holding, address: 1, scale: 0.1),
        "level": .init(table: .input, address: 0), "power_w": .init(table: .input, address: 1, scale: 0.1),
        "energy_wh": .init(table: .input, address: 2, type: .uint32), "status": .init(table: .input, address: 4),
        "temperature_c": .init(table: .input, address: 5, type: .int16, scale: 0.1),
    ])
    static let rtu19200 = BusLine(.rtu(baud: 19200, bitsPerCharacter: 11))

    static func devices(bollards: Int, lamps: Int, period: Duration = .milliseconds(50)) -> [BusLoad.Device] {
        (0..<bollards).map { .init(name: "bollard-\($0 + 1)", kind: .bollard, period: period, profile: bollard) }
            + (0..<lamps).map { .init(name: String(format: "lamp-%02d", $0 + 1), kind: .luminaire, period: .seconds(2), profile: lamp) }
    }

    @Test func rtuLineTimeFromBaudFramesAndGaps() {
        let line = Self.rtu19200
        #expect(line.character == 572_916)                // 11 bits at 19200 baud
        #expect(line.gap == 2_005_206)                     // t3.5
        // A luminaire poll: input 0-5 (8 + 17 bytes) and holding 0-1 (8 + 9 bytes), 4 gaps (as RESULTS.md's RTU row).
        #expect(line.poll(PointCodec(profile: Self.lamp).blocks) == 42 * 572_916 + 4 * 2_005_206)
        // A bollard poll: coils 0-3 (8 + 6) and discretes 0-5 (8 + 6).
        #expect(line.poll(PointCodec(profile: Self.bollard).blocks) == 28 * 572_916 + 4 * 2_005_206)
        #expect(BusLine(.rtu(baud: 115200, bitsPerCharacter: 11)).gap == 1_750_000)
        #expect(BusLine(.tcp).transaction(request: 8, response: 6) == BusLine.tcpTransaction)
    }

    @Test func threeBollardsAt19200AreRefusedNamingTheFigures() throws {
        let load = BusLoad(line: Self.rtu19200, timeout: .milliseconds(500), devices: Self.devices(bollards: 3, lamps: 0))
        let problem = try #require(load.problem)
        #expect(problem.hasPrefix("3 bollards at 50 ms need 72.2 ms of every 50 ms at 19200 baud (144 %)"), "\(problem)")
    }

    @Test func oneBollardAndThirtyLampsFitAndTheProbeTimeoutIsHalfThePeriod() {
        let load = BusLoad(line: Self.rtu19200, timeout: .milliseconds(500), devices: Self.devices(bollards: 1, lamps: 30))
        #expect(load.problem == nil, "\(load.problem ?? "")")
        #expect(load.probeTimeout == 25_000_000)
        #expect(load.longestJob == Self.rtu19200.poll(PointCodec(profile: Self.lamp).blocks))
        #expect(load.summary.hasPrefix("1 bollard at 50 ms: 24.1 ms of every 50 ms at 19200 baud (48 %)"), "\(load.summary)")
    }

    @Test func twoBollardsAndLampsAt19200LeaveNoRoomForTheLampsAndAreRefused() throws {
        let load = BusLoad(line: Self.rtu19200, timeout: .milliseconds(500), devices: Self.devices(bollards: 2, lamps: 20))
        let problem = try #require(load.problem)
        #expect(problem.contains("which leaves") && problem.contains("a poll of lamp-01"), "\(problem)")
        // Polled every 100 ms instead, they fit.
        #expect(BusLoad(line: Self.rtu19200, timeout: .milliseconds(500), devices: Self.devices(bollards: 2, lamps: 20, period: .milliseconds(100))).problem == nil)
    }

    @Test func tcpAssumesTwoMillisecondsPerTransaction() {
        let load = BusLoad(line: BusLine(.tcp), timeout: .milliseconds(500), devices: Self.devices(bollards: 3, lamps: 20))
        #expect(load.safetyDemand == 3 * 2 * 2_000_000)
        #expect(load.problem == nil)
        #expect(BusLoad(line: BusLine(.tcp), timeout: .milliseconds(500), devices: Self.devices(bollards: 0, lamps: 20)).probeTimeout == 500_000_000)
    }
}
