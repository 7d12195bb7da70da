#if canImport(Glibc)
import Glibc
#endif
public import Logging

/// A Modbus master (client) for one bus: a TCP endpoint or one serial port, over libmodbus.
///
/// Threading: owned by one thread (the bus I/O thread); not thread-safe and not `Sendable`.
/// Requests connect on demand. A connection-level failure (reset, closed, bad data) closes the
/// TCP connection, so the next request reconnects; after a timeout pending input is flushed so a
/// late answer is not taken for the next one. On RTU a garbled answer (bad CRC, wrong unit or
/// function) keeps the port open: the client drops input until the line has been quiet for
/// `resyncQuiet` (at most one response timeout), so the rest of the frame is not read as the next
/// answer; opening the port drops stale input too (ptys and USB adapters keep bytes that arrived
/// while it was closed). libmodbus error recovery stays off: every failure is reported at once,
/// never retried here.
public final class ModbusClient {
    /// Bus name from the configuration, for errors and logs.
    public let bus: String
    public let transport: ModbusTransport
    private let context: LibModbusContext
    private let logger: Logger
    private var connected = false
    private var warnedNoRS485 = false

    /// Silence that ends an RTU resynchronisation: well above the 3.5-character frame gap at 9600 baud (4 ms).
    static let resyncQuiet = Duration.milliseconds(20)

    /// How long to wait for the first byte of an answer. Setting it also applies it to the
    /// connection at once.
    public var responseTimeout: Duration {
        didSet { context.setTimeouts(response: responseTimeout, byte: byteTimeout) }
    }

    /// Longest silence allowed between bytes of one answer (default: the response timeout).
    public var byteTimeout: Duration {
        didSet { context.setTimeouts(response: responseTimeout, byte: byteTimeout) }
    }

    /// Makes a client; does not connect yet. Throws `.invalidArgument` for a malformed transport.
    public init(bus: String, transport: ModbusTransport, responseTimeout: Duration = .milliseconds(500),
                logger: Logger = Logger(label: "edge.modbus")) throws(ModbusError) {
        if let problem = transport.problem {
            throw ModbusError(kind: .invalidArgument, bus: bus, operation: .connect, message: "\(transport.summary): \(problem)")
        }
        switch LibModbusContext.make(transport) {
        case let .success(context): self.context = context
        case let .failure(failure):
            throw ModbusError(kind: .invalidArgument, bus: bus, operation: .connect, errno: failure.errno,
                              message: "\(transport.summary): libmodbus refused the parameters: \(LibModbusErrno.text(failure.errno))")
        }
        self.bus = bus
        self.transport = transport
        self.responseTimeout = responseTimeout
        self.byteTimeout = responseTimeout
        var logger = logger
        logger[metadataKey: "bus"] = .string(bus)
        self.logger = logger
        context.setTimeouts(response: responseTimeout, byte: responseTimeout)
    }

    deinit { close() }

    /// True while a connection (or open serial port) is held.
    public var isConnected: Bool { connected }

    /// Opens the connection or serial port (no-op when already connected). On RTU, asks the
    /// driver for RS-485 mode; a port without it (ENOTTY: USB adapters with automatic direction,
    /// ptys) is accepted and logged once.
    public func connect() throws(ModbusError) {
        if connected { return }
        let rc = context.connect()
        if rc != 0 {
            context.close()
            throw ModbusError(kind: .connectFailed, bus: bus, operation: .connect, errno: rc,
                              message: "connect \(transport.summary) failed: \(LibModbusErrno.text(rc)) (errno \(rc))")
        }
        if context.isRTU {
            context.flush()
            let rs485 = context.enableRS485()
            if rs485 == ENOTTY {
                if !warnedNoRS485 {
                    warnedNoRS485 = true
                    logger.notice("serial port has no RS-485 mode (ENOTTY); relying on automatic direction control",
                                  metadata: ["transport": .string(transport.summary)])
                }
            } else if rs485 != 0 {
                context.close()
                throw ModbusError(kind: .connectFailed, bus: bus, operation: .connect, errno: rs485,
                                  message: "\(transport.summary): cannot enable RS-485 mode: \(LibModbusErrno.text(rs485)) (errno \(rs485))")
            }
        }
        connected = true
        logger.debug("connected", metadata: ["transport": .string(transport.summary)])
    }

    /// Closes the connection or serial port; the next request reconnects.
    public func close() {
        guard connected else { return }
        context.close()
        connected = false
        logger.debug("closed", metadata: ["transport": .string(transport.summary)])
    }

    // MARK: Reads

    /// Function 1: `count` coils from `address`.
    public func readCoils(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [Bool] {
        try readBits(.coil, unit: unit, address: address, count: count)
    }

    /// Function 2: `count` discrete inputs from `address`.
    public func readDiscreteInputs(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [Bool] {
        try readBits(.discrete, unit: unit, address: address, count: count)
    }

    /// Function 3: `count` holding registers from `address`.
    public func readHoldingRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try readRegisters(.holding, unit: unit, address: address, count: count)
    }

    /// Function 4: `count` input registers from `address`.
    public func readInputRegisters(unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try readRegisters(.input, unit: unit, address: address, count: count)
    }

    /// Reads `count` items of any table into `values` (bits as 0/1), replacing its contents.
    /// Allocates nothing when `values` already has the capacity: for polling loops.
    public func read(_ table: ModbusTable, unit: UInt8, address: UInt16, count: Int, into values: inout [UInt16]) throws(ModbusError) {
        try perform(.read, table, unit: unit, address: address, count: count) { $0.read(table, address: address, count: count) }
        values.removeAll(keepingCapacity: true)
        if table.isBit {
            for i in 0..<count { values.append(context.scratchBit(i) ? 1 : 0) }
        } else {
            for i in 0..<count { values.append(context.scratchRegister(i)) }
        }
    }

    private func readBits(_ table: ModbusTable, unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [Bool] {
        try perform(.read, table, unit: unit, address: address, count: count) { $0.read(table, address: address, count: count) }
        var bits = [Bool]()
        bits.reserveCapacity(count)
        for i in 0..<count { bits.append(context.scratchBit(i)) }
        return bits
    }

    private func readRegisters(_ table: ModbusTable, unit: UInt8, address: UInt16, count: Int) throws(ModbusError) -> [UInt16] {
        try perform(.read, table, unit: unit, address: address, count: count) { $0.read(table, address: address, count: count) }
        var registers = [UInt16]()
        registers.reserveCapacity(count)
        for i in 0..<count { registers.append(context.scratchRegister(i)) }
        return registers
    }

    // MARK: Writes

    /// Function 5: one coil.
    public func writeCoil(unit: UInt8, address: UInt16, value: Bool) throws(ModbusError) {
        try perform(.write, .coil, unit: unit, address: address, count: 1) { $0.writeBit(address: address, value: value) }
    }

    /// Function 15: consecutive coils from `address`.
    public func writeCoils(unit: UInt8, address: UInt16, values: [Bool]) throws(ModbusError) {
        try perform(.write, .coil, unit: unit, address: address, count: values.count) { $0.writeBits(address: address, values: values) }
    }

    /// Function 6: one holding register.
    public func writeRegister(unit: UInt8, address: UInt16, value: UInt16) throws(ModbusError) {
        try perform(.write, .holding, unit: unit, address: address, count: 1) { $0.writeRegister(address: address, value: value) }
    }

    /// Function 16: consecutive holding registers from `address`.
    public func writeRegisters(unit: UInt8, address: UInt16, values: [UInt16]) throws(ModbusError) {
        try perform(.write, .holding, unit: unit, address: address, count: values.count) { $0.writeRegisters(address: address, values: values) }
    }

    // MARK: Request plumbing

    /// Checks the arguments, connects if needed, selects the unit, runs `call` (which returns 0 or
    /// errno) and turns a failure into a `ModbusError`, closing or flushing the connection as the
    /// failure requires.
    private func perform(_ operation: ModbusError.Operation, _ table: ModbusTable, unit: UInt8, address: UInt16, count: Int,
                         _ call: (LibModbusContext) -> Int32) throws(ModbusError) {
        let limit = operation == .read ? table.maxReadCount : table.maxWriteCount
        guard count >= 1, count <= limit, Int(address) + count <= 65536 else {
            throw ModbusError(kind: .invalidArgument, bus: bus, unit: unit, operation: operation, table: table, address: address,
                              count: count, message: "count \(count) out of range 1...\(limit) (or past address 65535)")
        }
        if !connected {
            do { try connect() } catch {
                var e = error
                e.unit = unit; e.operation = operation; e.table = table; e.address = address; e.count = count
                throw e
            }
        }
        let unitRC = context.setUnit(unit)
        if unitRC != 0 {
            throw ModbusError(kind: .invalidArgument, bus: bus, unit: unit, operation: operation, table: table, address: address,
                              count: count, errno: unitRC, message: "unit id \(unit) not addressable on \(transport.summary)")
        }
        let rc = call(context)
        if rc == 0 { return }
        throw failure(rc, operation, table, unit: unit, address: address, count: count)
    }

    /// Classifies libmodbus's errno, repairs the connection state, and builds the error.
    private func failure(_ rc: Int32, _ operation: ModbusError.Operation, _ table: ModbusTable, unit: UInt8, address: UInt16, count: Int) -> ModbusError {
        let kind: ModbusError.Kind
        let message: String
        switch rc {
        case LibModbusErrno.exceptions:
            let code = UInt8(rc - LibModbusErrno.base)
            kind = .exception(code: code)
            message = "Modbus exception \(code) (\(ModbusError.exceptionName(code)))"
        case ETIMEDOUT:
            kind = .timeout
            message = "timeout (no answer within \(responseTimeout.wholeMilliseconds) ms)"
            context.flush()
        case LibModbusErrno.badCRC, LibModbusErrno.badData, LibModbusErrno.badException, LibModbusErrno.unknownException,
             LibModbusErrno.badSlave:
            kind = .invalidResponse
            message = "invalid response: \(LibModbusErrno.text(rc))"
            if context.isRTU {
                context.drainUntilQuiet(quiet: Self.resyncQuiet, limit: responseTimeout)
            } else {
                context.flush()
                close()
            }
        case LibModbusErrno.tooManyData, EINVAL:
            kind = .invalidArgument
            message = "request refused by libmodbus: \(LibModbusErrno.text(rc))"
        default:
            kind = .io
            message = "I/O error: \(LibModbusErrno.text(rc)) (errno \(rc))"
            close()
        }
        logger.debug("request failed", metadata: ["unit": .stringConvertible(unit), "error": .string(message)])
        return ModbusError(kind: kind, bus: bus, unit: unit, operation: operation, table: table, address: address,
                           count: count, errno: rc, message: message)
    }
}
