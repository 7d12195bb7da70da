import EdgeAgent
import EdgeRuntime
import Testing

@Suite struct LightingGroupTests {
    typealias Clock = ControlTest.Clock

    /// A group with two sensors, boost 100, hold 60 s, fade up 0.5 s, fade down 10 s, at
    /// schedule level 30 with both sensors reporting "nobody" and the start-up hold over.
    static func make(_ clock: inout Clock, boost: Int = 100, schedule: Int = 30) -> LightingGroup {
        let config = LightingGroupConfig(
            name: "rue-liberte", lamps: ["lamp-01"], presence: ["pir-01", "pir-02"], base: 30, boost: boost,
            hold: .seconds(60), fadeUp: .milliseconds(500), fadeDown: .seconds(10), night: nil, on: nil, off: nil)
        var g = LightingGroup(config: config)
        g.setSchedule(level: schedule, at: clock.now)
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.now)
        g.handle(.presence(sensor: "pir-02", detected: false), at: clock.now)
        clock.advance(.seconds(61))
        g.tick(at: clock.now)
        _ = g.drainEvents()
        return g
    }

    @Test func unreportedSensorsDoNotBoostAtStartAndDefaultIs100() {
        let clock = Clock()
        var g = LightingGroup(name: "g", sensors: ["pir-01"], boost: 100, hold: .seconds(60), fadeUp: .milliseconds(500), fadeDown: .seconds(10))
        #expect(g.outputs.level == 100, "no schedule yet: DALI default 100 %")
        g.setSchedule(level: 30, at: clock.now)
        #expect(g.outputs.level == 30, "a sensor not heard from yet does not boost")
        #expect(g.cause == .schedule)
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.now)
        #expect(g.outputs.level == 30, "its first report of nobody starts no hold")
        #expect(g.nextDeadline == nil)
    }

    @Test func presenceBoostsWithFadeUpAndEvents() {
        var clock = Clock()
        var g = Self.make(&clock)
        #expect(g.outputs.level == 30)
        #expect(g.nextDeadline == nil)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        #expect(g.outputs == .init(level: 100, fade: .milliseconds(500)))
        #expect(g.outputs.fadeTenths == 5)
        let events = g.drainEvents()
        #expect(ControlTest.types(events) == ["presence", "lighting.level"])
        #expect(events.last?.kind == .lightingLevel(level: 100, fade: .milliseconds(500), cause: .presence))
        #expect(events.last?.data["fade_ms"] == .double(500))
    }

    @Test func holdCountsFromTheEndOfDetectionThenFadesDown() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        // Detection lasts longer than the hold: still boosted, no deadline while detecting.
        clock.advance(.seconds(100))
        g.tick(at: clock.now)
        #expect(g.outputs.level == 100)
        #expect(g.nextDeadline == nil)
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.now)
        #expect(g.outputs.level == 100)
        let end = clock.now
        #expect(g.nextDeadline == end + .seconds(60))
        g.tick(at: end + .milliseconds(59_999))
        #expect(g.outputs.level == 100)
        g.tick(at: end + .seconds(60))
        #expect(g.outputs == .init(level: 30, fade: .seconds(10)))
        #expect(g.outputs.fadeTenths == 100)
        #expect(g.nextDeadline == nil)
    }

    @Test func holdRunsFromTheLastOfSeveralSensors() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        g.handle(.presence(sensor: "pir-02", detected: true), at: clock.plus(5))
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.plus(10))
        g.handle(.presence(sensor: "pir-02", detected: false), at: clock.plus(40))
        g.tick(at: clock.plus(99))
        #expect(g.outputs.level == 100, "hold counted from pir-02's end at +40 s")
        g.tick(at: clock.plus(100))
        #expect(g.outputs.level == 30)
        let presence = g.drainEvents().filter { $0.type == "presence" }.map(\.kind)
        #expect(presence == [.presence(detected: true), .presence(detected: false)])
    }

    @Test func sensorCanNeverLowerTheLight() {
        var clock = Clock()
        var g = Self.make(&clock, boost: 50, schedule: 80)
        #expect(g.outputs.level == 80)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        #expect(g.outputs.level == 80, "Max rule: boost 50 below schedule 80 changes nothing")
        #expect(g.drainEvents().filter { $0.type == "lighting.level" }.isEmpty)
    }

    @Test func offlineSensorBoostsWhileOfflineThenHolds() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.handle(.sensorOnline(sensor: "pir-02", online: false), at: clock.now)
        #expect(g.outputs.level == 100)
        #expect(g.cause == .sensorOffline)
        clock.advance(.seconds(600))
        g.tick(at: clock.now)
        #expect(g.outputs.level == 100, "boost for as long as it is offline")
        g.handle(.presence(sensor: "pir-02", detected: false), at: clock.now)
        #expect(g.outputs.level == 100)
        g.tick(at: clock.plus(60))
        #expect(g.outputs.level == 30)
    }

    @Test func fadeChoiceFollowsDirection() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.setSchedule(level: 20, at: clock.now)
        #expect(g.outputs == .init(level: 20, fade: .seconds(10)))
        g.setSchedule(level: 60, at: clock.now)
        #expect(g.outputs == .init(level: 60, fade: .milliseconds(500)))
        // Same level again: no change, no event.
        _ = g.drainEvents()
        g.setSchedule(level: 60, at: clock.now)
        g.tick(at: clock.plus(1))
        #expect(g.drainEvents().isEmpty)
    }

    @Test func daylightMeansOffWhateverThePresence() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.setSchedule(level: 0, at: clock.now)
        #expect(g.outputs.level == 0)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        g.handle(.sensorOnline(sensor: "pir-02", online: false), at: clock.now)
        g.neighbourBoost(at: clock.now)
        #expect(g.outputs.level == 0)
        #expect(g.cause == .daylight)
        // Dusk while someone is there: straight to boost.
        g.setSchedule(level: 30, at: clock.plus(1))
        #expect(g.outputs.level == 100)
    }

    @Test func overrideWinsUntilExpiryAndIsReplaced() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        #expect(g.setOverride(level: 10, until: clock.plus(600), at: clock.now) == .accepted)
        #expect(g.outputs.level == 10, "override wins over presence")
        #expect(g.cause == .override)
        #expect(g.nextDeadline == clock.plus(600))
        // A new override replaces the old one (and its expiry).
        #expect(g.setOverride(level: 80, until: clock.plus(120), at: clock.plus(60)) == .accepted)
        #expect(g.outputs.level == 80)
        #expect(g.nextDeadline == clock.plus(120))
        g.tick(at: clock.plus(119))
        #expect(g.outputs.level == 80)
        g.tick(at: clock.plus(120))
        #expect(g.outputs.level == 100, "expired: back to max(schedule, presence)")
        #expect(g.activeOverride == nil)
    }

    @Test func overrideLightsInDaylightAndReleaseEndsIt() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.setSchedule(level: 0, at: clock.now)
        #expect(g.setOverride(level: 100, until: nil, at: clock.now) == .accepted)
        #expect(g.outputs.level == 100)
        #expect(g.nextDeadline == nil)
        g.tick(at: clock.plus(86_400))
        #expect(g.outputs.level == 100)
        #expect(g.release(at: clock.plus(86_401)) == .accepted)
        #expect(g.outputs.level == 0)
    }

    @Test func overrideRefusals() {
        var clock = Clock()
        var g = Self.make(&clock)
        guard case .refused(let r) = g.setOverride(level: 101, until: nil, at: clock.now) else {
            Issue.record("level 101 accepted")
            return
        }
        #expect(r.code == .outOfRange)
        #expect(r.message.contains("101"))
        guard case .refused(let r2) = g.setOverride(level: 50, until: clock.now, at: clock.now) else {
            Issue.record("expired override accepted")
            return
        }
        #expect(r2.code == .outOfRange)
        #expect(g.outputs.level == 30, "nothing actuated")
    }

    /// Three groups in a row; the "runner" passes each group's presence events to its
    /// neighbours, so the wave lasts while someone is there and holds after they leave.
    @Test func neighbourWave() {
        var clock = Clock()
        var groups = [Self.make(&clock), Self.make(&clock), Self.make(&clock)]
        clock.advance(.seconds(1))
        for i in groups.indices { groups[i].tick(at: clock.now) }
        let neighbours = [[1], [0, 2], [1]]
        func run(_ i: Int, _ body: (inout LightingGroup) -> Void) {
            body(&groups[i])
            for e in groups[i].drainEvents() {
                guard case .presence(let detected) = e.kind else { continue }
                for n in neighbours[i] { groups[n].neighbourPresence(from: e.source + "\(i)", detected: detected, at: e.at) }
            }
        }
        run(0) { $0.handle(.presence(sensor: "pir-01", detected: true), at: clock.now) }
        #expect(groups.map(\.outputs.level) == [100, 100, 30], "the wave lights the neighbour, not beyond")
        #expect(groups[1].cause == .neighbour)
        #expect(groups[1].nextDeadline == nil)
        // Detection at group 0 lasts 5 minutes: the neighbour stays lit all along.
        clock.advance(.seconds(300))
        for i in groups.indices { groups[i].tick(at: clock.now) }
        #expect(groups[1].outputs.level == 100)
        run(0) { $0.handle(.presence(sensor: "pir-01", detected: false), at: clock.now) }
        #expect(groups.map(\.outputs.level) == [100, 100, 30])
        #expect(groups[1].nextDeadline == clock.plus(60))
        clock.advance(.seconds(60))
        for i in groups.indices { groups[i].tick(at: clock.now) }
        #expect(groups.map(\.outputs.level) == [30, 30, 30])
    }

    @Test func oneShotNeighbourBoostHolds() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.neighbourBoost(at: clock.now)
        #expect(g.outputs.level == 100)
        #expect(g.nextDeadline == clock.plus(60))
        g.tick(at: clock.plus(60))
        #expect(g.outputs.level == 30)
    }

    @Test func unknownSensorAndStaleInstantsAreHarmless() {
        var clock = Clock()
        var g = Self.make(&clock)
        g.handle(.presence(sensor: "nope", detected: true), at: clock.now)
        #expect(g.outputs.level == 30)
        g.handle(.presence(sensor: "pir-01", detected: true), at: clock.now)
        // An older instant (late edge timestamp) is treated as the latest seen.
        g.handle(.presence(sensor: "pir-01", detected: false), at: clock.plus(-30))
        #expect(g.nextDeadline == clock.plus(60))
    }

    @Test func idleTicksMakeNoEvents() {
        var clock = Clock()
        var g = Self.make(&clock)
        var buffer: [ControlEvent] = []
        buffer.reserveCapacity(16)
        for i in 0..<10_000 {
            g.tick(at: clock.plus(Double(i) * 0.01))
            g.drainEvents(into: &buffer)
        }
        #expect(buffer.isEmpty)
        #expect(g.outputs.level == 30)
    }
}
