import Testing
import Protocols
import Simulator
import TestSupport

/// Physics in virtual time: the agent's view through Modbus, the physics stepped by `advance(by:)`.
@Suite struct SimulatorPhysicsTests {
    @Test func luminaireFadesAndDrawsPowerAndCountsEnergy() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        // Power-up: 100 %, 60.0 W, no energy yet, ambient temperature.
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 6) == [100, 600, 0, 0, 0, 200])
        // Setpoint 50 with a 1.0 s fade, written as one request.
        try c.writeRegisters(unit: 1, address: 0, values: [50, 10])
        #expect(try c.readHoldingRegisters(unit: 1, address: 0, count: 2) == [50, 10])
        s.sim.advance(by: .milliseconds(500))
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 2) == [75, 450])
        s.sim.advance(by: .milliseconds(600))
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 2) == [50, 300])
        // An hour at 30 W: 30 Wh (uint32, high word first); the driver warms up toward ~35 °C.
        s.sim.advance(by: .seconds(3600))
        let regs = try c.readInputRegisters(unit: 1, address: 0, count: 6)
        #expect(regs[2] == 0 && regs[3] == 30)
        #expect((340...360).contains(Int(Int16(bitPattern: regs[5]))))
        let state = s.get("lamp-01")
        #expect(state["setpoint"] as? Int == 50)
        #expect(state["level"] as? Double == 50)
        #expect(state["power_w"] as? Double == 30)
        #expect((state["energy_wh"] as? Double ?? 0) > 30)
        #expect(state["fade"] as? Double == 1)
        // Fade 0: immediate, visible right after the write. Above 100 % is clamped.
        try c.writeRegister(unit: 1, address: 1, value: 0)
        try c.writeRegister(unit: 1, address: 0, value: 0)
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 2) == [0, 0])
        try c.writeRegister(unit: 1, address: 0, value: 150)
        #expect(try c.readHoldingRegisters(unit: 1, address: 0, count: 1) == [100])
        #expect(try c.readInputRegisters(unit: 1, address: 0, count: 2) == [100, 600])
    }

    @Test func energyUsesTheHighWord() throws {
        let s = try ManualSim("tick: 1s\nunits:\n  5: {type: ref-luminaire, name: big, rated_w: 6000}\n")
        s.sim.advance(by: .seconds(12 * 3600))
        // 6000 W for 12 h = 72000 Wh = 0x0001_1940.
        #expect(try s.client.readInputRegisters(unit: 5, address: 1, count: 3) == [60000, 1, 6464])
    }

    @Test func luminaireFaultInjection() throws {
        let s = try ManualSim(referenceUnits)
        #expect(s.run("set lamp-01 lamp_failure 1")["ok"] as? Bool == true)
        s.sim.advance(by: .milliseconds(20))
        var regs = try s.client.readInputRegisters(unit: 1, address: 0, count: 5)
        #expect(regs[0] == 100 && regs[1] == 0 && regs[4] == 0b001)
        _ = s.run("set lamp-01 lamp_failure 0")
        _ = s.run("set lamp-01 driver_fault 1")
        _ = s.run("set lamp-01 over_temperature 1")
        regs = try s.client.readInputRegisters(unit: 1, address: 0, count: 6)
        #expect(regs[4] == 0b110)
        #expect(Int16(bitPattern: regs[5]) >= 850)
        let refused = s.run("set lamp-01 colour 1")
        #expect(refused["ok"] as? Bool == false)
        #expect((refused["error"] as? String ?? "").contains("no signal colour"))
    }

    @Test func presenceAndLux() throws {
        let s = try ManualSim(referenceUnits)
        #expect(try s.client.readDiscreteInputs(unit: 20, address: 0, count: 1) == [false])
        _ = s.run("set pir-01 presence 1")
        _ = s.run("set pir-01 lux 1234")
        #expect(try s.client.readDiscreteInputs(unit: 20, address: 0, count: 1) == [true])
        #expect(try s.client.readInputRegisters(unit: 20, address: 0, count: 1) == [1234])
        let state = s.get("pir-01")
        #expect(state["presence"] as? Bool == true && state["lux"] as? Int == 1234)
    }

    @Test func bollardTravelsBetweenEndPositions() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        // At the bottom initially.
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 6) == [false, true, false, false, false, false])
        #expect(s.get("bollard-1")["position"] as? String == "down")
        // Warning lights and motor-up in one write: raising over 200 ms.
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true, true])
        s.sim.advance(by: .milliseconds(100))
        var state = s.get("bollard-1")
        #expect(state["position"] as? String == "raising")
        #expect(abs((state["height"] as? Double ?? 0) - 0.5) < 0.02)
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 2) == [false, false])
        s.sim.advance(by: .milliseconds(120))
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 2) == [true, false])
        #expect(s.get("bollard-1")["position"] as? String == "up")
        // Motor off: stays up. Motor down: lowers over 100 ms.
        try c.writeCoils(unit: 30, address: 0, values: [false, false, false, false])
        s.sim.advance(by: .seconds(1))
        #expect(s.get("bollard-1")["position"] as? String == "up")
        try c.writeCoil(unit: 30, address: 1, value: true)
        s.sim.advance(by: .milliseconds(50))
        #expect(s.get("bollard-1")["position"] as? String == "lowering")
        s.sim.advance(by: .milliseconds(60))
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 2) == [false, true])
        state = s.get("bollard-1")
        #expect(state["position"] as? String == "down" && state["height"] as? Double == 0)
        // Stopped half-way.
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true])
        s.sim.advance(by: .milliseconds(100))
        try c.writeCoil(unit: 30, address: 0, value: false)
        #expect(s.get("bollard-1")["position"] as? String == "stopped")
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 2) == [false, false])
        #expect(s.violations() == 0)
    }

    @Test func bothCoilsIsAMotorFaultAndAViolation() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        try c.writeCoils(unit: 30, address: 0, values: [true, true, true])
        s.sim.advance(by: .seconds(1))
        #expect(try c.readDiscreteInputs(unit: 30, address: 0, count: 5) == [false, true, false, false, true])
        let state = s.get("bollard-1")
        #expect(state["position"] as? String == "fault" && state["height"] as? Double == 0)
        let stats = s.run("stats")
        #expect(stats["safety_violations"] as? Int == 1)
        #expect((stats["violations"] as? [String] ?? []).first?.contains("bollard-1: motor-up and motor-down energised together") == true)
        // An injected motor fault also stops motion.
        try c.writeCoils(unit: 30, address: 0, values: [false, false, false])
        _ = s.run("set bollard-1 motor_fault 1")
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true])
        s.sim.advance(by: .seconds(1))
        #expect(s.get("bollard-1")["height"] as? Double == 0)
        #expect(try c.readDiscreteInputs(unit: 30, address: 4, count: 1) == [true])
    }

    @Test func motorUpWithLoopOccupiedIsCounted() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        _ = s.run("set bollard-1 loop 1")
        #expect(try c.readDiscreteInputs(unit: 30, address: 2, count: 1) == [true])
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true])
        var stats = s.run("stats")
        #expect(stats["safety_violations"] as? Int == 1)
        #expect((stats["violations"] as? [String] ?? []).first?.contains("vehicle loop is occupied") == true)
        // The same episode is not counted twice; a new one is.
        s.sim.advance(by: .seconds(2))
        #expect(s.violations() == 1)
        try c.writeCoil(unit: 30, address: 0, value: false)
        try c.writeCoil(unit: 30, address: 0, value: true)
        #expect(s.violations() == 2)
        try c.writeCoil(unit: 30, address: 0, value: false)
        _ = s.run("set bollard-1 loop 0")

        // Motor-up without warning lights.
        try c.writeCoils(unit: 30, address: 0, values: [true, false, false])
        stats = s.run("stats")
        #expect(stats["safety_violations"] as? Int == 3)
        #expect((stats["violations"] as? [String] ?? []).last?.contains("warning lights are off") == true)
        try c.writeCoil(unit: 30, address: 0, value: false)
        _ = s.run("set bollard-1 emergency 1")
        #expect(try c.readDiscreteInputs(unit: 30, address: 5, count: 1) == [true])
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true])
        #expect(s.violations() == 4)
        try c.writeCoil(unit: 30, address: 0, value: false)
        _ = s.run("set bollard-1 emergency 0")

        // An obstruction during a rise is the agent's to handle within the grace time...
        try c.writeCoils(unit: 30, address: 0, values: [true, false, true])
        _ = s.run("set bollard-1 photocell 1")
        s.sim.advance(by: .milliseconds(500))
        try c.writeCoil(unit: 30, address: 0, value: false)
        s.sim.advance(by: .seconds(2))
        #expect(s.violations() == 4)
        // ...and counted when motor-up stays energised past it.
        try c.writeCoil(unit: 30, address: 0, value: true)
        #expect(s.violations() == 5)  // energised while interrupted: at once
        _ = s.run("reset-stats")
        #expect(s.violations() == 0)
    }

    @Test func signalAcknowledgesAfterTheDelayUnlessDegraded() throws {
        let s = try ManualSim(referenceUnits)
        let c = s.client
        try c.writeCoil(unit: 40, address: 0, value: true)
        #expect(try c.readDiscreteInputs(unit: 40, address: 0, count: 9) == Array(repeating: false, count: 9))
        s.sim.advance(by: .milliseconds(200))
        #expect(try c.readDiscreteInputs(unit: 40, address: 0, count: 1) == [false])
        s.sim.advance(by: .milliseconds(110))
        #expect(try c.readDiscreteInputs(unit: 40, address: 0, count: 1) == [true])
        var state = s.get("junction")
        #expect((state["request"] as? [Bool])?.first == true && (state["ack"] as? [Bool])?.first == true)
        // Request off: acknowledgement off at once.
        try c.writeCoil(unit: 40, address: 0, value: false)
        #expect(try c.readDiscreteInputs(unit: 40, address: 0, count: 1) == [false])
        // Degraded controller: no acknowledgement; it comes after the delay once recovered.
        _ = s.run("set junction degraded 1")
        try c.writeCoil(unit: 40, address: 3, value: true)
        s.sim.advance(by: .seconds(1))
        #expect(try c.readDiscreteInputs(unit: 40, address: 3, count: 6) == [false, false, false, false, false, true])
        _ = s.run("set junction degraded 0")
        s.sim.advance(by: .milliseconds(250))
        #expect(try c.readDiscreteInputs(unit: 40, address: 3, count: 1) == [false])
        s.sim.advance(by: .milliseconds(100))
        #expect(try c.readDiscreteInputs(unit: 40, address: 3, count: 1) == [true])
        state = s.get("junction")
        #expect(state["degraded"] as? Bool == false)
        // Degraded while acknowledged drops the acknowledgement.
        _ = s.run("set junction degraded 1")
        #expect(try c.readDiscreteInputs(unit: 40, address: 3, count: 1) == [false])
    }
}
