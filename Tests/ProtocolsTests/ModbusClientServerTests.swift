#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Protocols
import TestSupport

/// An in-process ModbusServer with banks guarded by one lock, and a switch to silence units.
private final class LockedServer: @unchecked Sendable {
    let lock = NSLock()
    let banks: [UInt8: ModbusRegisterBank]
    var silent: Set<UInt8> = []
    var seen: [ModbusRequest] = []
    /// Units whose answers are held back this long (a slow device: the answer arrives late).
    var lateUnits: [UInt8: Duration] = [:]
    var server: ModbusServer!

    init(transport: ModbusTransport, units: [UInt8]) throws {
        var banks: [UInt8: ModbusRegisterBank] = [:]
        for u in units {
            let bank = ModbusRegisterBank(coils: 16, discreteInputs: 16, holdingRegisters: 32, inputRegisters: 32)
            for i in 0..<16 { bank[discrete: i] = i % 3 == 0 }
            for i in 0..<32 { bank[input: i] = UInt16(1000 * Int(u) + i); bank[holding: i] = UInt16(i) }
            banks[u] = bank
        }
        self.banks = banks
        server = try ModbusServer(bus: "test", transport: transport, units: banks) { [self] request, answer in
            if let delay = lock.withLock({ lateUnits[request.unit] }) { Thread.sleep(forTimeInterval: delay.seconds) }
            lock.withLock {
                guard !silent.contains(request.unit) else { return }
                seen.append(request)
                answer()
            }
        }
        try server.start()
    }

    func with<R>(_ body: () -> R) -> R { lock.withLock(body) }
    deinit { server.stop() }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

@Suite struct ModbusClientServerTests {
    @Test func tcpReadsAndWritesEveryTable() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [5, 6])
        let port = try #require(s.server.port)
        #expect(port > 0)
        let client = try ModbusClient(bus: "test", transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: .seconds(2))
        #expect(!client.isConnected)

        // Contiguous multi-register reads, two units behind one endpoint.
        #expect(try client.readInputRegisters(unit: 5, address: 0, count: 6) == [5000, 5001, 5002, 5003, 5004, 5005])
        #expect(client.isConnected)
        #expect(try client.readInputRegisters(unit: 6, address: 30, count: 2) == [6030, 6031])
        #expect(try client.readHoldingRegisters(unit: 5, address: 2, count: 3) == [2, 3, 4])
        #expect(try client.readDiscreteInputs(unit: 5, address: 0, count: 7) == [true, false, false, true, false, false, true])
        #expect(try client.readCoils(unit: 5, address: 0, count: 4) == [false, false, false, false])

        try client.writeCoil(unit: 5, address: 1, value: true)
        try client.writeCoils(unit: 5, address: 8, values: [true, false, true])
        try client.writeRegister(unit: 5, address: 0, value: 0xBEEF)
        try client.writeRegisters(unit: 5, address: 10, values: [7, 8, 9])
        #expect(try client.readCoils(unit: 5, address: 0, count: 11) == [false, true, false, false, false, false, false, false, true, false, true])
        #expect(try client.readHoldingRegisters(unit: 5, address: 0, count: 1) == [0xBEEF])
        #expect(try client.readHoldingRegisters(unit: 5, address: 9, count: 5) == [9, 7, 8, 9, 13])
        // The other unit is untouched; the banks hold what the wire wrote.
        #expect(try client.readHoldingRegisters(unit: 6, address: 0, count: 1) == [0])
        s.with {
            #expect(s.banks[5]![holding: 11] == 8)
            #expect(s.banks[5]![coil: 10])
        }

        // The allocation-free variant.
        var buffer: [UInt16] = []
        buffer.reserveCapacity(125)
        try client.read(.holding, unit: 5, address: 10, count: 3, into: &buffer)
        #expect(buffer == [7, 8, 9])
        try client.read(.coil, unit: 5, address: 8, count: 3, into: &buffer)
        #expect(buffer == [1, 0, 1])
    }

    @Test func handlerSeesDecodedRequestsAroundTheAnswer() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1])
        let client = try ModbusClient(bus: "test", transport: .tcp(host: "127.0.0.1", port: try #require(s.server.port)))
        try client.writeRegisters(unit: 1, address: 4, values: [1, 2])
        _ = try client.readDiscreteInputs(unit: 1, address: 3, count: 5)
        try client.writeCoil(unit: 1, address: 2, value: true)
        let seen = s.with { s.seen }
        #expect(seen == [
            ModbusRequest(unit: 1, function: 16, table: .holding, address: 4, count: 2, isWrite: true),
            ModbusRequest(unit: 1, function: 2, table: .discrete, address: 3, count: 5, isWrite: false),
            ModbusRequest(unit: 1, function: 5, table: .coil, address: 2, count: 1, isWrite: true),
        ])
    }

    @Test func illegalAddressIsExceptionTwoAndKeepsTheConnection() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1])
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: try #require(s.server.port)))
        let error = try #require(throws: ModbusError.self) { try client.readHoldingRegisters(unit: 1, address: 100, count: 1) }
        #expect(error.kind == .exception(code: 2))
        #expect(error.exceptionCode == 2)
        #expect(error.unit == 1 && error.table == .holding && error.address == 100 && error.count == 1)
        #expect(error.description == "bus field unit 1: read holding 100..100: Modbus exception 2 (illegal data address)")
        #expect(!error.isCommunicationLoss)
        // A read running past the end of the table is refused the same way.
        let pastEnd = try #require(throws: ModbusError.self) { try client.readInputRegisters(unit: 1, address: 30, count: 3) }
        #expect(pastEnd.kind == .exception(code: 2))
        #expect(client.isConnected)
        #expect(try client.readInputRegisters(unit: 1, address: 0, count: 1) == [1000])
    }

    @Test func silentUnitTimesOutAndTheNextAnswerIsNotConfused() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1, 2])
        s.with { s.silent = [2] }
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: try #require(s.server.port)),
                                      responseTimeout: .milliseconds(200))
        let clock = ContinuousClock()
        let start = clock.now
        let error = try #require(throws: ModbusError.self) { try client.readDiscreteInputs(unit: 2, address: 0, count: 6) }
        let elapsed = clock.now - start
        #expect(error.kind == .timeout)
        #expect(error.isCommunicationLoss)
        #expect(error.description == "bus field unit 2: read discrete 0..5: timeout (no answer within 200 ms)")
        #expect(elapsed >= .milliseconds(190) && elapsed < .seconds(2))
        // An absent unit id is not answered either.
        #expect(throws: ModbusError.self) { try client.readCoils(unit: 99, address: 0, count: 1) }
        #expect(try client.readInputRegisters(unit: 1, address: 1, count: 1) == [1001])
        s.with { s.silent = [] }
        #expect(try client.readInputRegisters(unit: 2, address: 1, count: 1) == [2001])
    }

    @Test func lateAnswerIsNeverTakenForTheNextOne() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1, 2])
        s.with { s.lateUnits = [2: .milliseconds(350)] }
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: try #require(s.server.port)),
                                      responseTimeout: .milliseconds(200))
        let slow = try #require(throws: ModbusError.self) { try client.readInputRegisters(unit: 2, address: 0, count: 1) }
        #expect(slow.kind == .timeout)
        // The late answer (2000) arrives while the next request waits: it must never come back as
        // unit 1's value. The next request may fail as an invalid response (the connection is then
        // rebuilt) or succeed with the right value; the one after succeeds.
        do {
            #expect(try client.readInputRegisters(unit: 1, address: 7, count: 1) == [1007])
        } catch {
            #expect(error.kind == .invalidResponse || error.kind == .timeout)
        }
        #expect(try client.readInputRegisters(unit: 1, address: 8, count: 1) == [1008])
    }

    @Test func connectionRefusedIsConnectFailed() throws {
        let port = Loopback.freePort()
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: .milliseconds(300))
        let error = try #require(throws: ModbusError.self) { try client.readCoils(unit: 30, address: 0, count: 4) }
        #expect(error.kind == .connectFailed)
        #expect(error.errno == ECONNREFUSED)
        #expect(error.unit == 30 && error.table == .coil)
        #expect(error.description.hasPrefix("bus field unit 30: read coil 0..3: connect tcp 127.0.0.1:\(port) failed"))
        #expect(!client.isConnected)
        let direct = try #require(throws: ModbusError.self) { try client.connect() }
        #expect(direct.kind == .connectFailed && direct.unit == nil)
    }

    @Test func reconnectsAfterTheServerRestarts() throws {
        let first = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1])
        let port = try #require(first.server.port)
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: .milliseconds(300))
        #expect(try client.readInputRegisters(unit: 1, address: 0, count: 1) == [1000])
        first.server.stop()
        let broken = try #require(throws: ModbusError.self) { try client.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(broken.kind == .io || broken.kind == .connectFailed)
        #expect(!client.isConnected)
        let refused = try #require(throws: ModbusError.self) { try client.readInputRegisters(unit: 1, address: 0, count: 1) }
        #expect(refused.kind == .connectFailed)

        let second = try LockedServer(transport: .tcp(host: "127.0.0.1", port: port), units: [1])
        second.with { second.banks[1]![input: 0] = 4242 }
        #expect(try client.readInputRegisters(unit: 1, address: 0, count: 1) == [4242])
        #expect(client.isConnected)
    }

    @Test func invalidArgumentsAreRefusedBeforeTheWire() throws {
        #expect(throws: ModbusError.self) { try ModbusClient(bus: "x", transport: .tcp(host: "127.0.0.1", port: 70000)) }
        let badSerial = try #require(throws: ModbusError.self) {
            try ModbusClient(bus: "x", transport: .rtu(device: "/dev/null", baud: 9600, parity: .none, dataBits: 9, stopBits: 1))
        }
        #expect(badSerial.kind == .invalidArgument)
        let client = try ModbusClient(bus: "x", transport: .tcp(host: "127.0.0.1", port: Loopback.freePort()))
        for (table, count) in [(ModbusTable.holding, 0), (.holding, 126), (.coil, 2001)] {
            let e = try #require(throws: ModbusError.self) {
                if table == .holding { _ = try client.readHoldingRegisters(unit: 1, address: 0, count: count) }
                else { _ = try client.readCoils(unit: 1, address: 0, count: count) }
            }
            #expect(e.kind == .invalidArgument)
        }
        let noPort = try ModbusClient(bus: "rs485-9", transport: .rtu(device: "/nonexistent/ttyS9", baud: 9600, parity: .none, dataBits: 8, stopBits: 1))
        let missing = try #require(throws: ModbusError.self) { try noPort.readCoils(unit: 1, address: 0, count: 1) }
        #expect(missing.kind == .connectFailed && missing.errno == ENOENT)
        let past = try #require(throws: ModbusError.self) { try client.writeRegisters(unit: 1, address: 65535, values: [1, 2]) }
        #expect(past.kind == .invalidArgument)
        #expect(!client.isConnected)
    }

    @Test func serverRefusesAPortInUse() throws {
        let s = try LockedServer(transport: .tcp(host: "127.0.0.1", port: 0), units: [1])
        let other = try ModbusServer(bus: "dup", transport: .tcp(host: "127.0.0.1", port: try #require(s.server.port)), units: [:])
        let error = try #require(throws: ModbusError.self) { try other.start() }
        #expect(error.kind == .io && error.errno == EADDRINUSE)
    }

    @Test func rtuThroughASocatPtyPair() throws {
        let dir = ScratchDir("modbus-rtu")
        let pair = try SocatPair(in: dir)
        let s = try LockedServer(transport: .rtu(device: pair.pathA, baud: 19200, parity: .even, dataBits: 8, stopBits: 1), units: [1, 2])
        let client = try ModbusClient(bus: "rs485-1", transport: .rtu(device: pair.pathB, baud: 19200, parity: .even, dataBits: 8, stopBits: 1),
                                      responseTimeout: .milliseconds(300))
        try client.connect()  // a pty has no RS-485 mode: ENOTTY is tolerated
        #expect(client.isConnected)
        #expect(try client.readInputRegisters(unit: 2, address: 0, count: 4) == [2000, 2001, 2002, 2003])
        try client.writeRegisters(unit: 1, address: 0, values: [11, 22, 33])
        try client.writeCoils(unit: 1, address: 0, values: [true, true, false, true])
        try client.writeCoil(unit: 1, address: 15, value: true)
        try client.writeRegister(unit: 1, address: 31, value: 31000)
        #expect(try client.readHoldingRegisters(unit: 1, address: 0, count: 4) == [11, 22, 33, 3])
        #expect(try client.readHoldingRegisters(unit: 1, address: 31, count: 1) == [31000])
        #expect(try client.readCoils(unit: 1, address: 0, count: 16) == [true, true, false, true] + Array(repeating: false, count: 11) + [true])
        #expect(try client.readDiscreteInputs(unit: 2, address: 0, count: 4) == [true, false, false, true])
        let exception = try #require(throws: ModbusError.self) { try client.readHoldingRegisters(unit: 1, address: 100, count: 2) }
        #expect(exception.kind == .exception(code: 2))
        let silent = try #require(throws: ModbusError.self) { try client.readInputRegisters(unit: 7, address: 0, count: 1) }
        #expect(silent.kind == .timeout)
        #expect(try client.readInputRegisters(unit: 1, address: 5, count: 1) == [1005])
        s.server.stop()
        pair.stop()
    }
}
