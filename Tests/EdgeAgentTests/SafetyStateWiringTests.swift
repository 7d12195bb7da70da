@testable import EdgeAgent
import Drivers
import Foundation
import Synchronization
import Testing
import TestSupport

/// The control core's safety state in-process on the virtual clock: what a reload carries to
/// the next core by id, what the store writes and reads back for a restart, and what a start
/// or a reload does not do (boost the lights, resume a movement).
@Suite struct SafetyStateWiringTests {
    static let down = ControlWiringTests.bollardDown
    static let midway = ControlWiringTests.bollardMidway
    static var top: [PointRole: Double] { var t = midway; t[.atTop] = 1; return t }

    static let devices = """
      b1: {profile: ref-bollard, bus: field, unit: 30}
      b2: {profile: ref-bollard, bus: field, unit: 31}
      b3: {profile: ref-bollard, bus: field, unit: 32}
      k1: {profile: ref-bollard, bus: field, unit: 33}
      l1: {profile: ref-luminaire, bus: field, unit: 1}
      l2: {profile: ref-luminaire, bus: field, unit: 2}
      p1: {profile: ref-presence, bus: field, unit: 20}
    """
    static let extra = """
    bollards:
      b1: {pre_warning: 300ms, travel_timeout: 5s, auto_raise_after: 2s}
      b2: {pre_warning: 300ms, travel_timeout: 5s}
      b3: {pre_warning: 300ms, travel_timeout: 5s}
      k1: {pre_warning: 300ms, travel_timeout: 5s}
    lighting:
      g: {lamps: [l1, l2], presence: [p1], base: 30, boost: 100, hold: 60s, fade_up: 0ms, fade_down: 0ms}
    """

    /// Every field device answering: bollards at `positions` (default down), lamps at 30 %, nobody.
    static func pollAll(_ rig: CoreRig, _ positions: [String: [PointRole: Double]] = [:], bollards: [String] = ["b1", "b2", "b3", "k1"]) {
        for b in bollards { rig.poll(b, positions[b] ?? down) }
        for l in ["l1", "l2"] where rig.core.map.ids[l] != nil { rig.poll(l, [.level: 30, .setpoint: 30]) }
        rig.poll("p1", [.presence: 0])
    }

    static func halted(_ rig: CoreRig) -> SafetyState {
        rig.core.halt(within: .seconds(1))
        return rig.core.exportSafetyState()
    }

    static func setpoints(_ rig: CoreRig, _ lamp: String) -> [Double] {
        rig.writes(to: lamp).compactMap { w in w.points.first { $0.point == "setpoint" }?.value }
    }

    @Test func aReloadCarriesLatchesHoldsAndOverridesByIdAndDropsRemovedOrChangedDevices() throws {
        let old = try CoreRig(devices: Self.devices, extra: Self.extra)
        Self.pollAll(old)
        old.step()
        // b1: raised (commanded up), then held down 60 s. b2, b3, k1: emergency.
        #expect(old.command("raise", "b1").ok)
        old.run(.milliseconds(600)) { old.poll("b1", Self.midway) }
        old.poll("b1", Self.top)
        old.step()
        #expect(old.core.snapshot(now: old.now).bollards["b1"]?.position == "up")
        #expect(old.command("hold_down", "b1", ["duration_s": .number(60)]).ok)
        old.run(.milliseconds(200)) { old.poll("b1", Self.midway) }
        old.poll("b1", Self.down)
        old.step()
        for b in ["b2", "b3", "k1"] { #expect(old.command("emergency_lower", b).ok) }
        #expect(old.command("set_level", "g", ["level": .number(70), "duration_s": .number(600)]).ok)
        #expect(old.command("set_level", "l1", ["level": .number(50), "duration_s": .number(600)]).ok)
        old.run(.seconds(10)) { Self.pollAll(old) }

        let carried = Self.halted(old)
        let b1 = try #require(carried.bollards["b1"])
        #expect(b1.commandedUp && !b1.emergencyLatched)
        #expect(b1.holdRemaining.map { $0 > .seconds(49) && $0 < .seconds(51) } == true, "\(String(describing: b1.holdRemaining))")
        #expect(carried.bollards["b2"]?.emergencyLatched == true)
        #expect(carried.groups["g"]?.override?.level == 70)
        #expect(carried.lamps["l1"]?.level == 50)

        // The new config: b3 removed; k1 is now a luminaire of the group.
        let devices = Self.devices.replacingOccurrences(of: "  b3: {profile: ref-bollard, bus: field, unit: 32}\n", with: "")
            .replacingOccurrences(of: "k1: {profile: ref-bollard, bus: field, unit: 33}", with: "k1: {profile: ref-luminaire, bus: field, unit: 33}")
        let extra = Self.extra.replacingOccurrences(of: "  b3: {pre_warning: 300ms, travel_timeout: 5s}\n  k1: {pre_warning: 300ms, travel_timeout: 5s}\n", with: "")
            .replacingOccurrences(of: "lamps: [l1, l2]", with: "lamps: [l1, l2, k1]")
        let new = try CoreRig(devices: devices, extra: extra, restoring: carried, start: old.now + .seconds(1))
        Self.pollAll(new, bollards: ["b1", "b2"])
        new.poll("k1", [.level: 30, .setpoint: 30])
        new.step()
        let s = new.core.snapshot(now: new.now)
        #expect(s.bollards["b2"]?.emergencyLatched == true)
        #expect(s.bollards["b2"]?.position == "emergency_down")
        #expect(new.command("raise", "b2").code == .interlock, "a raise is refused until clear_emergency")
        #expect(s.bollards["b1"]?.holdS.map { $0 > 48 && $0 < 50 } == true, "the hold's remaining time, less the reload's 1 s: \(String(describing: s.bollards["b1"]?.holdS))")
        #expect(s.bollards["b1"]?.emergencyLatched == nil)
        #expect(s.lighting["g"]?.override == 70)
        #expect(Self.setpoints(new, "l1").last == 50, "the lamp's own override")
        #expect(Self.setpoints(new, "l2").last == 70, "the group's override")
        #expect(Self.setpoints(new, "k1").last == 70, "k1 is a lamp now: nothing of the bollard it was")
        #expect(new.core.snapshot(now: new.now).bollards.keys.sorted() == ["b1", "b2"])
        // The hold ends at its time; the commanded mode (up) was kept over the reload: auto-raise.
        new.run(.seconds(48)) { Self.pollAll(new, bollards: ["b1", "b2"]) }
        #expect(new.core.snapshot(now: new.now).bollards["b1"]?.position == "down")
        new.run(.seconds(4)) { Self.pollAll(new, bollards: ["b1", "b2"]) }
        #expect(new.core.snapshot(now: new.now).bollards["b1"]?.position == "raising", "hold over at +50 s, then auto_raise_after 2 s")
        #expect(new.command("clear_emergency", "b2").ok)
        #expect(new.command("raise", "b2").ok)
    }

    @Test func aBollardMidRiseAtAReloadIsLoweredToTheBottomSwitch() throws {
        let old = try CoreRig(devices: Self.devices, extra: Self.extra)
        Self.pollAll(old)
        old.step()
        #expect(old.command("raise", "b2").ok)
        old.run(.milliseconds(600)) { old.poll("b2", Self.midway) }
        #expect(old.core.snapshot(now: old.now).bollards["b2"]?.motorUp == true)
        let carried = Self.halted(old)
        #expect(carried.bollards["b2"]?.interrupted == true)

        let new = try CoreRig(devices: Self.devices, extra: Self.extra, restoring: carried, start: old.now + .milliseconds(300))
        Self.pollAll(new, ["b2": Self.midway])
        new.step()
        let w = try #require(new.writes(to: "b2").last)
        let v = ControlWiringTests.values(w)
        #expect(v["motor_down"] == 1 && v["motor_up"] == 0 && v["warning"] == 1, "\(v)")
        #expect(new.core.snapshot(now: new.now).bollards["b2"]?.position == "lowering")
        new.run(.milliseconds(500)) { Self.pollAll(new, ["b2": Self.midway]) }
        new.run(.seconds(5)) { Self.pollAll(new) }
        #expect(new.core.snapshot(now: new.now).bollards["b2"]?.position == "down")
        #expect(!new.writes(to: "b2").contains { ControlWiringTests.values($0)["motor_up"] == 1 }, "the raise is not resumed")
    }

    /// Fails on the code before: every start and reload boosted the lights for `hold`.
    @Test func neitherAStartNorAReloadBoostsTheLightsWithoutPresence() throws {
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra)
        // The lamps answer first, the presence sensor a poll later.
        rig.poll("l1", [.level: 30, .setpoint: 30])
        rig.poll("l2", [.level: 30, .setpoint: 30])
        rig.step()
        rig.run(.seconds(2)) { Self.pollAll(rig) }
        #expect(Self.setpoints(rig, "l1") == [30], "start: \(Self.setpoints(rig, "l1"))")
        let carried = Self.halted(rig)
        #expect(carried.groups.isEmpty)
        let new = try CoreRig(devices: Self.devices, extra: Self.extra, restoring: carried, start: rig.now + .milliseconds(300))
        new.run(.seconds(2)) { Self.pollAll(new) }
        #expect(Self.setpoints(new, "l1") == [30], "reload: \(Self.setpoints(new, "l1"))")
        // Presence still boosts, and a sensor reported offline too.
        new.poll("p1", [.presence: 1])
        new.step()
        #expect(Self.setpoints(new, "l1").last == 100)
    }

    @Test func changesAreWrittenBeforeTheCommandIsAnsweredAndReadBackAfterARestart() throws {
        let dir = ScratchDir("safety-wiring")
        let store = SafetyStateStore(directory: dir.path, logger: .init(label: "test"))
        defer { store.stop() }
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, restoring: store.load(), safetyStore: store)
        Self.pollAll(rig)
        rig.step()
        store.flush()
        let answered = Mutex<[String]>([])
        func post(_ action: String, _ target: String, _ args: [String: ControlValue] = [:]) {
            guard case .success(let a) = CommandAction.parse(action: action, args: args, target: target,
                                                             targetKind: CommandAction.TargetKind(of: target, in: rig.config), source: .local) else {
                Issue.record("\(action) does not parse")
                return
            }
            rig.inbox.post(.command(PendingCommand(AgentCommand(origin: .local(uid: 0), id: action, target: target, action: a, args: args), reply: { r in
                // What is on disk when the reply is sent.
                let file = (try? String(contentsOfFile: store.path, encoding: .utf8)) ?? ""
                answered.withLock { $0.append("\(action) \(target) \(r.ok) \(file.contains("\"\(target)\":{\"emergency\":true") || file.contains("\"\(target)\":{\"hold_until\""))") }
            })))
        }
        post("emergency_lower", "b2")
        post("hold_down", "b3", ["duration_s": .number(600)])
        post("lower", "k1")  // already down: nothing kept changes, answered at once
        rig.step()
        #expect(answered.withLock { $0 } == ["lower k1 true false"], "only the unchanged one is answered within the step")
        store.flush()
        #expect(answered.withLock { $0 } == ["lower k1 true false", "emergency_lower b2 true true", "hold_down b3 true true"])
        // Latched and cleared within one step: nothing left to write, both answered.
        post("emergency_lower", "k1")
        post("clear_emergency", "k1")
        rig.step()
        #expect(answered.withLock { $0.suffix(2).sorted() } == ["clear_emergency k1 true false", "emergency_lower k1 true false"])
        // A travel timeout (no command) is written too.
        #expect(rig.command("raise", "b1").ok)
        rig.run(.seconds(6)) { Self.pollAll(rig, ["b1": Self.midway]) }
        store.flush()
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.contains(#""b1":{"fault":"travel_timeout_raising"}"#), "\(text)")
        #expect(store.failure == nil)

        // A restart: a new store reads it back; b1 latched, b2 in emergency, b3 held, k1 mid-way is lowered.
        let again = SafetyStateStore(directory: dir.path, logger: .init(label: "test"))
        defer { again.stop() }
        let back = again.load(wall: Date(timeIntervalSince1970: 1_764_806_400 + 6))  // the rig's wall clock, 6 s on
        #expect(back.afterRestart && back.unreadable == nil)
        let restarted = try CoreRig(devices: Self.devices, extra: Self.extra, restoring: back, safetyStore: again, start: rig.now + .seconds(5))
        Self.pollAll(restarted, ["b1": Self.midway, "k1": Self.midway])
        restarted.step()
        let s = restarted.core.snapshot(now: restarted.now)
        #expect(s.bollards["b1"]?.fault == "travelTimeout(raising: true)" && s.bollards["b1"]?.motorDown == false)
        #expect(s.bollards["b2"]?.emergencyLatched == true)
        #expect(s.bollards["b3"]?.holdS.map { $0 > 580 && $0 <= 600 } == true, "\(String(describing: s.bollards["b3"]?.holdS))")
        #expect(s.bollards["k1"]?.position == "lowering", "found between its end positions after a restart: lowered")
        #expect(restarted.command("raise", "b2").code == .interlock)
        #expect(restarted.command("raise", "b1").code == .interlock)
        #expect(restarted.alarms.contains { $0 == ("b1", "travel_timeout", true) })
    }

    @Test func anUnreadableStateLatchesEveryBollardAndRaisesTheAlarmUntilAllAreCleared() throws {
        let dir = ScratchDir("safety-wiring")
        _ = dir.write(SafetyStateStore.fileName, "{\"format\":1,\"bollards\":{\"b2\":{\"emerg")
        let store = SafetyStateStore(directory: dir.path, logger: .init(label: "test"))
        defer { store.stop() }
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, restoring: store.load(), safetyStore: store)
        Self.pollAll(rig, ["b1": Self.top])
        rig.step()
        let s = rig.core.snapshot(now: rig.now)
        for b in ["b1", "b2", "b3", "k1"] { #expect(s.bollards[b]?.emergencyLatched == true, "\(b)") }
        #expect(s.bollards["b1"]?.motorDown == true, "found up: lowered")
        #expect(s.alarms.contains { $0.device == "gateway" && $0.code == "safety_state_lost" && $0.severity == "critical" })
        #expect(rig.command("raise", "b2").code == .interlock)
        store.flush()
        #expect(try SafetyStateStore.decode(String(contentsOfFile: store.path, encoding: .utf8), wall: Date()).bollards.count == 4, "the latches are kept at once")
        for b in ["b1", "b2", "b3"] { #expect(rig.command("clear_emergency", b).ok) }
        rig.run(.seconds(2)) { Self.pollAll(rig) }
        #expect(rig.core.snapshot(now: rig.now).alarms.contains { $0.code == "safety_state_lost" }, "k1 still latched")
        #expect(rig.command("clear_emergency", "k1").ok)
        rig.run(.seconds(2)) { Self.pollAll(rig) }
        #expect(!rig.core.snapshot(now: rig.now).alarms.contains { $0.code == "safety_state_lost" })
        #expect(rig.alarms.filter { $0.1 == "safety_state_lost" }.map(\.2) == [true, false])
    }

    @Test func aFailingWriteRaisesSafetyStateUnsaved() throws {
        let dir = ScratchDir("safety-wiring")
        // The state folder is a file: every write fails.
        let blocked = dir.write("blocked", "not a folder")
        let store = SafetyStateStore(directory: blocked, logger: .init(label: "test"))
        defer { store.stop() }
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, safetyStore: store)
        Self.pollAll(rig)
        rig.step()
        #expect(rig.command("emergency_lower", "b1").ok)
        rig.step()
        store.flush()
        #expect(store.failure != nil)
        rig.run(.seconds(2)) { Self.pollAll(rig) }
        #expect(rig.core.snapshot(now: rig.now).alarms.contains { $0.device == "gateway" && $0.code == "safety_state_unsaved" })
    }
}
