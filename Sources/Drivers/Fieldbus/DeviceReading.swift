/// A Modbus device as its bus sees it: its id in the agent's compiled config, its name (for
/// logs), a unit id and the profile that maps its registers.
public struct ModbusDeviceSpec: Sendable {
    public var id: Int
    public var name: String
    public var unit: UInt8
    public var profile: DeviceProfile
    public init(id: Int, name: String, unit: UInt8, profile: DeviceProfile) {
        self.id = id
        self.name = name
        self.unit = unit
        self.profile = profile
    }
}

/// The latest poll of one device: its values by role, or why it is offline.
///
/// Invariants: `timestampNanos` is the CLOCK_MONOTONIC start of the poll (what the safety
/// rules age the values from; it is the age of the safety inputs, read at every poll); an
/// offline reading has no values; a value the device sent that could not be used is absent
/// from `values` and described in `invalid`. A reading carries what was read: the roles of
/// blocks this poll did not read (slow blocks between their reads, `PointCodec`) are in
/// `unread` and absent from `values`. Absent is not zero and not "off": a consumer keeps its
/// last known value of an unread role, and compares nothing against it.
public struct DeviceReading: Sendable {
    /// The device's id in the compiled config (`ModbusDeviceSpec.id`).
    public var device: Int
    public var online: Bool
    public var values: PointValues
    /// CLOCK_MONOTONIC ns when the poll began.
    public var timestampNanos: Int64
    /// The last error (timeout, exception, I/O) when the device is offline.
    public var error: String?
    /// One line per value that could not be used (not finite, out of its role's range); for an
    /// unread block, the lines of its last read.
    public var invalid: [String]
    /// Roles of the blocks this poll did not read (empty: every block was read).
    public var unread: PointRoleSet

    public init(device: Int, online: Bool, values: PointValues = PointValues(), timestampNanos: Int64, error: String? = nil, invalid: [String] = [],
                unread: PointRoleSet = PointRoleSet()) {
        self.device = device
        self.online = online
        self.values = values
        self.timestampNanos = timestampNanos
        self.error = error
        self.invalid = invalid
        self.unread = unread
    }
}
