/// A Modbus request or connection failed: what kind of failure, and where on the field bus.
///
/// Carries the context a technician needs (bus, unit, table, register range, errno) and prints
/// it as one line, e.g. `bus field unit 30: read discrete 0..5: timeout (no answer within 200 ms)`.
/// Values are made only on failure paths; the success path of a request builds none.
public struct ModbusError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, in the terms a caller reacts to.
    public enum Kind: Sendable, Equatable {
        /// The TCP connection or the serial port could not be opened.
        case connectFailed
        /// No (complete) answer within the response timeout: device offline, wrong unit id, broken wire.
        case timeout
        /// The device answered with a Modbus exception (1 illegal function, 2 illegal data address, ...).
        case exception(code: UInt8)
        /// The connection broke (reset, closed by peer, write failed).
        case io
        /// An answer arrived but was wrong (bad CRC, wrong length, wrong unit, wrong transaction).
        case invalidResponse
        /// The request or configuration itself is invalid (count out of range, bad transport).
        case invalidArgument
    }

    /// Which request was running when the error happened.
    public enum Operation: String, Sendable {
        case connect, read, write, serve
    }

    public var kind: Kind
    public var bus: String
    public var unit: UInt8?
    public var operation: Operation?
    public var table: ModbusTable?
    public var address: UInt16?
    public var count: Int?
    /// The errno libmodbus or the system reported, when there was one.
    public var errno: Int32?
    /// What happened, in words (without the bus/unit/range prefix).
    public var message: String

    public init(kind: Kind, bus: String, unit: UInt8? = nil, operation: Operation? = nil, table: ModbusTable? = nil,
                address: UInt16? = nil, count: Int? = nil, errno: Int32? = nil, message: String) {
        self.kind = kind
        self.bus = bus
        self.unit = unit
        self.operation = operation
        self.table = table
        self.address = address
        self.count = count
        self.errno = errno
        self.message = message
    }

    /// The Modbus exception code when `kind` is `.exception`, else nil.
    public var exceptionCode: UInt8? {
        if case let .exception(code) = kind { return code }
        return nil
    }

    /// True when the device did not answer at all (timeout, lost connection, could not connect),
    /// as opposed to answering wrongly or refusing the request.
    public var isCommunicationLoss: Bool {
        switch kind {
        case .timeout, .io, .connectFailed: return true
        case .exception, .invalidResponse, .invalidArgument: return false
        }
    }

    public var description: String {
        var text = "bus \(bus)"
        if let unit { text += " unit \(unit)" }
        text += ": "
        if let operation, let table {
            text += "\(operation.rawValue) \(table.rawValue)"
            if let address { text += " \(Self.range(address, count ?? 1))" }
            text += ": "
        }
        return text + message
    }

    /// `first..last` of `count` items from `address`, as technicians read register ranges.
    static func range(_ address: UInt16, _ count: Int) -> String {
        "\(address)..\(Int(address) + max(count, 1) - 1)"
    }

    /// Name of a Modbus exception code, from the specification.
    public static func exceptionName(_ code: UInt8) -> String {
        switch code {
        case 1: return "illegal function"
        case 2: return "illegal data address"
        case 3: return "illegal data value"
        case 4: return "server device failure"
        case 5: return "acknowledge"
        case 6: return "server device busy"
        case 7: return "negative acknowledge"
        case 8: return "memory parity error"
        case 10: return "gateway path unavailable"
        case 11: return "gateway target device failed to respond"
        default: return "unknown exception"
        }
    }
}
