import Foundation
import Logging
import Protocols
import Testing
import Drivers
import TestSupport

/// `ModbusBus` against an in-process server whose unit misses requests or answers exceptions:
/// a failed poll never hands the control loop made-up values.
@Suite struct ModbusBusFaultTests {
    /// The server side: unit 1 is a bollard I/O (4 coils, 6 discretes) with the vehicle loop
    /// occupied; `drop` requests go unanswered, `exception` answers every request with that code.
    final class Locked<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Value
        init(_ value: Value) { self.value = value }
        func withLock<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
    }

    final class Field: Sendable {
        struct Faults {
            var drop = 0
            var exception: UInt8?
        }
        let faults = Locked(Faults())
        let readings = Locked<[DeviceReading]>([])
        let server: ModbusServer
        let bus: ModbusBus

        init() throws {
            let bank = ModbusRegisterBank(coils: 4, discreteInputs: 6)
            bank[discrete: 1] = true   // at bottom
            bank[discrete: 2] = true   // loop occupied
            let lock = NSLock()
            let faults = self.faults
            server = try ModbusServer(bus: "sim", transport: .tcp(host: "127.0.0.1", port: 0), units: [1: bank]) { _, answer in
                let action = faults.withLock { f -> UInt8? in
                    if f.drop > 0 { f.drop -= 1; return 0 }
                    return f.exception
                }
                switch action {
                case .none: lock.withLock { answer() }
                case .some(0): break
                case .some(let code): answer.exception(code)
                }
            }
            try server.start()
            let bit = { (table: DeviceProfile.RegisterTable, address: UInt16) in DeviceProfile.Point(table: table, address: address, type: .bool) }
            let profile = DeviceProfile(name: "ref-bollard", kind: .bollard, points: [
                "motor_up": bit(.coil, 0), "motor_down": bit(.coil, 1), "warning": bit(.coil, 2), "buzzer": bit(.coil, 3),
                "at_top": bit(.discrete, 0), "at_bottom": bit(.discrete, 1), "loop": bit(.discrete, 2),
                "photocell": bit(.discrete, 3), "motor_fault": bit(.discrete, 4), "emergency": bit(.discrete, 5),
            ])
            bus = ModbusBus(name: "field", transport: .tcp(host: "127.0.0.1", port: server.port ?? 0), timeout: .milliseconds(100),
                            pollInterval: .milliseconds(30), logger: Logger(label: "test.bus"))
            bus.addDevice(ModbusDeviceSpec(id: 0, name: "bollard-1", unit: 1, profile: profile))
            let readings = self.readings
            bus.onReading { r in readings.withLock { $0.append(r) } }
            bus.start()
        }

        var all: [DeviceReading] { readings.withLock { $0 } }

        func stop() {
            bus.stop()
            server.stop()
        }
    }

    @Test func aSingleMissedPollDeliversNothingAndTheLoopStaysOccupied() throws {
        let field = try Field()
        defer { field.stop() }
        #expect(Wait.until(timeout: .seconds(5)) { field.all.contains { $0.online && $0.values[.loop] == 1 } })
        for _ in 0..<5 {
            // One request unanswered: the poll fails once (below the offline threshold).
            field.faults.withLock { $0.drop = 1 }
            let before = field.all.count
            #expect(Wait.until(timeout: .seconds(2)) { field.faults.withLock { $0.drop } == 0 && field.all.count > before + 2 })
        }
        let all = field.all
        let madeUp = all.filter { $0.online && $0.values[.loop] != 1 }
        #expect(madeUp.isEmpty, "online readings without the occupied loop: \(madeUp.count) of \(all.count)")
        #expect(all.allSatisfy { $0.online }, "a single miss must not mark the device offline")
        #expect(field.bus.currentStats.failures >= 5)
    }

    @Test func exceptionAnswersMakeTheDeviceOfflineNamingTheException() throws {
        let field = try Field()
        defer { field.stop() }
        #expect(Wait.until(timeout: .seconds(5)) { field.all.contains { $0.online } })
        field.faults.withLock { $0.exception = 4 }
        #expect(Wait.until(timeout: .seconds(3)) { field.all.last?.online == false })
        let offline = try #require(field.all.last)
        #expect(offline.values.isEmpty)
        #expect(offline.error?.contains("Modbus exception 4 (server device failure)") == true, "\(offline.error ?? "nil")")
        #expect(!field.all.contains { $0.online && $0.values.isEmpty })
        field.faults.withLock { $0.exception = nil }
        // Retried after the 1 s backoff; back online with real values.
        #expect(Wait.until(timeout: .seconds(4)) { field.all.last?.online == true })
        #expect(field.all.last?.values[.loop] == 1)
    }
}
