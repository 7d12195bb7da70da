import Foundation
import Testing
import TestSupport

/// Slow blocks through real processes (`PollPeriods.slowBlocks`): the agent reads a bollard's
/// and a signal I/O's coils only about once a second, yet a unit that restarts without missing a
/// poll (`edge-sim power-cycle`: coils off, as at power-on) gets its outputs written again, bounded
/// by the slow period plus a poll (waited on with a generous timeout, not timed).
@Suite(.serialized)
struct ReadBackSystemTests {
    static func bollardTraffic(_ rig: FieldRig) -> String? { (try? rig.device("bollard-1"))?["traffic"] as? String }
    static func request1(_ rig: FieldRig) -> Bool? { ((try? rig.device("junction"))?["request"] as? [Bool])?.first }

    @Test func aUnitThatLostItsCoilsGetsThemWrittenAgain() throws {
        let rig = try FieldRig()
        // A long hold, so the bus's request stands through the test.
        try rig.startAgent(config: rig.agentConfig().replacingOccurrences(of: "max_hold: 4s", with: "max_hold: 60s"))
        // At rest at the bottom: the traffic light is green.
        #expect(Wait.until(timeout: .seconds(15)) { Self.bollardTraffic(rig) == "green" })
        _ = try rig.simControl("gpio bus-detect-north 1")
        #expect(Wait.until(timeout: .seconds(10)) { Self.request1(rig) == true })
        let clock = ContinuousClock()
        for round in 1...3 {
            _ = try rig.simControl("power-cycle bollard-1")
            _ = try rig.simControl("power-cycle junction")
            let start = clock.now
            #expect(Wait.until(timeout: .seconds(10)) { Self.bollardTraffic(rig) == "green" && Self.request1(rig) == true }, "round \(round)")
            FileHandle.standardError.write(Data("read-back: round \(round): coils written again after \(clock.now - start)\n".utf8))
        }
        // The units never stopped answering: no offline, no alarm for them; nothing unsafe.
        let status = try rig.status()
        let alarms = (status["alarms"] as? [[String: Any]] ?? []).compactMap { $0["device"] as? String }
        #expect(!alarms.contains("bollard-1") && !alarms.contains("junction"), "\(alarms)")
        let values = ((status["devices"] as? [String: Any])?["bollard-1"] as? [String: Any])?["values"] as? [String: Any]
        #expect(values?["traffic"] != nil && values?["at_bottom"] != nil, "status keeps the read-back between its reads: \(values ?? [:])")
        #expect(try rig.safetyViolations() == 0)
    }
}
