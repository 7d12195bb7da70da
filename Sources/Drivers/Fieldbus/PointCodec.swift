/// Turns a device profile's points into coalesced read blocks and decodes register values into
/// engineering values (and back), so drivers never see raw addresses.
///
/// Invariant: every readable point of the profile lies inside exactly one block of its table;
/// blocks cover only addresses that belong to some point (no reads of unmapped registers).
///
/// Fast and slow blocks, decided once here: a block that holds a safety input of the profile's
/// kind (`PointRole.isSafetyInput`) is read at every poll (`.everyPoll`); the others (coil or
/// holding read-back, lux, telemetry) are `.slow`, read at `PollPeriods.slowBlocks` (when and
/// what else: `ModbusBus`). A profile with no safety input at all (a luminaire) has only
/// `.everyPoll` blocks: a poll always reads something, and its period is what its data needs.
public struct PointCodec: Sendable {
    /// One contiguous read of a table.
    public struct Block: Sendable, Equatable {
        /// How often a block is read.
        public enum Refresh: UInt8, Sendable {
            /// At every poll: it holds a safety input (or the profile has none).
            case everyPoll
            /// At `PollPeriods.slowBlocks` and whenever it must be fresh (`ModbusBus`).
            case slow
        }
        public var table: DeviceProfile.RegisterTable
        public var address: UInt16
        public var count: Int
        public var refresh: Refresh

        public init(table: DeviceProfile.RegisterTable, address: UInt16, count: Int, refresh: Refresh = .everyPoll) {
            self.table = table
            self.address = address
            self.count = count
            self.refresh = refresh
        }
    }

    public let profile: DeviceProfile
    /// Reads that cover every point, fewest requests first (contiguous points merged).
    public let blocks: [Block]
    /// Some block is `.slow`.
    public let hasSlowBlocks: Bool
    /// The roles decoded from `.slow` blocks (status bits included): absent from a poll that
    /// did not read them.
    public let slowRoles: PointRoleSet
    /// Where each role's value sits in the blocks, worked out once: decoding a poll is then
    /// a walk over this array (no search, no string, no dictionary).
    private let plan: [Planned]

    private struct Planned: Sendable {
        var role: PointRole
        var block: Int
        var refresh: Block.Refresh
        var index: Int
        var point: DeviceProfile.Point
        /// Status bits named by the profile that are roles (`lamp_failure` ...).
        var bits: [(bit: UInt32, role: PointRole)]
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
        var plan: [Planned] = []
        for (name, point) in profile.points.sorted(by: { $0.key < $1.key }) {
            // Points no driver uses are not read into a reading (they are the profile's notes).
            guard let role = PointRole(pointName: name), !role.isStatusBit else { continue }
            guard let bi = blocks.firstIndex(where: { b in
                b.table == point.table && Int(point.address) >= Int(b.address) && Int(point.address) + point.width <= Int(b.address) + b.count
            }) else { continue }
            let bits = point.bits.sorted { $0.key < $1.key }.compactMap { bit, bitName in
                PointRole(pointName: bitName).map { (bit: UInt32(bit), role: $0) }
            }
            plan.append(Planned(role: role, block: bi, refresh: .everyPoll, index: Int(point.address) - Int(blocks[bi].address), point: point, bits: bits))
        }
        // Fast blocks: those holding a safety input; none at all: every block is read every poll.
        let kind = profile.kind
        let fast = Set(plan.filter { $0.role.isSafetyInput(of: kind) }.map(\.block))
        var slowRoles = PointRoleSet()
        if !fast.isEmpty {
            for b in blocks.indices where !fast.contains(b) { blocks[b].refresh = .slow }
            for i in plan.indices where !fast.contains(plan[i].block) {
                plan[i].refresh = .slow
                slowRoles.insert(plan[i].role)
                for (_, role) in plan[i].bits { slowRoles.insert(role) }
            }
        }
        self.blocks = blocks
        self.plan = plan
        self.slowRoles = slowRoles
        hasSlowBlocks = blocks.contains { $0.refresh == .slow }
    }

    /// Modbus limits per request: 2000 bits, 125 registers.
    static func maxBlock(_ table: DeviceProfile.RegisterTable) -> Int { table.isBit ? 2000 : 125 }

    /// Decodes every role's point found in `raw` (block index -> register/bit values as
    /// UInt16) into its slot of `values`; status bits from the status word's raw bits. With
    /// `refresh`, only the roles of the blocks of that kind (the others' slots are untouched,
    /// and their entries of `raw` are not looked at).
    ///
    /// Every conversion is checked: a value that is not finite, or outside its role's valid
    /// range (a sign read wrong, a register holding garbage), leaves its slot empty (and its
    /// status bits, for a bad status word) and is returned as one line naming the point and
    /// the value, for the log and the device's `invalid_value` alarm. Never traps.
    @discardableResult
    public func decode(blocks raw: [[UInt16]], into values: inout PointValues, refresh: Block.Refresh? = nil) -> [String] {
        var problems: [String] = []
        for p in plan {
            guard p.block < raw.count, refresh == nil || p.refresh == refresh else { continue }
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
            let value = rawValue * point.scale + point.offset
            guard value.isFinite else {
                problems.append("\(p.role.pointName): \(value) is not a finite number (raw \(rawValue))")
                values[p.role] = nil
                for (_, role) in p.bits { values[role] = nil }
                continue
            }
            if let range = p.role.validRange, !range.contains(value) {
                problems.append("\(p.role.pointName): \(PointCodec.plain(value)) is out of range (\(PointCodec.plain(range.lowerBound)) to \(PointCodec.plain(range.upperBound)))")
                values[p.role] = nil
                for (_, role) in p.bits { values[role] = nil }
                continue
            }
            values[p.role] = value
            for (bit, role) in p.bits {
                values[role] = (UInt32(regs[i]) >> bit) & 1 == 1 ? 1 : 0
            }
        }
        return problems
    }

    /// `1` for 1.0, `-0.5` for -0.5.
    static func plain(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }

    /// Encodes an engineering value for a writable point into register words (or 0/1 for bits).
    public func encode(point name: String, value: Double) throws(FieldDeviceError) -> (DeviceProfile.Point, [UInt16]) {
        guard let point = profile.points[name] else {
            throw FieldDeviceError(device: "", message: "profile \(profile.name) has no point \(name)")
        }
        guard point.isWritable else {
            throw FieldDeviceError(device: "", message: "point \(name) of profile \(profile.name) is read-only (\(point.table.rawValue) \(point.address))")
        }
        // NaN != 0 would read as "on" for a coil: refuse anything not a number.
        guard value.isFinite else { throw FieldDeviceError(device: "", message: "value \(value) for \(name) is not a finite number") }
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
