@testable import EdgeAgent
import Foundation
import Synchronization
import Testing
import TestSupport

/// The controllers' carry-over (`BollardController.CarryOver`, `LightingGroup.CarryOver`) on
/// the virtual clock, and `SafetyStateStore`'s file: what a reload or a restart keeps.
@Suite struct SafetyCarryOverTests {
    typealias Clock = ControlTest.Clock
    typealias S = BollardController.Sensors
    static let config = BollardConfig(name: "bollard-1", preWarning: .seconds(3), travelTimeout: .seconds(8), autoRaiseAfter: .seconds(10),
                                      maxSensorAge: .seconds(60))

    static func refusal(_ o: ControlOutcome) -> CommandError? {
        if case .refused(let r) = o { return r }
        return nil
    }

    /// A new controller from `b`'s carry-over at `at` (a reload), or from its durable part
    /// only, as after a restart.
    static func reload(_ b: BollardController, at: MonotonicInstant, restart: Bool = false) -> BollardController {
        var c = b.carryOver(at: at)
        if restart {
            c = c.durable ?? .init()
            c.interrupted = true
        }
        return BollardController(config: config, restoring: c, at: at)
    }

    // MARK: - Bollard

    @Test func anEmergencyLatchSurvivesAReloadAndARestartAndLowersARaisedBollard() {
        var clock = Clock()
        for restart in [false, true] {
            var b = BollardTests.makeUp(&clock)
            #expect(b.emergencyLower(at: clock.now) == .accepted)
            #expect(b.carryOver(at: clock.now).emergencyLatched)
            var n = Self.reload(b, at: clock.now, restart: restart)
            #expect(n.emergencyLatched)
            #expect(n.position == .fault && n.fault == .noContact, "no contact yet")
            // The motor was cut by the old core's safe outputs before it reached the bottom: up again.
            n.handle(.sensors(BollardTests.top), at: clock.plus(0.1))
            #expect(n.outputs.motorDown, "latched: lowered at first contact")
            #expect(Self.refusal(n.raise(at: clock.plus(0.2)))?.code == .interlock)
            n.handle(.sensors(BollardTests.down), at: clock.plus(2))
            #expect(n.position == .emergencyDown)
            #expect(Self.refusal(n.raise(at: clock.plus(3)))?.code == .interlock, "still latched")
            // Carried again (a second reload) before it is cleared.
            var m = Self.reload(n, at: clock.plus(4), restart: restart)
            m.handle(.sensors(BollardTests.down), at: clock.plus(4))
            #expect(m.position == .emergencyDown)
            #expect(Self.refusal(m.raise(at: clock.plus(5)))?.code == .interlock)
            #expect(m.clearEmergency(at: clock.plus(6)) == .accepted)
            #expect(m.position == .down)
            #expect(m.raise(at: clock.plus(7)) == .accepted)
            clock.advance(.seconds(10))
        }
    }

    @Test func latchedTravelTimeoutAndMotorFaultSurviveAndOnlyALowerEndsThem() {
        var clock = Clock()
        for restart in [false, true] {
            // Travel timeout while raising (stuck midway).
            var b = BollardTests.make(clock)
            #expect(b.raise(at: clock.now) == .accepted)
            b.handle(.sensors(S()), at: clock.plus(3))
            b.tick(at: clock.plus(11))
            #expect(b.latchedFault == .travelTimeoutRaising)
            _ = b.drainEvents()
            var n = Self.reload(b, at: clock.plus(12), restart: restart)
            #expect(n.latchedFault == .travelTimeoutRaising)
            #expect(ControlTest.alarms(n.drainEvents()).map { "\($0.0)=\($0.1)" } == ["travel_timeout=true"], "alarm raised again")
            n.handle(.sensors(S()), at: clock.plus(12.1))
            #expect(n.outputs == BollardController.Outputs(), "a latched fault: nothing moves by itself, midway or not")
            #expect(Self.refusal(n.raise(at: clock.plus(13)))?.code == .interlock)
            #expect(n.lower(at: clock.plus(14)) == .accepted)
            #expect(n.outputs.motorDown)

            // Motor fault input, cleared after the restart: still latched until a lower.
            var m = BollardTests.make(clock)
            m.handle(.sensors(S(atBottom: true, motorFault: true)), at: clock.plus(20))
            #expect(m.latchedFault == .motorFault)
            var k = Self.reload(m, at: clock.plus(21), restart: restart)
            k.handle(.sensors(BollardTests.down), at: clock.plus(21.1))
            #expect(k.latchedFault == .motorFault && k.position == .fault)
            #expect(Self.refusal(k.raise(at: clock.plus(22)))?.code == .interlock)
            #expect(k.lower(at: clock.plus(23)) == .accepted)
            #expect(k.position == .down)
            clock.advance(.seconds(30))
        }
    }

    @Test func holdDownKeepsItsRemainingTimeAndTheCommandedModeOnlyOverAReload() {
        var clock = Clock()
        var b = BollardTests.makeUp(&clock)
        #expect(b.holdDown(.seconds(300), at: clock.now) == .accepted)
        b.handle(.sensors(BollardTests.down), at: clock.plus(2))
        let end = clock.plus(300)
        #expect(b.carryOver(at: clock.plus(100)).holdRemaining == .seconds(200))
        #expect(b.carryOver(at: clock.plus(100)).commandedUp)

        // A reload at +100 s: the hold ends at +300 s, then auto-raise as commanded.
        var n = Self.reload(b, at: clock.plus(100))
        #expect(n.holdUntil == end)
        n.handle(.sensors(BollardTests.down), at: clock.plus(100.1))
        #expect(n.position == .down)
        #expect(n.nextDeadline == end)
        n.tick(at: end)
        #expect(n.nextDeadline == end + .seconds(10))
        n.tick(at: end + .seconds(10))
        #expect(n.position == .raising, "commanded mode kept over a reload")

        // A restart at +100 s: the hold is kept, the commanded mode is not: it stays down.
        var r = Self.reload(b, at: clock.plus(100), restart: true)
        #expect(r.holdUntil == end)
        r.handle(.sensors(BollardTests.down), at: clock.plus(100.1))
        r.tick(at: end + .seconds(60))
        #expect(r.position == .down && r.holdUntil == nil)
        #expect(r.nextDeadline == nil, "never rises by itself after a restart")
        #expect(r.raise(at: end + .seconds(61)) == .accepted, "a raise still ends a hold, as before")
    }

    @Test func aBollardMidRiseIsLoweredAndARaiseIsNotRetried() {
        let clock = Clock()
        var b = BollardTests.make(clock)
        #expect(b.raise(at: clock.now) == .accepted)
        b.handle(.sensors(S()), at: clock.plus(3))
        #expect(b.outputs.motorUp)
        let c = b.carryOver(at: clock.plus(4))
        #expect(c.interrupted && !c.commandedUp)
        var n = BollardController(config: Self.config, restoring: c, at: clock.plus(4))
        n.handle(.sensors(S()), at: clock.plus(4.5))
        #expect(n.position == .lowering && n.outputs.motorDown && n.outputs.warningLights && !n.outputs.motorUp)
        #expect(n.drainEvents().contains { $0.kind == .bollardState(from: .fault, to: .lowering, cause: .interrupted) })
        n.handle(.sensors(BollardTests.down), at: clock.plus(6))
        #expect(n.position == .down && n.outputs.trafficGreen)
        #expect(n.nextDeadline == nil, "the abandoned raise is not retried")

        // Found at an end: stays there. Both switches: position unknown.
        var top = BollardController(config: Self.config, restoring: c, at: clock.plus(4))
        top.handle(.sensors(BollardTests.top), at: clock.plus(4.5))
        #expect(top.position == .up && top.outputs == BollardController.Outputs())
        var both = BollardController(config: Self.config, restoring: c, at: clock.plus(4))
        both.handle(.sensors(S(atTop: true, atBottom: true)), at: clock.plus(4.5))
        #expect(both.fault == .positionUnknown && both.outputs == BollardController.Outputs())

        // Lowering interrupted too; travel timeout still applies to the new lowering.
        var stuck = BollardController(config: Self.config, restoring: c, at: clock.plus(4))
        stuck.handle(.sensors(S()), at: clock.plus(4.5))
        stuck.tick(at: clock.plus(12.5))
        #expect(stuck.latchedFault == .travelTimeoutLowering && !stuck.outputs.motorDown)

        // Without carry-over (the io-lost rule): midway is position unknown, as before.
        var plain = BollardController(config: Self.config)
        plain.handle(.sensors(S()), at: clock.plus(4.5))
        #expect(plain.fault == .positionUnknown)
    }

    @Test func exportImportRoundTripsAndAControllerAtRestCarriesNothing() {
        var clock = Clock()
        var b = BollardTests.make(clock)
        #expect(b.carryOver(at: clock.now) == BollardController.CarryOver())
        #expect(b.carryOver(at: clock.now).durable == nil)
        b = BollardTests.makeUp(&clock)
        #expect(b.holdDown(.seconds(50), at: clock.now) == .accepted)
        let c = b.carryOver(at: clock.plus(1))
        let n = BollardController(config: Self.config, restoring: c, at: clock.plus(1))
        #expect(n.carryOver(at: clock.plus(1)) == c)
        #expect(n.durableKey == BollardController.DurableKey(emergencyLatched: false, latchedFault: nil, holdUntil: clock.plus(50)))
    }

    /// The 2,000-sequence safety property test, with reloads and restarts at random moments:
    /// every latch and hold is carried, a reload's export round-trips, and after a restart or
    /// an interrupted movement the bollard never rises before a new `raise`.
    @Test func safetyInvariantsHoldAcrossReloadsAndRestarts() {
        var coverage = BollardSafetyTests.Coverage()
        var failures = 0
        for k in 0..<1_000 {
            let seed: UInt64 = 0x5AFE_0000 + UInt64(k)
            if let failure = BollardSafetyTests.run(seed: seed, steps: 600, coverage: &coverage, reloads: true) {
                Issue.record("bollard seed \(seed): \(failure)")
                failures += 1
                if failures >= 3 { break }
            }
        }
        #expect(coverage.reloads > 1_000, "\(coverage)")
        #expect(coverage.reloadsWhileMoving > 100, "\(coverage)")
        #expect(coverage.latchesCarried > 100, "\(coverage)")
        #expect(coverage.holdsCarried > 50, "\(coverage)")
        #expect(coverage.motorUpSteps > 500, "\(coverage)")
    }

    // MARK: - Lighting group

    static let groupConfig = LightingGroupConfig(
        name: "rue-liberte", lamps: ["lamp-01"], presence: ["pir-01", "pir-02"], base: 30, boost: 100,
        hold: .seconds(60), fadeUp: .milliseconds(500), fadeDown: .seconds(10), night: nil, on: nil, off: nil)

    @Test func aStartDoesNotBoostWithoutPresenceButAnOfflineSensorDoes() {
        let clock = Clock()
        var g = LightingGroup(config: Self.groupConfig)
        g.setSchedule(level: 30, at: clock.now)
        #expect(g.outputs.level == 30 && !g.boosting, "sensors not heard yet: no boost")
        g.handle(.sensorOnline(sensor: "pir-01", online: true), at: clock.plus(0.1))
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.plus(0.1))
        #expect(g.outputs.level == 30 && g.nextDeadline == nil, "a first report of nobody starts no hold")
        g.handle(.sensorOnline(sensor: "pir-02", online: false), at: clock.plus(0.3))
        #expect(g.outputs.level == 100 && g.cause == .sensorOffline, "reported offline: boost")
    }

    @Test func aReloadCarriesTheOverrideAndTheBoostButStartsNoNewOne() {
        var clock = Clock()
        var g = LightingGroupTests.make(&clock)
        #expect(g.carryOver(at: clock.now) == nil, "idle: nothing to carry")
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.plus(5))
        #expect(g.setOverride(level: 70, until: clock.plus(600), at: clock.plus(10)) == .accepted)
        let c = try! #require(g.carryOver(at: clock.plus(20)))
        #expect(c.override?.level == 70 && c.override?.remaining == .seconds(580))
        #expect(c.boostRemaining == .seconds(45), "the hold from +5 s, 45 s left at +20 s")
        var n = LightingGroup(config: Self.groupConfig, restoring: c, at: clock.plus(20))
        n.setSchedule(level: 30, at: clock.plus(20))
        #expect(n.outputs.level == 70 && n.cause == .override)
        #expect(n.release(at: clock.plus(21)) == .accepted)
        #expect(n.outputs.level == 100, "the boost carried as a hold")
        n.handle(.presence(sensor: "pir-01", detected: false), at: clock.plus(21))
        n.handle(.presence(sensor: "pir-02", detected: false), at: clock.plus(21))
        n.tick(at: clock.plus(65))
        #expect(n.outputs.level == 30, "hold over at +65 s, as without the reload")

        // Detecting at the reload: a whole hold, and a sensor still detecting keeps it on.
        var d = LightingGroupTests.make(&clock)
        d.handle(.presence(sensor: "pir-02", detected: true), at: clock.now)
        let dc = try! #require(d.carryOver(at: clock.plus(1)))
        #expect(dc.boostRemaining == .seconds(60) && dc.override == nil)
    }

    // MARK: - The store's file

    @Test func theFileKeepsOnlyThePeopleProtectingPartWithWallClockEnds() throws {
        let wall = Date(timeIntervalSince1970: 1_764_806_400)
        var state = SafetyState(takenAt: MonotonicInstant(nanoseconds: 1))
        state.bollards["b1"] = .init(emergencyLatched: true, commandedUp: false, interrupted: true)
        state.bollards["b2"] = .init(latchedFault: .travelTimeoutLowering, holdRemaining: .seconds(90), commandedUp: true)
        state.bollards["b3"] = .init(commandedUp: true)
        state.groups["g"] = .init(override: (50, .seconds(10)))
        state.lamps["l"] = .init(level: 20, remaining: .seconds(5))
        let text = SafetyStateStore.encode(state, wall: wall)
        #expect(text == #"{"bollards":{"b1":{"emergency":true},"b2":{"fault":"travel_timeout_lowering","hold_until":"2025-12-04T00:01:30.000Z"}},"format":1,"written_at":"2025-12-04T00:00:00.000Z"}"# + "\n")
        // Read back 30 s later: 60 s of hold left; the rest as kept.
        let back = try SafetyStateStore.decode(text, wall: wall.addingTimeInterval(30))
        #expect(back.bollards == ["b1": .init(emergencyLatched: true), "b2": .init(latchedFault: .travelTimeoutLowering, holdRemaining: .seconds(60))])
        #expect(back.groups.isEmpty && back.lamps.isEmpty && back.takenAt == nil)
        // Read back after the hold's end: dropped. A clock set back: at most 24 h.
        #expect(try SafetyStateStore.decode(text, wall: wall.addingTimeInterval(91)).bollards["b2"]?.holdRemaining == nil)
        #expect(try SafetyStateStore.decode(text, wall: wall.addingTimeInterval(-7 * 86_400)).bollards["b2"]?.holdRemaining == .seconds(86_400))
    }

    @Test func aDamagedFileIsMovedAsideAndReportedAndAMissingOneIsAFirstStart() throws {
        let dir = ScratchDir("safety-store")
        let store = SafetyStateStore(directory: dir.path, logger: .init(label: "test"))
        defer { store.stop() }
        #expect(store.load() == SafetyState(afterRestart: true), "no file: a first start")
        for damaged in ["{\"format\":1,\"bollards\":{\"b1\":{\"emergency\":tru", "\u{0}\u{1}garbage", "{\"format\":2,\"bollards\":{}}",
                        "{\"format\":1,\"bollards\":{\"b1\":{\"fault\":\"gremlins\"}}}"] {
            _ = dir.write(SafetyStateStore.fileName, damaged)
            let s = store.load()
            #expect(s.unreadable?.contains(store.path) == true, "\(damaged): \(String(describing: s.unreadable))")
            #expect(s.bollards.isEmpty && s.afterRestart)
            #expect(!FileManager.default.fileExists(atPath: store.path), "moved aside")
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(SafetyStateStore.fileName + ".corrupt-") }
        #expect(!aside.isEmpty)
    }

    @Test func savesAreWrittenOffTheCallerAndRepliesWaitForThem() throws {
        let dir = ScratchDir("safety-store")
        let store = SafetyStateStore(directory: dir.path, logger: .init(label: "test"))
        let wall = Date(timeIntervalSince1970: 1_764_806_400)
        let replied = ReplyCount()
        for k in 0..<20 {
            store.save(SafetyState(bollards: ["b1": .init(emergencyLatched: k % 2 == 0)]), wall: wall, then: [{ replied.add() }])
        }
        store.flush()
        #expect(replied.value == 20, "every reply sent once written")
        #expect(store.failure == nil)
        let text = try #require(FileManager.default.contents(atPath: store.path)).map { Character(UnicodeScalar($0)) }
        #expect(String(text).contains("{}"), "the latest (k = 19: not latched) wins: \(String(text))")
        store.stop()
        store.save(SafetyState(bollards: ["b1": .init(emergencyLatched: true)]), wall: wall, then: [{ replied.add() }])
        store.flush()
        #expect(replied.value == 21, "a save after stop starts a new writer")
        store.stop()
        #expect(try SafetyStateStore.decode(String(decoding: FileManager.default.contents(atPath: store.path)!, as: UTF8.self), wall: wall).bollards["b1"]?.emergencyLatched == true)
    }
}

/// Counts replies from the store's thread.
final class ReplyCount: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
