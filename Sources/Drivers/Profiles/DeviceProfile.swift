/// A device profile: the register map of one kind of field device, loaded from `Profiles/*.yaml`.
///
/// A new vendor's device is a new profile file, not code. Point names are the contract's
/// telemetry names (`level`, `power_w`, `motor_up`, `loop`, `request_1` ...); drivers find
/// the points they need by name and role.
public struct DeviceProfile: Sendable, Hashable {
    /// What the device is in the field; selects the driver.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case luminaire
        case presence
        case bollard
        case signalIO = "signal-io"
    }

    public var name: String
    public var kind: Kind
    /// Free text: maker, model, notes.
    public var description: String
    /// Points by name.
    public var points: [String: Point]

    public init(name: String, kind: Kind, description: String = "", points: [String: Point]) {
        self.name = name
        self.kind = kind
        self.description = description
        self.points = points
    }

    /// One named value of the device: where it lives and how to turn registers into a number.
    public struct Point: Sendable, Hashable {
        public var table: RegisterTable
        /// 0-based protocol address.
        public var address: UInt16
        public var type: DataType
        /// engineering value = raw * scale + offset
        public var scale: Double
        public var offset: Double
        /// For 32-bit types: which 16-bit word comes first.
        public var wordOrder: WordOrder
        /// For status words: bit names (bit number -> name), e.g. 0: lamp_failure.
        public var bits: [Int: String]

        public init(table: RegisterTable, address: UInt16, type: DataType = .uint16, scale: Double = 1, offset: Double = 0, wordOrder: WordOrder = .highFirst, bits: [Int: String] = [:]) {
            self.table = table
            self.address = address
            self.type = type
            self.scale = scale
            self.offset = offset
            self.wordOrder = wordOrder
            self.bits = bits
        }

        /// Number of 16-bit registers (or bits, for coil/discrete) the point occupies.
        public var width: Int { type.registerCount }
        /// Whether the agent may write the point (coils and holding registers).
        public var isWritable: Bool { table == .coil || table == .holding }
    }

    /// The four Modbus tables.
    public enum RegisterTable: String, Sendable, Hashable, CaseIterable {
        case coil
        case discrete
        case holding
        case input
        /// Coils and discrete inputs are single bits.
        public var isBit: Bool { self == .coil || self == .discrete }
    }

    public enum DataType: String, Sendable, Hashable, CaseIterable {
        case bool
        case uint16
        case int16
        case uint32
        case int32
        public var registerCount: Int {
            switch self {
            case .bool, .uint16, .int16: return 1
            case .uint32, .int32: return 2
            }
        }
    }

    public enum WordOrder: String, Sendable, Hashable {
        case highFirst = "high_first"
        case lowFirst = "low_first"
    }
}
