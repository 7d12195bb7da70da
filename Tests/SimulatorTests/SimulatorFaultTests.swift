import Foundation
import Testing
import Protocols
import Simulator
import TestSupport

/// Injected unit faults (`fault <device> ...`), seen by a real Modbus client over TCP.
@Suite struct SimulatorFaultTests {
    @Test func exceptionModeAnswersEveryRequestWithTheCodeAndAppliesNoWrite() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(300))
        let set = s.run("fault lamp-01 exception 4")
        #expect(set["ok"] as? Bool == true)
        #expect(set["fault"] as? String == "exception 4")
        #expect(set["previous"] as? String == "none")
        let read = try #require(throws: ModbusError.self) { try s.client.readInputRegisters(unit: 1, address: 0, count: 6) }
        #expect(read.kind == .exception(code: 4))
        #expect(read.description == "bus field unit 1: read input 0..5: Modbus exception 4 (server device failure)")
        let write = try #require(throws: ModbusError.self) { try s.client.writeRegister(unit: 1, address: 0, value: 50) }
        #expect(write.kind == .exception(code: 4))
        #expect(s.get("lamp-01")["setpoint"] as? Int == 100)
        #expect(s.get("lamp-01")["fault"] as? String == "exception 4")
        #expect(s.get("lamp-01")["fault_hits"] as? Int == 2)
        #expect(s.run("stats")["writes"] as? Int == 0)
        // Other units answer normally.
        #expect(try s.client.readDiscreteInputs(unit: 20, address: 0, count: 1) == [false])
        let cleared = s.run("fault lamp-01 none")
        #expect(cleared["previous"] as? String == "exception 4")
        #expect(cleared["hits"] as? Int == 2)
        #expect(s.get("lamp-01")["fault"] == nil)
        #expect(try s.client.readHoldingRegisters(unit: 1, address: 0, count: 1) == [100])
    }

    @Test func slowModeAnswersLateSoAShortTimeoutMissesIt() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(150))
        #expect(s.run("fault lamp-01 slow 400")["fault"] as? String == "slow 400ms")
        let late = try #require(throws: ModbusError.self) { try s.client.readHoldingRegisters(unit: 1, address: 0, count: 1) }
        #expect(late.kind == .timeout)
        // A patient client gets the answer, no sooner than the delay.
        Thread.sleep(forTimeInterval: 0.4)
        s.client.close()
        s.client.responseTimeout = .seconds(2)
        let clock = ContinuousClock()
        let started = clock.now
        #expect(try s.client.readHoldingRegisters(unit: 1, address: 0, count: 1) == [100])
        #expect(clock.now - started >= .milliseconds(390))
        #expect(s.run("fault lamp-01 none")["hits"] as? Int == 2)
    }

    @Test func silentAfterAnswersTheFirstRequestsThenNothingUntilCleared() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(150))
        _ = s.run("fault bollard-1 silent-after 2")
        #expect(try s.client.readCoils(unit: 30, address: 0, count: 4) == [false, false, false, false])
        #expect(try s.client.readDiscreteInputs(unit: 30, address: 0, count: 6).count == 6)
        for _ in 0..<2 {
            let e = try #require(throws: ModbusError.self) { try s.client.readCoils(unit: 30, address: 0, count: 4) }
            #expect(e.kind == .timeout)
        }
        #expect(s.get("bollard-1")["fault"] as? String == "silent-after 0")
        #expect(s.run("fault bollard-1 none")["hits"] as? Int == 2)
        #expect(try s.client.readCoils(unit: 30, address: 0, count: 4).count == 4)
    }

    @Test func badFaultCommandsAreRefusedWithTheUsage() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(150))
        for bad in ["fault lamp-01", "fault lamp-01 exception", "fault lamp-01 exception 0", "fault lamp-01 slow -5",
                    "fault lamp-01 silent-after x", "fault lamp-01 sometimes", "fault nobody none"] {
            let r = s.run(bad)
            #expect(r["ok"] as? Bool == false, "\(bad)")
        }
        #expect((s.run("fault lamp-01 slow")["error"] as? String)?.contains("usage: fault <device>") == true)
        // offline outranks a fault mode.
        _ = s.run("fault lamp-01 exception 4")
        _ = s.run("set lamp-01 offline 1")
        let e = try #require(throws: ModbusError.self) { try s.client.readHoldingRegisters(unit: 1, address: 0, count: 1) }
        #expect(e.kind == .timeout)
    }
    /// `power-cycle`: the unit restarts between two requests: coils off and holding registers 0
    /// as at power-on, a running motor stops, and it answers the next request.
    @Test func powerCycleClearsCoilsAndHoldingRegistersAndTheUnitAnswers() throws {
        let s = try ManualSim(referenceUnits, responseTimeout: .milliseconds(300))
        try s.client.writeCoils(unit: 30, address: 0, values: [false, true, true, false, true])
        try s.client.writeRegister(unit: 1, address: 0, value: 70)
        #expect(s.get("bollard-1")["motor_down"] as? Bool == true)
        #expect(s.run("power-cycle bollard-1")["ok"] as? Bool == true)
        #expect(s.run("power-cycle lamp-01")["ok"] as? Bool == true)
        #expect(try s.client.readCoils(unit: 30, address: 0, count: 5) == [false, false, false, false, false])
        #expect(s.get("bollard-1")["traffic"] as? String == "red")
        #expect(try s.client.readHoldingRegisters(unit: 1, address: 0, count: 1) == [0])
        #expect(s.run("power-cycle nowhere")["ok"] as? Bool == false)
        #expect(s.violations() == 0)
    }
}
