import Foundation
import Logging
import Protocols
import Testing
import Drivers
import TestSupport

/// Fast and slow blocks (`PointCodec.Block.Refresh`, rules in `ModbusBus`): on a real bus
/// against an in-process server that records every request, a bollard's discrete inputs and a
/// presence sensor's detection are read at every poll, their coil read-back and lux once per
/// `PollPeriods.slowBlocks`, and afresh at the first poll after a write or a failed poll.
@Suite(.serialized) struct SlowBlockTests {
    final class Locked<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Value
        init(_ value: Value) { self.value = value }
        func withLock<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
    }

    /// One request as the server saw it.
    struct Request: Sendable {
        var at: Duration
        var unit: UInt8
        var function: UInt8
        var isWrite: Bool
    }

    static func bit(_ table: DeviceProfile.RegisterTable, _ address: UInt16) -> DeviceProfile.Point { DeviceProfile.Point(table: table, address: address, type: .bool) }
    static let bollard = DeviceProfile(name: "ref-bollard", kind: .bollard, points: [
        "motor_up": bit(.coil, 0), "motor_down": bit(.coil, 1), "warning": bit(.coil, 2), "buzzer": bit(.coil, 3), "traffic": bit(.coil, 4),
        "at_top": bit(.discrete, 0), "at_bottom": bit(.discrete, 1), "loop": bit(.discrete, 2),
        "photocell": bit(.discrete, 3), "motor_fault": bit(.discrete, 4), "emergency": bit(.discrete, 5),
    ])
    static let presence = DeviceProfile(name: "ref-presence", kind: .presence, points: [
        "presence": bit(.discrete, 0), "lux": DeviceProfile.Point(table: .input, address: 0, type: .uint16),
    ])

    /// Unit 1: a bollard (at the bottom, loop occupied); unit 2: a presence sensor (detecting, 120 lux).
    /// Polled at their roles' periods (50 ms, 100 ms). `dropNext`: the next request of that
    /// (unit, function) goes unanswered.
    final class Field: Sendable {
        let requests = Locked<[Request]>([])
        let readings = Locked<[DeviceReading]>([])
        let dropNext = Locked<(UInt8, UInt8)?>(nil)
        /// When the dropped request came.
        let droppedAt = Locked<Duration?>(nil)
        let server: ModbusServer
        let bus: ModbusBus

        init() throws {
            let bollardBank = ModbusRegisterBank(coils: 5, discreteInputs: 6)
            bollardBank[discrete: 1] = true
            bollardBank[discrete: 2] = true
            let presenceBank = ModbusRegisterBank(discreteInputs: 1, inputRegisters: 1)
            presenceBank[discrete: 0] = true
            presenceBank[input: 0] = 120
            let lock = NSLock()
            let requests = self.requests, dropNext = self.dropNext, droppedAt = self.droppedAt
            let start = ContinuousClock.now
            server = try ModbusServer(bus: "sim", transport: .tcp(host: "127.0.0.1", port: 0), units: [1: bollardBank, 2: presenceBank]) { request, answer in
                let at = ContinuousClock.now - start
                requests.withLock { $0.append(Request(at: at, unit: request.unit, function: request.function, isWrite: request.isWrite)) }
                let drop = dropNext.withLock { d -> Bool in
                    guard let (u, f) = d, u == request.unit, f == request.function else { return false }
                    d = nil
                    return true
                }
                if drop { droppedAt.withLock { $0 = at } } else { lock.withLock { answer() } }
            }
            try server.start()
            bus = ModbusBus(name: "field", transport: .tcp(host: "127.0.0.1", port: server.port ?? 0), timeout: .milliseconds(200), logger: Logger(label: "test.bus"))
            bus.addDevice(ModbusDeviceSpec(id: 0, name: "bollard-1", unit: 1, profile: SlowBlockTests.bollard))
            bus.addDevice(ModbusDeviceSpec(id: 1, name: "pir-1", unit: 2, profile: SlowBlockTests.presence))
            let readings = self.readings
            bus.onReading { r in readings.withLock { $0.append(r) } }
            bus.start()
        }

        func requests(unit: UInt8) -> [Request] { requests.withLock { $0 }.filter { $0.unit == unit } }
        func count(unit: UInt8, function: UInt8) -> Int { requests(unit: unit).filter { $0.function == function }.count }
        var all: [DeviceReading] { readings.withLock { $0 } }

        func stop() {
            bus.stop()
            server.stop()
        }
    }

    /// Reads of `slow` (a function code) come no closer than the slow period, with reads of
    /// `fast` between them; the first poll of the unit reads both.
    static func expectSlowAndFast(_ reqs: [Request], slow: UInt8, fast: UInt8, _ what: String) {
        #expect(Set(reqs.prefix(2).map(\.function)) == [slow, fast], "\(what): the first poll reads every block")
        let slowAt = reqs.enumerated().filter { $0.element.function == slow }
        for (a, b) in zip(slowAt, slowAt.dropFirst()) {
            let gap = b.element.at - a.element.at
            // The bus spaces them by its own clock at poll start; the server sees them a little
            // later or sooner (loopback latency): 10 % of slack.
            #expect(gap >= .milliseconds(900), "\(what): read-back \(gap) after the one before")
            let between = reqs[(a.offset + 1)..<b.offset].filter { $0.function == fast }.count
            #expect(between >= 2, "\(what): only \(between) reads of the safety block between two read-backs")
        }
    }

    @Test func theCodecSplitsSafetyBlocksFromTheOthers() {
        let b = PointCodec(profile: Self.bollard)
        #expect(b.blocks.map(\.table) == [.coil, .discrete])
        #expect(b.blocks.map(\.refresh) == [.slow, .everyPoll])
        #expect(b.hasSlowBlocks && b.slowRoles.contains(.motorUp) && b.slowRoles.contains(.traffic) && !b.slowRoles.contains(.loop))
        let p = PointCodec(profile: Self.presence)
        #expect(p.blocks.map(\.refresh) == [.everyPoll, .slow])
        #expect(p.slowRoles == PointRoleSet([.lux]))
        // A sensor whose detection shares a block with its lux reads both every poll.
        let shared = PointCodec(profile: DeviceProfile(name: "p2", kind: .presence, points: [
            "presence": DeviceProfile.Point(table: .input, address: 0, type: .uint16), "lux": DeviceProfile.Point(table: .input, address: 1, type: .uint16),
        ]))
        #expect(shared.blocks.count == 1 && !shared.hasSlowBlocks && shared.slowRoles.isEmpty)
        // A luminaire has no safety input: every block at every poll, at whatever period.
        let lamp = PointCodec(profile: DeviceProfile(name: "l", kind: .luminaire, points: [
            "setpoint": DeviceProfile.Point(table: .holding, address: 0, type: .uint16), "level": DeviceProfile.Point(table: .input, address: 0, type: .uint16),
        ]))
        #expect(!lamp.hasSlowBlocks && lamp.blocks.allSatisfy { $0.refresh == .everyPoll })
        // A device polled every second or slower reads its slow blocks at every poll.
        #expect(PollPeriods.slowBlockPeriod(devicePeriod: .milliseconds(50)) == 1_000_000_000)
        #expect(PollPeriods.slowBlockPeriod(devicePeriod: .seconds(1)) == nil)
        #expect(PollPeriods.slowBlockPeriod(devicePeriod: .seconds(2)) == nil)
    }

    @Test func safetyBlocksAtEveryPollReadBackAndLuxOncePerSlowPeriod() throws {
        let field = try Field()
        defer { field.stop() }
        #expect(Wait.until(timeout: .seconds(20)) { field.count(unit: 1, function: 1) >= 4 && field.count(unit: 2, function: 4) >= 4 })
        field.stop()
        Self.expectSlowAndFast(field.requests(unit: 1), slow: 1, fast: 2, "bollard coils")
        Self.expectSlowAndFast(field.requests(unit: 2), slow: 4, fast: 2, "presence lux")
        // A reading carries what was read: the unread roles are absent and said so.
        let bollard = field.all.filter { $0.device == 0 && $0.online }
        #expect(bollard.allSatisfy { $0.values[.loop] == 1 && $0.values[.atBottom] == 1 }, "every poll has the safety inputs")
        let partial = bollard.filter { !$0.unread.isEmpty }
        #expect(!partial.isEmpty && partial.allSatisfy { $0.values[.motorUp] == nil && $0.values[.traffic] == nil && $0.unread.contains(.warning) })
        #expect(bollard.contains { $0.unread.isEmpty && $0.values[.motorUp] == 0 })
        let pir = field.all.filter { $0.device == 1 && $0.online }
        #expect(pir.allSatisfy { $0.values[.presence] == 1 })
        #expect(pir.contains { $0.values[.lux] == nil && $0.unread == PointRoleSet([.lux]) })
        #expect(pir.filter { $0.unread.isEmpty }.allSatisfy { $0.values[.lux] == 120 })
        // The bus counts what it sent.
        let sent = field.requests.withLock { $0.count }
        #expect(field.bus.currentStats.transactions == sent, "bus stats \(field.bus.currentStats.transactions), server saw \(sent)")
    }

    @Test func theFirstPollAfterAWriteOrAFailureReadsTheReadBack() throws {
        let field = try Field()
        defer { field.stop() }
        // Past the first poll and one slow read.
        #expect(Wait.until(timeout: .seconds(20)) { field.count(unit: 1, function: 1) >= 2 })
        let written = Locked(false)
        field.bus.write(device: "bollard-1", points: [PointWrite("warning", 1)], priority: .safety) { r in
            if case .success = r { written.withLock { $0 = true } }
        }
        #expect(Wait.until(timeout: .seconds(10)) { written.withLock { $0 } })
        let afterWrite = field.requests(unit: 1).count
        #expect(Wait.until(timeout: .seconds(10)) { field.requests(unit: 1).count >= afterWrite + 4 })
        // A failed poll: its discrete read goes unanswered.
        field.dropNext.withLock { $0 = (1, 2) }
        #expect(Wait.until(timeout: .seconds(10)) { field.dropNext.withLock { $0 } == nil })
        let afterDrop = field.requests(unit: 1).count
        #expect(Wait.until(timeout: .seconds(10)) { field.requests(unit: 1).count >= afterDrop + 4 })
        field.stop()
        let reqs = field.requests(unit: 1)
        let w = try #require(reqs.firstIndex { $0.isWrite })
        // Write (5), its verify read (1), then the next poll: coils (1) before the discrete inputs (2).
        #expect(reqs[w...].prefix(4).map(\.function) == [5, 1, 1, 2], "\(reqs[w...].prefix(6).map(\.function))")
        #expect(reqs[w + 1 ..< w + 4].allSatisfy { !$0.isWrite })
        // After the dropped discrete read, the next poll reads the coils first.
        let droppedAt = try #require(field.droppedAt.withLock { $0 })
        let dropped = try #require(reqs.firstIndex { $0.at == droppedAt && $0.function == 2 })
        #expect(reqs[(dropped + 1)...].prefix(2).map(\.function) == [1, 2], "\(reqs[(dropped + 1)...].prefix(4).map(\.function))")
        // And the control loop learns the new coil at that poll.
        #expect(field.all.contains { $0.device == 0 && $0.values[.warning] == 1 })
    }
}
