// Fuzz target: device profiles (ProfileLoader.parse) and gateway boards (BoardLoader.parse);
// every input is tried as both.
//
// Invariants: parsing never traps; an error names the file and a line inside the text; an
// accepted profile has its kind's required points in usable tables, no overlapping points,
// registers within 0-65535, status bits only on 16-bit registers, and a PointCodec whose read
// blocks cover every point within Modbus request limits (and which decodes and encodes without
// trapping); an accepted board has id names, unique chip offsets, debounce only on inputs and
// absolute serial device paths.
import Drivers
import EdgeAgent
import Foundation
import FuzzSupport

@_cdecl("FuzzProfile_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.main(argc, argv, seeds: seeds) { data, size in fuzz(data, size) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.withInput(data, size) { bytes in
        guard let text = FuzzInput.utf8(bytes) else { return -1 }
        let fixture = FuzzFixture.shared
        do throws(ConfigError) {
            let profile = try ProfileLoader.parse(text, file: fixture.profilePath)
            FuzzDriver.explain("profile accepted: \(profile.name), \(profile.points.count) points")
            ProfileChecks.accepted(profile)
        } catch {
            FuzzDriver.explain("profile refused: \(error)")
            Check.configError(error, text: text, textFile: fixture.profilePath)
        }
        do throws(ConfigError) {
            let board = try BoardLoader.parse(text, file: fixture.boardPath)
            FuzzDriver.explain("board accepted: \(board.name), \(board.lines.count) lines")
            BoardChecks.accepted(board)
        } catch {
            FuzzDriver.explain("board refused: \(error)")
            Check.configError(error, text: text, textFile: fixture.boardPath)
        }
        return 0
    }
}

/// The repository's profiles and boards as they are.
func seeds() throws -> [Seed] {
    var seeds: [Seed] = []
    for folder in ["Profiles", "Boards"] {
        for file in try FuzzFixture.yamlFiles(in: folder) {
            seeds.append(Seed(folder.lowercased() + "-" + file, try FuzzFixture.repositoryText(folder + "/" + file)))
        }
    }
    // Types, word order, scale/offset and bit names the reference profiles do not all use.
    seeds.append(Seed("profiles-vendor-meter.yaml", """
        name: vendor_meter.v2
        kind: luminaire
        description: "A dimmer with 32-bit counters, low word first"
        points:
          setpoint: {table: holding, address: 0x10, type: uint16, scale: 0.5}
          fade: {table: holding, address: 17}
          level: {table: input, address: 0, type: int16, offset: -100}
          energy_wh: {table: input, address: 65534, type: uint32, word_order: low_first, scale: 0.001}
          power_w: {table: holding, address: 20, type: int32, word_order: high_first}
          status: {table: input, address: 4, bits: {0: lamp_failure, 0x1: driver_fault, 15: over_temperature}}

        """))
    return seeds
}

enum ProfileChecks {
    /// Points each kind's driver must find, with the tables it can use them in (CONTRACT.md 2).
    static let required: [DeviceProfile.Kind: [String: [DeviceProfile.RegisterTable]]] = [
        .luminaire: ["setpoint": [.holding], "level": [.input, .holding]],
        .presence: ["presence": [.discrete, .coil, .input, .holding]],
        .bollard: ["motor_up": [.coil], "motor_down": [.coil], "warning": [.coil], "at_top": [.discrete],
                   "at_bottom": [.discrete], "loop": [.discrete], "photocell": [.discrete], "emergency": [.discrete]],
        .signalIO: ["request_1": [.coil]],
    ]

    static func accepted(_ profile: DeviceProfile) {
        require(!profile.name.isEmpty && profile.name.count <= 64, "profile name \(profile.name.debugDescription)")
        for (point, tables) in required[profile.kind] ?? [:] {
            let p = profile.points[point]
            require(p.map { tables.contains($0.table) } ?? false, "\(profile.kind) profile: point \(point) missing or in table \(String(describing: p?.table))")
        }
        let points = profile.points.sorted { $0.key < $1.key }
        for (i, (name, p)) in points.enumerated() {
            require(Int(p.address) + p.width <= 65536, "point \(name) runs past 65535")
            require(!p.table.isBit || p.type == .bool, "bit point \(name) of type \(p.type)")
            require(p.scale != 0 && p.scale.isFinite && p.offset.isFinite, "point \(name) scale \(p.scale) offset \(p.offset)")
            require(p.bits.isEmpty || p.type == .uint16 || p.type == .int16, "bits on \(p.type) point \(name)")
            require(p.bits.keys.allSatisfy { (0...15).contains($0) }, "point \(name) bits \(p.bits.keys.sorted())")
            for (other, q) in points[(i + 1)...] where q.table == p.table {
                let overlap = Int(p.address) < Int(q.address) + q.width && Int(q.address) < Int(p.address) + p.width
                require(!overlap, "points \(name) and \(other) overlap in \(p.table)")
            }
        }
        codec(profile)
    }

    /// What a bus does with an accepted profile: plan the reads, decode them, encode writes.
    static func codec(_ profile: DeviceProfile) {
        let codec = PointCodec(profile: profile)
        for b in codec.blocks {
            require(b.count >= 1 && b.count <= (b.table.isBit ? 2000 : 125) && Int(b.address) + b.count <= 65536, "block \(b)")
        }
        for (name, p) in profile.points {
            let holders = codec.blocks.filter { $0.table == p.table && $0.address <= p.address && Int(p.address) + p.width <= Int($0.address) + $0.count }
            require(holders.count == 1, "point \(name) is in \(holders.count) read blocks")
        }
        for fill in [UInt16(0), 0xFFFF, 0x8001] {
            var values = PointValues()
            let invalid = codec.decode(blocks: codec.blocks.map { [UInt16](repeating: fill, count: $0.count) }, into: &values)
            // Every role's point is decoded, or reported invalid (never a trap, never silently lost).
            for name in profile.points.keys {
                guard let role = PointRole(pointName: name), !role.isStatusBit else { continue }
                require(values[role] != nil || invalid.contains { $0.hasPrefix(name + ":") }, "point \(name) neither decoded nor reported invalid")
            }
        }
        for (name, p) in profile.points where p.isWritable {
            for value in [0, 1, 50.5, 100, -1, 1e300, -Double.greatestFiniteMagnitude] {
                if let (_, words) = try? codec.encode(point: name, value: value) {
                    require(words.count == p.width, "point \(name): \(words.count) words for width \(p.width)")
                }
            }
        }
    }
}

enum BoardChecks {
    static func accepted(_ board: Board) {
        require(!board.name.isEmpty, "board without a name")
        var slots: Set<String> = []
        for (name, line) in board.lines {
            require(ConfigSyntax.isID(name), "line name \(name.debugDescription)")
            require(!line.chip.isEmpty, "line \(name) without a chip")
            require(slots.insert("\(line.chip)/\(line.offset)").inserted, "\(line.chip) offset \(line.offset) used twice")
            require(line.direction == .input || line.debounce == .zero, "debounce on output line \(name)")
            require(line.debounce >= .zero && line.debounce <= .seconds(10), "line \(name) debounce \(line.debounce)")
        }
        for (name, device) in board.serialPorts {
            require(ConfigSyntax.isID(name) && device.hasPrefix("/"), "serial port \(name) = \(device)")
        }
        require(board.simulatorSocket == nil || board.gpioBackend == .simulated, "simulator socket on a libgpiod board")
    }
}
