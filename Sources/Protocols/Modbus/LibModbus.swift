#if canImport(Glibc)
import Glibc
#endif
import CModbus
import EdgeRuntime

// The one file that touches libmodbus (3.1.6): every `modbus_*` call and every pointer into its
// buffers lives here. Callers get Swift values and plain errno numbers (0 = success); errno is read
// straight after the failing C call, before anything else can disturb it.

/// libmodbus's own errno values (modbus.h macros built from an enum, which Swift cannot import).
enum LibModbusErrno {
    static let base = Int32(MODBUS_ENOBASE)
    /// EMBXILFUN (base + 1) ... EMBXGTAR (base + 11): the device answered with this exception.
    static let exceptions = (base + 1)...(base + 11)
    static let badCRC = base + 12        // EMBBADCRC
    static let badData = base + 13       // EMBBADDATA
    static let badException = base + 14  // EMBBADEXC
    static let unknownException = base + 15  // EMBUNKEXC
    static let tooManyData = base + 16   // EMBMDATA
    static let badSlave = base + 17      // EMBBADSLAVE

    /// libmodbus's text for an errno (its own codes and the system's).
    static func text(_ code: Int32) -> String {
        String(cString: modbus_strerror(code))
    }
}

/// One `modbus_t` context (client, or reply backend of a server) with scratch buffers for reads.
///
/// Not thread-safe: one owner thread, as libmodbus requires. The scratch buffers are allocated once,
/// so a read on the success path allocates nothing here.
final class LibModbusContext {
    private let ctx: OpaquePointer
    private let bitScratch: UnsafeMutablePointer<UInt8>
    private let registerScratch: UnsafeMutablePointer<UInt16>
    let isRTU: Bool

    private init(_ ctx: OpaquePointer, isRTU: Bool) {
        self.ctx = ctx
        self.isRTU = isRTU
        bitScratch = .allocate(capacity: Int(MODBUS_MAX_READ_BITS))
        bitScratch.initialize(repeating: 0, count: Int(MODBUS_MAX_READ_BITS))
        registerScratch = .allocate(capacity: Int(MODBUS_MAX_READ_REGISTERS))
        registerScratch.initialize(repeating: 0, count: Int(MODBUS_MAX_READ_REGISTERS))
        modbus_set_error_recovery(ctx, MODBUS_ERROR_RECOVERY_NONE)
    }

    deinit {
        modbus_free(ctx)
        bitScratch.deallocate()
        registerScratch.deallocate()
    }

    /// A context for `transport` (not yet connected), or the errno libmodbus refused it with.
    /// TCP goes through `modbus_new_tcp_pi`, so host names and IPv6 literals work.
    static func make(_ transport: ModbusTransport) -> Result<LibModbusContext, LibModbusFailure> {
        let made: OpaquePointer?
        let rtu: Bool
        switch transport {
        case let .tcp(host, port):
            made = modbus_new_tcp_pi(host, String(port))
            rtu = false
        case let .rtu(device, baud, parity, dataBits, stopBits):
            made = modbus_new_rtu(device, Int32(baud), CChar(parity.rawValue.asciiValue ?? 78), Int32(dataBits), Int32(stopBits))
            rtu = true
        }
        guard let made else { return .failure(LibModbusFailure(errno: errno)) }
        return .success(LibModbusContext(made, isRTU: rtu))
    }

    /// `modbus_set_response_timeout` and `modbus_set_byte_timeout`.
    func setTimeouts(response: Duration, byte: Duration) {
        let (rs, ru) = response.secondsAndMicroseconds
        modbus_set_response_timeout(ctx, rs, max(ru, rs == 0 ? 1000 : 0))
        let (bs, bu) = byte.secondsAndMicroseconds
        modbus_set_byte_timeout(ctx, bs, max(bu, bs == 0 ? 1000 : 0))
    }

    /// `modbus_connect`: opens the TCP connection or the serial port. Returns 0 or errno.
    func connect() -> Int32 {
        modbus_connect(ctx) == 0 ? 0 : errno
    }

    /// `modbus_rtu_set_serial_mode(RS485)`: asks the UART driver for RS-485 direction control. Returns 0 or errno.
    func enableRS485() -> Int32 {
        modbus_rtu_set_serial_mode(ctx, MODBUS_RTU_RS485) == 0 ? 0 : errno
    }

    /// `modbus_close`: closes the socket or serial port (restoring the port's settings).
    func close() { modbus_close(ctx) }

    /// `modbus_flush`: drops whatever the peer sent that nobody asked for (a late answer).
    func flush() { _ = modbus_flush(ctx) }

    /// Resynchronises a serial line after a garbled frame: drops input (`modbus_flush`) until no
    /// byte has arrived for `quiet`, for at most `limit`, so the rest of a frame still on the wire
    /// is not read as the next answer. `poll` on the port's descriptor measures the silence.
    func drainUntilQuiet(quiet: Duration, limit: Duration) {
        let clock = ContinuousClock()
        let end = clock.now + limit
        let quietMillis = Int32(max(1, quiet.components.seconds * 1000 + quiet.components.attoseconds / 1_000_000_000_000_000))
        while true {
            _ = modbus_flush(ctx)
            let fd = modbus_get_socket(ctx)
            guard fd >= 0, clock.now < end else { return }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = retryingOnInterrupt { poll(&p, 1, quietMillis) }
            if n <= 0 { return }
        }
    }

    /// The file descriptor libmodbus uses (`modbus_get_socket`), -1 when closed.
    var fileDescriptor: Int32 { modbus_get_socket(ctx) }

    /// `modbus_set_socket`: makes the context send on `fd` (server replies to an accepted client).
    func use(fileDescriptor fd: Int32) { _ = modbus_set_socket(ctx, fd) }

    /// `modbus_set_slave`. Returns 0 or errno (EINVAL for a unit id the transport cannot address).
    func setUnit(_ unit: UInt8) -> Int32 {
        modbus_set_slave(ctx, Int32(unit)) == 0 ? 0 : errno
    }

    /// Reads `count` items of `table` into the scratch buffers (`modbus_read_bits`,
    /// `modbus_read_input_bits`, `modbus_read_registers`, `modbus_read_input_registers`).
    /// Returns 0 or errno; the caller checked `count` against the table's limit.
    func read(_ table: ModbusTable, address: UInt16, count: Int) -> Int32 {
        let a = Int32(address), n = Int32(count)
        let rc: Int32
        switch table {
        case .coil: rc = modbus_read_bits(ctx, a, n, bitScratch)
        case .discrete: rc = modbus_read_input_bits(ctx, a, n, bitScratch)
        case .holding: rc = modbus_read_registers(ctx, a, n, registerScratch)
        case .input: rc = modbus_read_input_registers(ctx, a, n, registerScratch)
        }
        if rc == -1 { return errno }
        return rc == n ? 0 : LibModbusErrno.badData
    }

    /// Bit `i` of the last bit read.
    func scratchBit(_ i: Int) -> Bool { bitScratch[i] != 0 }

    /// Register `i` of the last register read.
    func scratchRegister(_ i: Int) -> UInt16 { registerScratch[i] }

    /// `modbus_write_bit` (function 5). Returns 0 or errno.
    func writeBit(address: UInt16, value: Bool) -> Int32 {
        modbus_write_bit(ctx, Int32(address), value ? 1 : 0) == -1 ? errno : 0
    }

    /// `modbus_write_register` (function 6). Returns 0 or errno.
    func writeRegister(address: UInt16, value: UInt16) -> Int32 {
        modbus_write_register(ctx, Int32(address), value) == -1 ? errno : 0
    }

    /// `modbus_write_bits` (function 15). Returns 0 or errno.
    func writeBits(address: UInt16, values: [Bool]) -> Int32 {
        for (i, v) in values.enumerated() { bitScratch[i] = v ? 1 : 0 }
        return modbus_write_bits(ctx, Int32(address), Int32(values.count), bitScratch) == -1 ? errno : 0
    }

    /// `modbus_write_registers` (function 16). Returns 0 or errno.
    func writeRegisters(address: UInt16, values: [UInt16]) -> Int32 {
        let rc = values.withUnsafeBufferPointer { buffer in
            modbus_write_registers(ctx, Int32(address), Int32(values.count), buffer.baseAddress)
        }
        return rc == -1 ? errno : 0
    }

    /// `modbus_reply`: answers the complete request ADU `request` (MBAP or RTU framing, as this
    /// context's backend) from `mapping`, on the current file descriptor. Returns 0 or errno.
    func reply(to request: [UInt8], from mapping: LibModbusMapping) -> Int32 {
        let rc = request.withUnsafeBufferPointer { buffer in
            modbus_reply(ctx, buffer.baseAddress, Int32(buffer.count), mapping.pointer)
        }
        return rc == -1 ? errno : 0
    }

    /// `modbus_reply_exception`: answers the request ADU `request` with Modbus exception `code`
    /// (nothing is read or written), on the current file descriptor. Returns 0 or errno.
    func replyException(to request: [UInt8], code: UInt8) -> Int32 {
        let rc = request.withUnsafeBufferPointer { buffer in
            modbus_reply_exception(ctx, buffer.baseAddress, UInt32(code))
        }
        return rc == -1 ? errno : 0
    }
}

/// A libmodbus call failed with this errno.
struct LibModbusFailure: Error {
    var errno: Int32
}

/// A `modbus_mapping_t`: the four tables of one server unit, starting at address 0.
///
/// Not thread-safe; its owner serialises access (see `ModbusRegisterBank`).
final class LibModbusMapping {
    let pointer: UnsafeMutablePointer<modbus_mapping_t>

    /// `modbus_mapping_new`; nil when out of memory.
    init?(coils: Int, discreteInputs: Int, holdingRegisters: Int, inputRegisters: Int) {
        guard let p = modbus_mapping_new(Int32(coils), Int32(discreteInputs), Int32(holdingRegisters), Int32(inputRegisters)) else {
            return nil
        }
        pointer = p
    }

    deinit { modbus_mapping_free(pointer) }

    /// How many items `table` holds.
    func count(_ table: ModbusTable) -> Int {
        switch table {
        case .coil: return Int(pointer.pointee.nb_bits)
        case .discrete: return Int(pointer.pointee.nb_input_bits)
        case .holding: return Int(pointer.pointee.nb_registers)
        case .input: return Int(pointer.pointee.nb_input_registers)
        }
    }

    /// Bit `index` of a bit table (precondition: in range).
    func bit(_ table: ModbusTable, _ index: Int) -> Bool {
        precondition(table.isBit && index >= 0 && index < count(table), "\(table) \(index) out of range")
        let tab = table == .coil ? pointer.pointee.tab_bits : pointer.pointee.tab_input_bits
        return tab![index] != 0
    }

    /// Sets bit `index` of a bit table (precondition: in range).
    func setBit(_ table: ModbusTable, _ index: Int, _ value: Bool) {
        precondition(table.isBit && index >= 0 && index < count(table), "\(table) \(index) out of range")
        let tab = table == .coil ? pointer.pointee.tab_bits : pointer.pointee.tab_input_bits
        tab![index] = value ? 1 : 0
    }

    /// Register `index` of a register table (precondition: in range).
    func register(_ table: ModbusTable, _ index: Int) -> UInt16 {
        precondition(!table.isBit && index >= 0 && index < count(table), "\(table) \(index) out of range")
        let tab = table == .holding ? pointer.pointee.tab_registers : pointer.pointee.tab_input_registers
        return tab![index]
    }

    /// Sets register `index` of a register table (precondition: in range).
    func setRegister(_ table: ModbusTable, _ index: Int, _ value: UInt16) {
        precondition(!table.isBit && index >= 0 && index < count(table), "\(table) \(index) out of range")
        let tab = table == .holding ? pointer.pointee.tab_registers : pointer.pointee.tab_input_registers
        tab![index] = value
    }
}
