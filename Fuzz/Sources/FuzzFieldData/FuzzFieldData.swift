// Fuzz target: field data, as a bus hands it to the control loop. The input is a sequence of
// polls: a device of examples/agent-sim.yaml (by index), online or not, an age, and raw register
// words for every read block of the device's profile; each goes through PointCodec.decode (the
// checked conversions), becomes a DeviceReading and is applied by a control core (not started:
// the field is a recorder) stepping on a virtual clock; now and then a bollard command.
//
// Invariants: nothing traps; every write carries finite values, coils 0 or 1; no write leaves a
// bollard's two motor coils on; a value decode reports invalid is absent from the reading.
import EdgeRuntime
import Drivers
import Foundation
import FuzzSupport
import Logging
import Synchronization
@testable import EdgeAgent

@_cdecl("FuzzFieldData_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.main(argc, argv, seeds: { FieldSeeds.all }) { data, size in fuzz(data, size) }
}

/// The field as a recorder that checks every write the step sends.
final class CheckingField: FieldPort {
    let names: [String]
    init(names: [String]) { self.names = names }
    func write(device: Int, points: [PointWrite], priority: WritePriority, completion: @escaping @Sendable (Result<Void, FieldDeviceError>) -> Void) {
        var coils: [String: Double] = [:]
        for p in points {
            require(p.value.isFinite, "\(names[device]): \(p.point) = \(p.value)")
            if let role = PointRole(pointName: p.point), role.safeValue != nil || role == .warning {
                require(p.value == 0 || p.value == 1, "\(names[device]): coil \(p.point) = \(p.value)")
            }
            coils[p.point] = p.value
        }
        require(!(coils["motor_up"] == 1 && coils["motor_down"] == 1), "\(names[device]): both motor coils on in one write \(points)")
        completion(.success(()))
    }
}

enum FieldHarness {
    static let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
    static let config: AgentConfig = {
        do {
            let text = try FuzzFixture.repositoryText("examples/agent-sim.yaml")
            return try ConfigLoader.load(text: text, path: FuzzFixture.shared.dir + "/etc/agent-sim.yaml")
        } catch {
            fatalError("examples/agent-sim.yaml does not load in the fuzz fixture: \(error)")
        }
    }()
    static let map = FieldMap(config: config)
    /// Modbus devices and their codecs.
    static let polled: [(id: Int, codec: PointCodec)] = map.names.indices.compactMap { id in
        map.profiles[id].map { (id, PointCodec(profile: $0)) }
    }
    static let bollard = config.bollards.keys.sorted().first
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.withInput(data, size) { bytes in
        guard bytes.count <= 20_000, !FieldHarness.polled.isEmpty else { return -1 }
        let inbox = ControlInbox()
        let core = ControlCore(config: FieldHarness.config, field: CheckingField(names: FieldHarness.map.names), inbox: inbox,
                               logger: FieldHarness.logger, wallClock: { Date(timeIntervalSince1970: 1_764_806_400) }, onEvents: { _ in })
        var now = MonotonicInstant(nanoseconds: 1_000_000_000_000)
        var i = 0
        func byte() -> UInt8? {
            guard i < bytes.count else { return nil }
            defer { i += 1 }
            return bytes[i]
        }
        while let head = byte(), let flags = byte() {
            let (id, codec) = FieldHarness.polled[Int(head) % FieldHarness.polled.count]
            var blocks: [[UInt16]] = []
            for b in codec.blocks {
                var words: [UInt16] = []
                for _ in 0..<b.count {
                    let hi = byte() ?? 0, lo = byte() ?? 0
                    words.append(UInt16(hi) << 8 | UInt16(lo))
                }
                blocks.append(words)
            }
            var values = PointValues()
            let invalid = codec.decode(blocks: blocks, into: &values)
            for line in invalid {
                let name = String(line.prefix { $0 != ":" })
                if let role = PointRole(pointName: name) { require(values[role] == nil, "\(name) reported invalid but kept: \(line)") }
            }
            let online = flags & 0x80 == 0
            let age = Int64(flags & 0x3F) * 10_000_000
            inbox.post(.reading(DeviceReading(device: id, online: online, values: online ? values : PointValues(),
                                              timestampNanos: max(0, now.nanoseconds - age), invalid: online ? invalid : [])))
            if flags & 0x40 != 0, let b = FieldHarness.bollard {
                let action: CommandAction = [.raise, .lower, .emergencyLower, .clearEmergency][Int(head >> 6)]
                _ = core.execute(AgentCommand(origin: .local(uid: 0), id: "fuzz", target: b, action: action, args: [:]), now: now)
            }
            now = now + .milliseconds(Int64(head & 0x3F) + 1)
            core.step(now: now)
        }
        return 0
    }
}

/// Seeds: every device polled once with zeros, with 0xFFFF, and a bollard raise on a clear world.
enum FieldSeeds {
    static var all: [Seed] {
        var seeds: [Seed] = []
        for (k, (_, codec)) in FieldHarness.polled.enumerated() {
            let words = codec.blocks.reduce(0) { $0 + $1.count }
            seeds.append(Seed("zeros-\(k)", [UInt8(k), 0] + [UInt8](repeating: 0, count: words * 2)))
            seeds.append(Seed("ones-\(k)", [UInt8(k), 0] + [UInt8](repeating: 0xFF, count: words * 2)))
        }
        return seeds
    }
}
