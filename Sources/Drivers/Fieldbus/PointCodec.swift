/// Turns a device profile's points into coalesced read blocks and decodes register values into
/// engineering values (and back), so drivers never see raw addresses.
///
/// Invariant: every readable point of the profile lies inside exactly one block of its table;
/// blocks cover only addresses that belong to some point (no reads of unmapped registers).
public struct PointCodec: Sendable {
    /// One contiguous read of a table.
    public struct Block: Sendable, Equatable {
        public var table: DeviceProfile.RegisterTable
        public var address: UInt16
        public var count: Int
    }

    public let profile: DeviceProfile
    /// Reads that cover every point, fewest requests first (contiguous points merged).
    public let blocks: [Block]
    /// Where each point's value sits in the blocks, worked out once: decoding a poll is then
    /// a walk over this array (no search, no iteration of the profile's dictionary).
    private let plan: [Planned]
    /// Entries `decode` writes (points plus bit names).
    private let valueCount: Int

    private struct Planned: Sendable {
        var name: String
        var block: Int
        var index: Int
        var point: DeviceProfile.Point
        var bits: [(bit: UInt32, name: String)]
    }

    public init(profile: DeviceProfile) {
        self.profile = profile
        var blocks: [Block] = []
        for table in DeviceProfile.RegisterTable.allCases {
            let spans = profile.points.values
                .filter { $0.table == table }
                .map { (Int($0.address), Int($0.address) + $0.width) }
                .sorted { $0.0 < $1.0 }
            var current: (Int, Int)?
            for span in spans {
                if let c = current, span.0 <= c.1, span.1 - c.0 <= PointCodec.maxBlock(table) {
                    current = (c.0, max(c.1, span.1))
                } else {
                    if let c = current { blocks.append(Block(table: table, address: UInt16(c.0), count: c.1 - c.0)) }
                    current = span
                }
            }
            if let c = current { blocks.append(Block(table: table, address: UInt16(c.0), count: c.1 - c.0)) }
        }
        self.blocks = blocks
        var plan: [Planned] = []
        for (name, point) in profile.points.sorted(by: { $0.key < $1.key }) {
            guard let bi = blocks.firstIndex(where: { b in
                b.table == point.table && Int(point.address) >= Int(b.address) && Int(point.address) + point.width <= Int(b.address) + b.count
            }) else { continue }
            let bits = point.bits.sorted { $0.key < $1.key }.map { (bit: UInt32($0.key), name: $0.value) }
            plan.append(Planned(name: name, block: bi, index: Int(point.address) - Int(blocks[bi].address), point: point, bits: bits))
        }
        self.plan = plan
        valueCount = plan.reduce(0) { $0 + 1 + $1.bits.count }
    }

    /// Modbus limits per request: 2000 bits, 125 registers.
    static func maxBlock(_ table: DeviceProfile.RegisterTable) -> Int { table.isBit ? 2000 : 125 }

    /// Decodes all points found in `raw` (block index -> register/bit values as UInt16) into
    /// `values`: point name -> engineering value; bit fields also as `name` -> 0/1 per bit name.
    public func decode(blocks raw: [[UInt16]], into values: inout [String: Double]) {
        values.reserveCapacity(values.count + valueCount)
        for p in plan {
            guard p.block < raw.count else { continue }
            let regs = raw[p.block]
            let i = p.index
            let point = p.point
            guard i + point.width <= regs.count else { continue }
            let rawValue: Double
            switch point.type {
            case .bool: rawValue = regs[i] != 0 ? 1 : 0
            case .uint16: rawValue = Double(regs[i])
            case .int16: rawValue = Double(Int16(bitPattern: regs[i]))
            case .uint32, .int32:
                let (hi, lo) = point.wordOrder == .highFirst ? (regs[i], regs[i + 1]) : (regs[i + 1], regs[i])
                let u = (UInt32(hi) << 16) | UInt32(lo)
                rawValue = point.type == .uint32 ? Double(u) : Double(Int32(bitPattern: u))
            }
            values[p.name] = rawValue * point.scale + point.offset
            for (bit, bitName) in p.bits {
                values[bitName] = (UInt32(regs[i]) >> bit) & 1 == 1 ? 1 : 0
            }
        }
    }

    /// Encodes an engineering value for a writable point into register words (or 0/1 for bits).
    public func encode(point name: String, value: Double) throws(FieldDeviceError) -> (DeviceProfile.Point, [UInt16]) {
        guard let point = profile.points[name] else {
            throw FieldDeviceError(device: "", message: "profile \(profile.name) has no point \(name)")
        }
        guard point.isWritable else {
            throw FieldDeviceError(device: "", message: "point \(name) of profile \(profile.name) is read-only (\(point.table.rawValue) \(point.address))")
        }
        let raw = ((value - point.offset) / point.scale).rounded()
        switch point.type {
        case .bool: return (point, [raw != 0 ? 1 : 0])
        case .uint16:
            guard raw >= 0, raw <= 65535 else { throw FieldDeviceError(device: "", message: "value \(value) out of range for \(name)") }
            return (point, [UInt16(raw)])
        case .int16:
            guard raw >= -32768, raw <= 32767 else { throw FieldDeviceError(device: "", message: "value \(value) out of range for \(name)") }
            return (point, [UInt16(bitPattern: Int16(raw))])
        case .uint32, .int32:
            let u: UInt32
            if point.type == .uint32 {
                guard raw >= 0, raw <= 4_294_967_295 else { throw FieldDeviceError(device: "", message: "value \(value) out of range for \(name)") }
                u = UInt32(raw)
            } else {
                guard raw >= -2_147_483_648, raw <= 2_147_483_647 else { throw FieldDeviceError(device: "", message: "value \(value) out of range for \(name)") }
                u = UInt32(bitPattern: Int32(raw))
            }
            let hi = UInt16(u >> 16), lo = UInt16(u & 0xFFFF)
            return (point, point.wordOrder == .highFirst ? [hi, lo] : [lo, hi])
        }
    }
}

/// A field device failed or refused: which device, and what a technician should know.
public struct FieldDeviceError: Error, CustomStringConvertible, Sendable {
    public var device: String
    public var message: String
    /// True when the device did not answer at all (offline) rather than answering with an error.
    public var isCommunicationLoss: Bool

    public init(device: String, message: String, isCommunicationLoss: Bool = false) {
        self.device = device
        self.message = message
        self.isCommunicationLoss = isCommunicationLoss
    }

    public var description: String { device.isEmpty ? message : "\(device): \(message)" }
}
