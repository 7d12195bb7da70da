#if canImport(Glibc)
import Glibc
#endif
public import Logging
import EdgeRuntime
import FoundationEssentials

/// The four tables of one server unit (coils, discrete inputs, holding and input registers), all
/// starting at protocol address 0.
///
/// Invariant: sizes are fixed at creation; an address outside a table is answered by the server
/// with exception 2 (illegal data address). Not synchronised: while a `ModbusServer` runs, touch a
/// bank only under the same lock the server's handler takes around `answer()`.
public final class ModbusRegisterBank: @unchecked Sendable {
    let mapping: LibModbusMapping

    /// Makes a bank with the given table sizes (0 = table absent), all values zero.
    public init(coils: Int = 0, discreteInputs: Int = 0, holdingRegisters: Int = 0, inputRegisters: Int = 0) {
        precondition([coils, discreteInputs, holdingRegisters, inputRegisters].allSatisfy { (0...65536).contains($0) })
        guard let mapping = LibModbusMapping(coils: coils, discreteInputs: discreteInputs,
                                             holdingRegisters: holdingRegisters, inputRegisters: inputRegisters) else {
            fatalError("modbus_mapping_new: out of memory")
        }
        self.mapping = mapping
    }

    /// Number of items in `table`.
    public func count(_ table: ModbusTable) -> Int { mapping.count(table) }

    /// Coil `address` (precondition: in range).
    public subscript(coil address: Int) -> Bool {
        get { mapping.bit(.coil, address) }
        set { mapping.setBit(.coil, address, newValue) }
    }

    /// Discrete input `address` (precondition: in range).
    public subscript(discrete address: Int) -> Bool {
        get { mapping.bit(.discrete, address) }
        set { mapping.setBit(.discrete, address, newValue) }
    }

    /// Holding register `address` (precondition: in range).
    public subscript(holding address: Int) -> UInt16 {
        get { mapping.register(.holding, address) }
        set { mapping.setRegister(.holding, address, newValue) }
    }

    /// Input register `address` (precondition: in range).
    public subscript(input address: Int) -> UInt16 {
        get { mapping.register(.input, address) }
        set { mapping.setRegister(.input, address, newValue) }
    }
}

/// A Modbus server (slave) serving several unit ids, each from its own `ModbusRegisterBank`, on
/// Modbus TCP (several clients at once) or RTU (a serial port or pty).
///
/// Requests for a unit id that has no bank are ignored (no answer: the client times out), as on a
/// real bus. For units that exist, `handler` (when given) is called on the server thread with the
/// decoded request and a `ModbusAnswer`: calling `answer()` answers from the bank (libmodbus's
/// `modbus_reply`, which also applies writes); `answer.exception(code)` answers with a Modbus
/// exception instead (nothing applied); doing neither leaves the request unanswered (an offline
/// device). Code placed around `answer()` sees each request before and after it is applied.
/// Without a handler every request to an existing unit is answered.
///
/// Threading: `start`/`stop` from any one owner; requests are served on one dedicated thread.
public final class ModbusServer: @unchecked Sendable {
    /// Called for each request to an existing unit; call `answer()` (or `answer.exception(code)`) to reply.
    public typealias Handler = @Sendable (_ request: ModbusRequest, _ answer: ModbusAnswer) -> Void

    public let bus: String
    public let transport: ModbusTransport
    private let units: [UInt8: ModbusRegisterBank]
    private let handler: Handler?
    private let logger: Logger
    private let lock = EdgeRuntime.Lock()
    private var loop: ServeLoop?
    private var boundPort: Int?

    /// Makes a server; nothing is opened before `start()`. Throws `.invalidArgument` for a malformed transport.
    public init(bus: String, transport: ModbusTransport, units: [UInt8: ModbusRegisterBank],
                logger: Logger = Logger(label: "edge.modbus.server"), handler: Handler? = nil) throws(ModbusError) {
        if let problem = transport.problem {
            throw ModbusError(kind: .invalidArgument, bus: bus, operation: .serve, message: "\(transport.summary): \(problem)")
        }
        self.bus = bus
        self.transport = transport
        self.units = units
        self.handler = handler
        var logger = logger
        logger[metadataKey: "bus"] = .string(bus)
        self.logger = logger
    }

    deinit { stop() }

    /// The TCP port actually listened on (useful with port 0), or nil before start / for RTU.
    public var port: Int? { lock.withLock { boundPort } }

    /// True between a successful `start()` and `stop()`.
    public var isRunning: Bool { lock.withLock { loop != nil } }

    /// Opens the listening socket (TCP, `SO_REUSEADDR`) or the serial port (RTU) and starts serving.
    /// Throws `.io` (address in use, no such device) or `.invalidArgument` (host not an IP address).
    public func start() throws(ModbusError) {
        lock.lock()
        defer { lock.unlock() }
        guard loop == nil else { return }
        // The reply backend: for TCP a context used only to format and send replies on accepted
        // sockets (never connected); for RTU the context that owns the serial port.
        let endpoint: ServeLoop.Endpoint
        let replyContext: LibModbusContext
        guard case let .success(context) = LibModbusContext.make(transport) else {
            throw ModbusError(kind: .invalidArgument, bus: bus, operation: .serve, message: "\(transport.summary): libmodbus refused the parameters")
        }
        replyContext = context
        switch transport {
        case let .tcp(host, port):
            let (fd, actual) = try Self.listen(host: host, port: port, bus: bus)
            endpoint = .tcp(listener: fd)
            boundPort = actual
        case .rtu:
            let rc = context.connect()
            guard rc == 0 else {
                throw ModbusError(kind: .io, bus: bus, operation: .serve, errno: rc,
                                  message: "cannot open \(transport.summary): \(LibModbusErrno.text(rc)) (errno \(rc))")
            }
            endpoint = .rtu(context)
        }
        let newLoop: ServeLoop
        do {
            newLoop = try ServeLoop(endpoint: endpoint, replyContext: replyContext, units: units, handler: handler, logger: logger, bus: bus)
        } catch {
            switch endpoint {
            case let .tcp(listener): close(listener)
            case let .rtu(context): context.close()
            }
            boundPort = nil
            throw error
        }
        newLoop.start(name: "modbus-\(bus)")
        loop = newLoop
        logger.info("serving Modbus", metadata: [
            "transport": .string(boundPort.map { "tcp port \($0)" } ?? transport.summary),
            "units": .string(units.keys.sorted().map(String.init).joined(separator: ",")),
        ])
    }

    /// Stops serving: closes every connection and the listener or serial port, and joins the thread.
    public func stop() {
        let stopping = lock.withLock { () -> ServeLoop? in
            let l = loop
            loop = nil
            boundPort = nil
            return l
        }
        stopping?.stop()
    }

    /// Number of TCP clients connected right now.
    public var clientCount: Int { lock.withLock { loop }?.clientCount ?? 0 }

    /// Binds and listens on `host:port` (IPv4 or IPv6 literal, or `localhost`); returns the fd and the bound port.
    private static func listen(host: String, port: Int, bus: String) throws(ModbusError) -> (Int32, Int) {
        let name = host == "localhost" ? "127.0.0.1" : host
        var storage = sockaddr_storage()
        let length: socklen_t
        let family: Int32
        if name.contains(":") {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, name, &a.sin6_addr) == 1 else {
                throw ModbusError(kind: .invalidArgument, bus: bus, operation: .serve, message: "listen host \(host) is not an IP address")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            family = AF_INET6
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, name, &a.sin_addr) == 1 else {
                throw ModbusError(kind: .invalidArgument, bus: bus, operation: .serve, message: "listen host \(host) is not an IP address")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: a) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            family = AF_INET
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            let e = errno
            throw ModbusError(kind: .io, bus: bus, operation: .serve, errno: e, message: "socket(): \(String(cString: strerror(e)))")
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if bound != 0 || Glibc.listen(fd, 16) != 0 {
            let e = errno
            close(fd)
            throw ModbusError(kind: .io, bus: bus, operation: .serve, errno: e,
                              message: "cannot listen on \(ModbusTransport.tcp(host: host, port: port).summary): \(String(cString: strerror(e))) (errno \(e))")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let actualPort: UInt16 = withUnsafeBytes(of: actual) { raw in
            // sin_port and sin6_port share the offset right after the family field.
            raw.load(fromByteOffset: 2, as: UInt16.self).bigEndian
        }
        return (fd, Int(actualPort))
    }
}

/// The serving thread's state: listener or serial fd, clients and their partial frames.
private final class ServeLoop: @unchecked Sendable {
    enum Endpoint {
        case tcp(listener: Int32)
        case rtu(LibModbusContext)
    }

    private struct Client {
        var fd: Int32
        var buffer: [UInt8] = []
    }

    private let endpoint: Endpoint
    private let replyContext: LibModbusContext
    private let units: [UInt8: ModbusRegisterBank]
    private let handler: ModbusServer.Handler?
    private let logger: Logger
    private let bus: String
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let done = Event()
    private let countLock = EdgeRuntime.Lock()
    private var clients: [Client] = []
    private var published = 0
    private var serial: [UInt8] = []
    private var serialLastByte = ContinuousClock.now

    /// Longest silence inside an RTU frame before the partial frame is dropped (resynchronisation).
    private static let interFrameGap = Duration.milliseconds(50)
    private static let maxClients = 32

    init(endpoint: Endpoint, replyContext: LibModbusContext, units: [UInt8: ModbusRegisterBank],
         handler: ModbusServer.Handler?, logger: Logger, bus: String) throws(ModbusError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            let e = errno
            throw ModbusError(kind: .io, bus: bus, operation: .serve, errno: e, message: "pipe2(): \(String(cString: strerror(e)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        self.endpoint = endpoint
        self.replyContext = replyContext
        self.units = units
        self.handler = handler
        self.logger = logger
        self.bus = bus
    }

    var clientCount: Int { countLock.withLock { published } }

    func start(name: String) {
        OSThread.detached(name: name) { [self] in
            run()
            done.set()
        }
    }

    func stop() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        done.wait()
        close(wakeRead)
        close(wakeWrite)
    }

    private func run() {
        var pfds: [pollfd] = []
        serving: while true {
            pfds.removeAll(keepingCapacity: true)
            pfds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            switch endpoint {
            case let .tcp(listener): pfds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            case let .rtu(context): pfds.append(pollfd(fd: context.fileDescriptor, events: Int16(POLLIN), revents: 0))
            }
            for c in clients { pfds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)) }
            let timeout: Int32 = serial.isEmpty ? -1 : 20
            let n = retryingOnInterrupt { poll(&pfds, nfds_t(pfds.count), timeout) }
            if n < 0 {
                logger.error("poll failed; server stops", metadata: ["errno": .stringConvertible(errno)])
                break serving
            }
            if pfds[0].revents != 0 { break serving }
            switch endpoint {
            case let .tcp(listener):
                if pfds[1].revents != 0 { acceptClient(listener) }
                // Serve existing clients (indices shift only after this pass).
                var closed: Set<Int32> = []
                for p in pfds.dropFirst(2) where p.revents != 0 {
                    if !serveClient(fd: p.fd) { closed.insert(p.fd) }
                }
                if !closed.isEmpty {
                    for fd in closed { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
                    clients.removeAll { closed.contains($0.fd) }
                    publishCount()
                }
            case let .rtu(context):
                if pfds[1].revents & Int16(POLLIN) != 0 {
                    readSerial(context)
                } else if pfds[1].revents != 0 {
                    logger.error("serial port error; server stops", metadata: ["revents": .stringConvertible(pfds[1].revents)])
                    break serving
                }
                if !serial.isEmpty, ContinuousClock.now - serialLastByte > Self.interFrameGap {
                    logger.debug("dropping incomplete RTU frame", metadata: ["bytes": .stringConvertible(serial.count)])
                    serial.removeAll()
                }
            }
        }
        for c in clients { shutdown(c.fd, Int32(SHUT_RDWR)); close(c.fd) }
        clients.removeAll()
        publishCount()
        switch endpoint {
        case let .tcp(listener):
            close(listener)
            replyContext.use(fileDescriptor: -1)
        case let .rtu(context):
            context.close()
        }
    }

    private func publishCount() {
        let n = clients.count
        countLock.withLock { published = n }
    }

    private func acceptClient(_ listener: Int32) {
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if clients.count >= Self.maxClients {
            logger.warning("too many Modbus clients; refusing one", metadata: ["limit": .stringConvertible(Self.maxClients)])
            close(fd)
            return
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        clients.append(Client(fd: fd))
        publishCount()
        logger.debug("client connected", metadata: ["fd": .stringConvertible(fd)])
    }

    /// Reads what a client sent and answers every complete MBAP frame. Returns false to drop the client.
    private func serveClient(fd: Int32) -> Bool {
        guard let index = clients.firstIndex(where: { $0.fd == fd }) else { return true }
        var chunk = [UInt8](repeating: 0, count: 512)
        let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) } }
        if n == 0 { return false }
        if n < 0 { return errno == EAGAIN }
        clients[index].buffer.append(contentsOf: chunk[0..<n])
        while clients[index].buffer.count >= 7 {
            let b = clients[index].buffer
            let protocolID = Int(b[2]) << 8 | Int(b[3])
            let length = Int(b[4]) << 8 | Int(b[5])
            guard protocolID == 0, (2...254).contains(length) else {
                logger.warning("malformed MBAP header; dropping client", metadata: ["protocol": .stringConvertible(protocolID), "length": .stringConvertible(length)])
                return false
            }
            let total = 6 + length
            guard b.count >= total else { break }
            let frame = Array(b[0..<total])
            clients[index].buffer.removeFirst(total)
            dispatch(frame: frame, headerLength: 7, pduEnd: total, fd: fd)
        }
        return true
    }

    private func readSerial(_ context: LibModbusContext) {
        var chunk = [UInt8](repeating: 0, count: 512)
        let n = chunk.withUnsafeMutableBytes { read(context.fileDescriptor, $0.baseAddress, $0.count) }
        guard n > 0 else { return }
        if !serial.isEmpty, ContinuousClock.now - serialLastByte > Self.interFrameGap { serial.removeAll() }
        serial.append(contentsOf: chunk[0..<n])
        serialLastByte = .now
        while let length = Self.rtuFrameLength(serial) {
            if length < 0 {
                logger.debug("unknown RTU function; dropping input", metadata: ["bytes": .stringConvertible(serial.count)])
                serial.removeAll()
                return
            }
            guard serial.count >= length else { return }
            let frame = Array(serial[0..<length])
            serial.removeFirst(length)
            let crc = Self.crc16(frame[0..<(length - 2)])
            guard frame[length - 2] == UInt8(crc & 0xFF), frame[length - 1] == UInt8(crc >> 8) else {
                logger.debug("bad CRC in RTU frame; resynchronising")
                serial.removeAll()
                return
            }
            dispatch(frame: frame, headerLength: 1, pduEnd: length - 2, fd: context.fileDescriptor)
        }
    }

    /// Length of the RTU request frame at the start of `b` (address, PDU, CRC): nil = need more
    /// bytes to tell, -1 = unknown function code.
    static func rtuFrameLength(_ b: [UInt8]) -> Int? {
        guard b.count >= 2 else { return nil }
        switch b[1] {
        case 1...6, 8: return 8
        case 7, 11, 12, 17: return 4
        case 15, 16: return b.count >= 7 ? 9 + Int(b[6]) : nil
        case 22: return 10
        case 23: return b.count >= 11 ? 13 + Int(b[10]) : nil
        default: return -1
        }
    }

    /// Modbus RTU CRC-16 (polynomial 0xA001, initial 0xFFFF); sent low byte first.
    static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0xFFFF
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }

    private func dispatch(frame: [UInt8], headerLength: Int, pduEnd: Int, fd: Int32) {
        let unit = frame[headerLength - 1]
        guard let bank = units[unit] else {
            logger.trace("request for absent unit ignored", metadata: ["unit": .stringConvertible(unit)])
            return
        }
        let request = ModbusRequest(unit: unit, pdu: frame[headerLength..<pduEnd])
        let answer = ModbusAnswer(reply: { [replyContext, logger] in
            replyContext.use(fileDescriptor: fd)
            let rc = replyContext.reply(to: frame, from: bank.mapping)
            if rc != 0 {
                logger.debug("reply failed", metadata: ["unit": .stringConvertible(unit), "error": .string(LibModbusErrno.text(rc))])
            }
        }, exception: { [replyContext, logger] code in
            replyContext.use(fileDescriptor: fd)
            let rc = replyContext.replyException(to: frame, code: code)
            if rc != 0 {
                logger.debug("exception reply failed", metadata: ["unit": .stringConvertible(unit), "error": .string(LibModbusErrno.text(rc))])
            }
        })
        if let handler { handler(request, answer) } else { answer() }
    }
}

/// How a `ModbusServer.Handler` answers one request: `answer()` replies from the unit's bank
/// (`modbus_reply`, which applies writes); `answer.exception(code)` replies with Modbus exception
/// `code` (1 illegal function ... 11, see `ModbusError.exceptionName`) and applies nothing.
/// Use it at most once, on the server thread, before the handler returns.
public struct ModbusAnswer {
    private let reply: () -> Void
    private let exceptionReply: (UInt8) -> Void

    init(reply: @escaping () -> Void, exception: @escaping (UInt8) -> Void) {
        self.reply = reply
        exceptionReply = exception
    }

    /// Answers from the bank (`modbus_reply`).
    public func callAsFunction() { reply() }

    /// Answers with Modbus exception `code` instead (`modbus_reply_exception`).
    public func exception(_ code: UInt8) { exceptionReply(code) }
}
