import Testing
import Protocols
import TestSupport

/// The client against a server nobody here wrote: pymodbus 3.16.
@Suite struct ModbusPyModbusTests {
    @Test func readsAndWritesEveryTableOfPymodbus() throws {
        let server = try PyModbusServer(
            unit: 17,
            coils: [true, false, true, true, false, false, false, true, false, true],
            discreteInputs: [false, true, true, false, true, false],
            holdingRegisters: [100, 200, 300, 400, 500, 600],
            inputRegisters: [11, 22, 33, 44, 55]
        )
        let client = try ModbusClient(bus: "peer", transport: .tcp(host: "127.0.0.1", port: server.port), responseTimeout: .seconds(2))
        #expect(try client.readCoils(unit: 17, address: 0, count: 10) == [true, false, true, true, false, false, false, true, false, true])
        #expect(try client.readDiscreteInputs(unit: 17, address: 1, count: 4) == [true, true, false, true])
        #expect(try client.readHoldingRegisters(unit: 17, address: 0, count: 6) == [100, 200, 300, 400, 500, 600])
        #expect(try client.readInputRegisters(unit: 17, address: 2, count: 3) == [33, 44, 55])

        try client.writeCoil(unit: 17, address: 1, value: true)
        try client.writeCoils(unit: 17, address: 4, values: [true, true])
        try client.writeRegister(unit: 17, address: 0, value: 4321)
        try client.writeRegisters(unit: 17, address: 3, values: [7, 8, 9])
        #expect(try client.readCoils(unit: 17, address: 0, count: 6) == [true, true, true, true, true, true])
        #expect(try client.readHoldingRegisters(unit: 17, address: 0, count: 6) == [4321, 200, 300, 7, 8, 9])

        // Another unit id is not served by this pymodbus context: an error, not a hang.
        client.responseTimeout = .milliseconds(500)
        #expect(throws: ModbusError.self) { try client.readHoldingRegisters(unit: 3, address: 0, count: 1) }
        #expect(try client.readInputRegisters(unit: 17, address: 0, count: 1) == [11])
        server.stop()
    }
}
