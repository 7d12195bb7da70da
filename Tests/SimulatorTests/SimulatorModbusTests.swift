#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import Protocols
import Simulator
import TestSupport

/// The client against the in-process simulator: register maps, offline units, exceptions, RTU.
@Suite struct SimulatorModbusTests {
    @Test func referenceMapsOverTCP() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        #expect(try c.readHoldingRegisters(unit: 1, address: 0, count: 2) == [100, 0])
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 6).count == 6)
        #expect(try c.readDiscreteInputs(unit: 20, address: 0, count: 1) == [false])
        #expect(try c.readInputRegisters(unit: 20, address: 0, count: 1) == [5])
        #expect(try c.readCoils(unit: 30, address: 0, count: 4) == [false, false, false, false])
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 6) == [false, true, false, false, false, false])
        #expect(try c.readCoils(unit: 40, address: 0, count: 8) == Array(repeating: false, count: 8))
        #expect(try c.readDiscreteInputs(unit: 40, address: 0, count: 9) == Array(repeating: false, count: 9))
        try c.writeCoils(unit: 40, address: 0, values: [true, false, true])
        #expect(try c.readCoils(unit: 40, address: 0, count: 3) == [true, false, true])
        #expect(s.run("stats")["writes"] as? Int == 1)
    }

    @Test func outsideTheMapIsExceptionTwo() throws {
        let s = try ManualSim(referenceUnits)
        let error = try #require(throws: ModbusError.self) { try s.client.readHoldingRegisters(unit: 1, address: 100, count: 1) }
        #expect(error.kind == .exception(code: 2))
        #expect(error.description == "bus field unit 1: read holding 100..100: Modbus exception 2 (illegal data address)")
        // The presence sensor has no coils; the bollard has no registers.
        #expect(throws: ModbusError.self) { try s.client.readCoils(unit: 20, address: 0, count: 1) }
        let write = try #require(throws: ModbusError.self) { try s.client.writeRegister(unit: 30, address: 0, value: 1) }
        #expect(write.kind == .exception(code: 2))
        #expect(s.run("stats")["writes"] as? Int == 0)
    }

    @Test func offlineUnitTimesOutOthersAnswer() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(200))
        #expect(s.run("set bollard-1 offline 1")["ok"] as? Bool == true)
        #expect(s.get("bollard-1")["offline"] as? Bool == true)
        let error = try #require(throws: ModbusError.self) { try s.client.readDiscreteInputs(unit: 30, address: 0, count: 6) }
        #expect(error.kind == .timeout)
        #expect(error.description == "bus field unit 30: read discrete 0..5: timeout (no answer within 200 ms)")
        #expect(try s.client.readInputRegisters(unit: 1, address: 0, count: 1) == [100])
        // A unit id nobody has is silent too.
        #expect(throws: ModbusError.self) { try s.client.readCoils(unit: 99, address: 0, count: 1) }
        _ = s.run("set bollard-1 offline 0")
        #expect(try s.client.readDiscreteInputs(unit: 30, address: 0, count: 6) == [false, true, false, false, false, false])
    }

    @Test func controlCommandsInProcess() throws {
        let s = try ManualSim(referenceUnits)
        #expect(s.sim.command("gpio presence-a 1") == #"{"ok":true,"line":"presence-a","value":1}"#)
        #expect(s.sim.command("get-gpio") == #"{"ok":true,"lines":{"presence-a":1,"bus-detect-north":0,"stopline-north":0}}"#)
        #expect(s.run("gpio nowhere 1")["ok"] as? Bool == false)
        #expect(s.run("gpio presence-a 7")["ok"] as? Bool == false)
        #expect(s.run("gpio-watch")["ok"] as? Bool == false)
        #expect(s.run("fly away")["ok"] as? Bool == false)
        #expect(s.run("get")["error"] as? String == "usage: get <device>")
        #expect(s.sim.command("get pir-01") == #"{"ok":true,"device":"pir-01","type":"ref-presence","unit":20,"offline":false,"presence":false,"lux":5}"#)
        let list = s.run("list")["devices"] as? [[String: Any]] ?? []
        #expect(list.map { $0["device"] as? String } == ["lamp-01", "pir-01", "bollard-1", "junction"])
    }

    @Test func servesRTUThroughASocatPair() throws {
        let dir = ScratchDir("sim-rtu")
        let pair = try SocatPair(in: dir)
        var config = try SimConfig.parse(yaml: referenceUnits)
        config.rtu = SimConfig.Serial(device: pair.pathA, baud: 19200, parity: .even)
        let sim = FieldSimulator(config: config)
        try sim.start(physics: .manual)
        defer { sim.stop() }
        let client = try ModbusClient(bus: "rs485-1", transport: .rtu(device: pair.pathB, baud: 19200, parity: .even, dataBits: 8, stopBits: 1),
                                      responseTimeout: .milliseconds(300))
        try client.writeRegisters(unit: 1, address: 0, values: [40, 0])
        #expect(try client.readInputRegisters(unit: 1, address: 0, count: 2) == [40, 240])
        try client.writeCoils(unit: 30, address: 0, values: [true, false, true])
        sim.advance(by: .milliseconds(300))
        #expect(try client.readDiscreteInputs(unit: 30, address: 0, count: 6) == [true, false, false, false, false, false])
        _ = sim.command("set pir-01 presence 1")
        #expect(try client.readDiscreteInputs(unit: 20, address: 0, count: 1) == [true])
        _ = sim.command("set junction offline 1")
        let silent = try #require(throws: ModbusError.self) { try client.readCoils(unit: 40, address: 0, count: 8) }
        #expect(silent.kind == .timeout)
        #expect(try client.readHoldingRegisters(unit: 1, address: 0, count: 1) == [40])
    }

    @Test func realTimePhysicsRuns() throws {
        var config = try SimConfig.parse(yaml: referenceUnits)
        config.tcp = SimConfig.Endpoint(host: "127.0.0.1", port: 0)
        let sim = FieldSimulator(config: config)
        try sim.start()
        defer { sim.stop() }
        let client = try ModbusClient(bus: "field", transport: .tcp(host: "127.0.0.1", port: try #require(sim.tcpPort)))
        try client.writeCoils(unit: 30, address: 0, values: [true, false, true])
        // Travel up is 200 ms of real time; allow a loaded machine.
        let up = Wait.until(timeout: .seconds(5)) { (try? client.readDiscreteInputs(unit: 30, address: 0, count: 1)) == [true] }
        #expect(up)
    }
}
