/// Serial parity of an RTU line, as libmodbus spells it (`N`, `E`, `O`).
public enum ModbusParity: Character, Sendable {
    case none = "N", even = "E", odd = "O"
}

/// Where a Modbus bus is reached: a TCP endpoint, or a serial (RS-485) port.
///
/// Invariant: values are what the caller configured; they are checked when a client or
/// server is made from them (port 0...65535, data bits 5...8, stop bits 1...2, baud > 0).
public enum ModbusTransport: Sendable, Hashable {
    case tcp(host: String, port: Int)
    case rtu(device: String, baud: Int, parity: ModbusParity, dataBits: Int, stopBits: Int)

    /// Short text for logs and errors: `tcp 127.0.0.1:1502`, `rtu /dev/ttyS1 19200 8E1`.
    public var summary: String {
        switch self {
        case let .tcp(host, port):
            return host.contains(":") ? "tcp [\(host)]:\(port)" : "tcp \(host):\(port)"
        case let .rtu(device, baud, parity, dataBits, stopBits):
            return "rtu \(device) \(baud) \(dataBits)\(parity.rawValue)\(stopBits)"
        }
    }

    /// Why the transport cannot be used, or nil when it is well formed.
    var problem: String? {
        switch self {
        case let .tcp(host, port):
            if host.isEmpty { return "empty host" }
            if !(0...65535).contains(port) { return "port \(port) out of range 0...65535" }
        case let .rtu(device, baud, _, dataBits, stopBits):
            if device.isEmpty { return "empty serial device path" }
            if baud <= 0 { return "baud \(baud) must be positive" }
            if !(5...8).contains(dataBits) { return "data bits \(dataBits) out of range 5...8" }
            if !(1...2).contains(stopBits) { return "stop bits \(stopBits) out of range 1...2" }
        }
        return nil
    }
}

/// The four Modbus data tables. Coils and holding registers are read/write; discrete inputs and
/// input registers are read-only.
public enum ModbusTable: String, Sendable, CaseIterable {
    case coil, discrete, holding, input

    /// True for the single-bit tables (coils, discrete inputs).
    public var isBit: Bool { self == .coil || self == .discrete }

    /// Most items one request may read from this table (Modbus: 2000 bits, 125 registers).
    public var maxReadCount: Int { isBit ? 2000 : 125 }

    /// Most items one request may write to this table (Modbus: 1968 coils, 123 registers; 0 when read-only).
    public var maxWriteCount: Int {
        switch self {
        case .coil: return 1968
        case .holding: return 123
        case .discrete, .input: return 0
        }
    }
}

/// One request a `ModbusServer` received, decoded far enough for a simulator's hook.
///
/// `table` is nil for function codes that touch no table (or that the server does not know);
/// `count` is the number of items addressed (1 for single writes).
public struct ModbusRequest: Sendable, Equatable, CustomStringConvertible {
    public var unit: UInt8
    public var function: UInt8
    public var table: ModbusTable?
    public var address: UInt16
    public var count: Int
    /// True when the request changes coils or holding registers.
    public var isWrite: Bool

    public init(unit: UInt8, function: UInt8, table: ModbusTable?, address: UInt16, count: Int, isWrite: Bool) {
        self.unit = unit
        self.function = function
        self.table = table
        self.address = address
        self.count = count
        self.isWrite = isWrite
    }

    /// Decodes the PDU (function code first). Unknown functions give `table == nil`.
    init(unit: UInt8, pdu: ArraySlice<UInt8>) {
        let b = Array(pdu)
        let function = b.first ?? 0
        func word(_ i: Int) -> Int { i + 1 < b.count ? Int(b[i]) << 8 | Int(b[i + 1]) : 0 }
        var table: ModbusTable?
        var address = 0, count = 0, isWrite = false
        switch function {
        case 1: table = .coil; address = word(1); count = word(3)
        case 2: table = .discrete; address = word(1); count = word(3)
        case 3: table = .holding; address = word(1); count = word(3)
        case 4: table = .input; address = word(1); count = word(3)
        case 5: table = .coil; address = word(1); count = 1; isWrite = true
        case 6: table = .holding; address = word(1); count = 1; isWrite = true
        case 15: table = .coil; address = word(1); count = word(3); isWrite = true
        case 16: table = .holding; address = word(1); count = word(3); isWrite = true
        case 22: table = .holding; address = word(1); count = 1; isWrite = true
        case 23: table = .holding; address = word(5); count = word(7); isWrite = true
        default: break
        }
        self.init(unit: unit, function: function, table: table, address: UInt16(truncatingIfNeeded: address), count: count, isWrite: isWrite)
    }

    public var description: String {
        guard let table else { return "unit \(unit) function \(function)" }
        return "unit \(unit) \(isWrite ? "write" : "read") \(table.rawValue) \(ModbusError.range(address, count))"
    }
}

extension Duration {
    /// Whole milliseconds (rounded down), for messages.
    var wholeMilliseconds: Int64 {
        let c = components
        return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
    }

    /// Split into seconds and microseconds, for libmodbus's timeout calls; negative values become zero.
    var secondsAndMicroseconds: (UInt32, UInt32) {
        let c = components
        guard c.seconds >= 0, c.attoseconds >= 0 else { return (0, 0) }
        return (UInt32(clamping: c.seconds), UInt32(c.attoseconds / 1_000_000_000_000))
    }
}
