#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// Whole processes: edge-sim serving the reference devices and edge-agent on a simulated
/// board, driven and observed from outside (the simulator's control socket and edgectl).
@Suite(.serialized)
struct AgentEndToEndTests {
    func number(_ d: [String: Any], _ k: String) -> Double { (d[k] as? Double) ?? Double(d[k] as? Int ?? -1) }
    func bool(_ d: [String: Any], _ k: String) -> Bool { (d[k] as? Bool) ?? ((d[k] as? Int).map { $0 != 0 } ?? false) }

    @Test func presenceBoostsTheLuminaireAndHoldExpiresBackToBase() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        // Without presence the group runs at its base level.
        #expect(Wait.until(timeout: .seconds(10)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 30 })
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.number(rig.device("lamp-01"), "level")) == 100 })
        #expect(try number(rig.device("lamp-02"), "setpoint") == 100)
        _ = try rig.simControl("set pir-01 presence 0")
        // Hold 1 s after the detection ends, then back to base.
        #expect(Wait.until(timeout: .seconds(6)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 30 })
    }

    @Test func gpioPresenceSensorBoostsToo() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 30 })
        _ = try rig.simControl("gpio presence-a 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 100 })
        _ = try rig.simControl("gpio presence-a 0")
    }

    @Test func raiseWithAVehicleOnTheLoopIsRefusedAndNeverMovesTheBollard() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["bollards"] as? [String: Any])?["bollard-1"].flatMap { ($0 as? [String: Any])?["position"] as? String } == "down" })
        _ = try rig.simControl("set bollard-1 loop 1")
        // Let the agent see the loop.
        #expect(Wait.until(timeout: .seconds(5)) {
            ((try? rig.status()["bollards"] as? [String: Any])?["bollard-1"] as? [String: Any])?["loop"] as? Bool == true
        })
        let r = try rig.edgectl(["bollard", "raise", "bollard-1"])
        #expect(r.status == 1, "edgectl must refuse: \(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("interlock"))
        Thread.sleep(forTimeInterval: 1.0)
        let b = try rig.device("bollard-1")
        #expect(b["position"] as? String == "down")
        #expect(!bool(b, "motor_up"))
        #expect(try rig.safetyViolations() == 0)
    }

    @Test func obstructionWhileRaisingReversesToDownWithoutAnySafetyViolation() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        let r = try rig.edgectl(["bollard", "raise", "bollard-1"])
        #expect(r.status == 0, "\(r.stderr)")
        // Warning lights come on before the motor.
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.bool(rig.device("bollard-1"), "warning")) == true })
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.bool(rig.device("bollard-1"), "motor_up")) == true })
        _ = try rig.simControl("set bollard-1 photocell 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(!bool(try rig.device("bollard-1"), "motor_up"))
        #expect(try rig.safetyViolations() == 0)
        // Clear the photocell and raise fully: reaches the top, motor cut at the end position.
        _ = try rig.simControl("set bollard-1 photocell 0")
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(8)) { (try? rig.device("bollard-1")["position"] as? String) == "up" })
        #expect(Wait.until(timeout: .seconds(3)) { (try? self.bool(rig.device("bollard-1"), "motor_up")) == false })
        #expect(try rig.safetyViolations() == 0)
    }

    @Test func busCheckInSetsTheRequestCoilAndCheckOutClearsIt() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["junction"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        _ = try rig.simControl("gpio bus-detect-north 1")
        _ = try rig.simControl("gpio bus-detect-north 0")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
        _ = try rig.simControl("gpio stopline-north 1")
        _ = try rig.simControl("gpio stopline-north 0")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == false })
    }

    @Test func aLostCheckOutIsDroppedAtMaxHold() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.status()["devices"] as? [String: Any])?["junction"].flatMap { ($0 as? [String: Any])?["online"] as? Bool } == true })
        _ = try rig.simControl("gpio bus-detect-north 1")
        #expect(Wait.until(timeout: .seconds(5)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == true })
        // No check-out: max_hold is 4 s.
        #expect(Wait.until(timeout: .seconds(8)) { ((try? rig.device("junction")["request"]) as? [Any])?.first as? Bool == false })
    }

    @Test func aDeadUnitIsReportedOfflineAndTheOthersKeepWorking() throws {
        let rig = try FieldRig()
        try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 30 })
        _ = try rig.simControl("set lamp-02 offline 1")
        #expect(Wait.until(timeout: .seconds(8)) {
            ((try? rig.status()["devices"] as? [String: Any])?["lamp-02"] as? [String: Any])?["online"] as? Bool == false
        })
        let alarms = try rig.status()["alarms"] as? [[String: Any]] ?? []
        #expect(alarms.contains { $0["device"] as? String == "lamp-02" && $0["code"] as? String == "comm_lost" })
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 100 })
        _ = try rig.simControl("set lamp-02 offline 0")
        #expect(Wait.until(timeout: .seconds(10)) {
            ((try? rig.status()["devices"] as? [String: Any])?["lamp-02"] as? [String: Any])?["online"] as? Bool == true
        })
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.number(rig.device("lamp-02"), "setpoint")) == 100 })
    }

    @Test func sigtermDuringABollardMovementLeavesTheMotorCoilsOff() throws {
        let rig = try FieldRig()
        let agent = try rig.startAgent()
        #expect(Wait.until(timeout: .seconds(10)) { (try? rig.device("bollard-1")["position"] as? String) == "down" })
        #expect(try rig.edgectl(["bollard", "raise", "bollard-1"]).status == 0)
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.bool(rig.device("bollard-1"), "motor_up")) == true })
        agent.signal(SIGTERM)
        #expect(agent.waitExit(timeout: .seconds(10)) == 0)
        let b = try rig.device("bollard-1")
        #expect(!bool(b, "motor_up"))
        #expect(!bool(b, "motor_down"))
    }

    @Test func aBadConfigStopsStartupWithExit78NamingFileLineAndKey() throws {
        let rig = try FieldRig()
        let config = rig.agentConfig().replacingOccurrences(of: "hold: 1s", with: "hold: 1 fortnight")
        let path = rig.scratch.write("agent.yaml", config)
        let r = try runCommand(BuildProducts.executable("edge-agent"), ["--config", path], timeout: .seconds(10))
        #expect(r.status == 78)
        #expect(r.stderr.contains("agent.yaml:"))
        #expect(r.stderr.contains("lighting.rue-liberte.hold"))
    }

    @Test func sighupWithABrokenConfigKeepsTheRunningOne() throws {
        let rig = try FieldRig()
        let agent = try rig.startAgent()
        _ = rig.scratch.write("agent.yaml", "gateway: {id: BAD ID}\n")
        agent.signal(SIGHUP)
        Thread.sleep(forTimeInterval: 0.5)
        #expect(agent.isRunning)
        #expect(try rig.status()["gateway"] as? String == "test-gw")
        _ = try rig.simControl("set pir-01 presence 1")
        #expect(Wait.until(timeout: .seconds(5)) { (try? self.number(rig.device("lamp-01"), "setpoint")) == 100 })
    }
}
