@testable import EdgeAgent
import Drivers
import Foundation
import Testing

/// The proof that the tickless loop misses nothing: two control cores on one virtual clock get
/// the same random field (polls, edges, commands, a crude physics of bollards and junction
/// driven by what was written). The reference steps every 10 ms (and at any deadline it
/// reports between two grid points: the sensor-age limits are "older than", 1 ns past a grid
/// point); the tickless one steps only at inputs that wake the agent's loop (edges, commands,
/// polls `ReadingWakeFilter` lets through: a repeated poll of a bollard at rest waits in the
/// inbox) and at `nextDeadline`, at most `ControlCore.maxSleep` apart, as `LoopThread` runs it. Every write and every event, with the
/// instant of the step that made it, must be the same. A machine that reports its deadline
/// late or not at all makes the tickless core act later than the reference: the traces differ.
///
/// Inputs and durations are on the 10 ms grid, so the reference meets every deadline exactly.
/// Both cores take a write's completion at once (in the agent it wakes the loop), so a second
/// write to a device held back by the first one goes out in both at the same instant.
@Suite struct TicklessEquivalenceTests {
    static let board = """
    name: tickless
    gpio:
      backend: simulated
      lines:
        b-up:     {chip: c, offset: 0, direction: output}
        b-down:   {chip: c, offset: 1, direction: output}
        b-warn:   {chip: c, offset: 2, direction: output}
        b-top:    {chip: c, offset: 3, direction: input}
        b-bottom: {chip: c, offset: 4, direction: input}
        b-loop:   {chip: c, offset: 5, direction: input}
        b-photo:  {chip: c, offset: 6, direction: input}
        b-key:    {chip: c, offset: 7, direction: input}
        pir-g:    {chip: c, offset: 8, direction: input}
        in-n:     {chip: c, offset: 9, direction: input}
        out-n:    {chip: c, offset: 10, direction: input}
    """
    static let devices = """
      l1: {profile: ref-luminaire, bus: field, unit: 1}
      l2: {profile: ref-luminaire, bus: field, unit: 2}
      l3: {profile: ref-luminaire, bus: field, unit: 3}
      p1: {profile: ref-presence, bus: field, unit: 20}
      pg: {gpio: pir-g}
      b1: {profile: ref-bollard, bus: field, unit: 30}
      b2: {kind: bollard, gpio: {motor_up: b-up, motor_down: b-down, warning: b-warn, at_top: b-top, at_bottom: b-bottom, loop: b-loop, photocell: b-photo, emergency: b-key}}
      j: {profile: ref-signal-io, bus: field, unit: 40}
      bin: {gpio: in-n}
      bout: {gpio: out-n}
    """

    /// Durations drawn per seed, multiples of 10 ms.
    static func extra(_ rng: inout ControlTest.SplitMix64) -> String {
        func ms(_ r: ClosedRange<Int>) -> String { "\(rng.int(r) * 10)ms" }
        return """
        lighting:
          g1: {lamps: [l1, l2], presence: [p1], base: 30, boost: 100, hold: \(ms(10...300)), fade_up: 300ms, fade_down: 500ms, rated_w: 60, warm_up: \(ms(20...300)), neighbours: [g2]}
          g2: {lamps: [l3], presence: [pg], base: 20, boost: 80, hold: \(ms(10...300)), rated_w: 40, warm_up: \(ms(20...300))}
        bollards:
          b1: {pre_warning: \(ms(5...100)), travel_timeout: \(ms(30...120)), auto_raise_after: \(ms(2...100))}
          b2: {pre_warning: \(ms(5...100)), travel_timeout: \(ms(30...120)), auto_raise_after: \(ms(2...100))}
        priority:
          north: {device: j, approach: 1, checkin: bin, checkout: bout, max_hold: \(ms(50...600)), min_interval: \(ms(0...300))}
          south: {device: j, approach: 2, max_hold: \(ms(50...600)), min_interval: \(ms(0...300))}
        """
    }

    /// One input, applied alike to both cores.
    enum Input {
        case poll(String, [PointRole: Double], online: Bool)
        case edge(String, Bool, initial: Bool)
        case command(String, String, [String: ControlValue])
    }

    /// A crude field: bollards move while a motor coil is on, the junction acknowledges what is
    /// requested, sensors detect in episodes, polls come at irregular gaps (some long enough for
    /// the sensor-age rules), now and then a device is offline; commands at random.
    struct World {
        var rng: ControlTest.SplitMix64
        var t = 0  // grid index
        struct Bollard {
            var pos = 0  // 0 bottom ... 100 top
            var up = false, down = false, stuck = false
            var loop = false, photo = false, key = false, fault = false
            var nextPoll = 0
        }
        var b1 = Bollard()
        var b2 = Bollard()
        var b2Lines: [String: Bool] = [:]
        var request = [false, false]
        var ack = [false, false]
        var ackAt = [Int?](repeating: nil, count: 2)
        var degraded = false
        var nextJ = 0
        var presence = false
        var nextP1 = 0
        var pg = false
        var setpoint = ["l1": 100.0, "l2": 100.0, "l3": 100.0]
        var nextLamp = ["l1": 0, "l2": 70, "l3": 140]

        init(seed: UInt64) { rng = ControlTest.SplitMix64(seed: seed) }

        /// A poll gap in grid steps: usually a role's period, sometimes long (stale inputs).
        mutating func gap(_ usual: Int) -> Int { rng.chance(0.1) ? rng.int(15...70) : usual + rng.int(0...usual) }

        /// What the cores wrote since the last call (from the reference), applied to the world.
        mutating func apply(_ writes: [CoreRig.Write]) {
            for w in writes {
                for p in w.points {
                    let on = p.value != 0
                    switch (w.device, p.point) {
                    case ("b1", "motor_up"): b1.up = on
                    case ("b1", "motor_down"): b1.down = on
                    case ("b2", "motor_up"): b2.up = on
                    case ("b2", "motor_down"): b2.down = on
                    case ("j", "request_1"): request[0] = on
                    case ("j", "request_2"): request[1] = on
                    case (let d, "setpoint"): setpoint[d] = p.value
                    default: break
                    }
                }
            }
        }

        static func move(_ b: inout Bollard, _ rng: inout ControlTest.SplitMix64) {
            if rng.chance(b.stuck ? 0.02 : 0.001) { b.stuck.toggle() }
            if b.stuck { return }
            if b.up && !b.down { b.pos = min(100, b.pos + 2) }
            if b.down && !b.up { b.pos = max(0, b.pos - 2) }
        }

        static func episodes(_ b: inout Bollard, _ rng: inout ControlTest.SplitMix64) {
            if rng.chance(b.loop ? 0.02 : 0.002) { b.loop.toggle() }
            if rng.chance(b.photo ? 0.05 : 0.001) { b.photo.toggle() }
            if rng.chance(b.key ? 0.01 : 0.0001) { b.key.toggle() }
            if rng.chance(b.fault ? 0.01 : 0.0001) { b.fault.toggle() }
        }

        static func values(_ b: Bollard) -> [PointRole: Double] {
            [.atTop: b.pos >= 100 ? 1 : 0, .atBottom: b.pos <= 0 ? 1 : 0, .loop: b.loop ? 1 : 0, .photocell: b.photo ? 1 : 0,
             .motorFault: b.fault ? 1 : 0, .emergency: b.key ? 1 : 0]
        }

        /// The inputs at grid step `t` (then `t` advances).
        mutating func inputs() -> [Input] {
            defer { t += 1 }
            var out: [Input] = []
            Self.move(&b1, &rng)
            Self.move(&b2, &rng)
            Self.episodes(&b1, &rng)
            Self.episodes(&b2, &rng)
            // b1 on Modbus: polled.
            if t >= b1.nextPoll {
                out.append(.poll("b1", Self.values(b1), online: !rng.chance(0.004)))
                b1.nextPoll = t + gap(5)
            }
            // b2 wired: an edge per changed line (all of them, initial, at the start).
            let v2 = Self.values(b2)
            let lines: [(String, PointRole)] = [("b-top", .atTop), ("b-bottom", .atBottom), ("b-loop", .loop), ("b-photo", .photocell), ("b-key", .emergency)]
            for (line, role) in lines {
                let value = v2[role] == 1
                if b2Lines[line] != value {
                    out.append(.edge(line, value, initial: t == 0))
                    b2Lines[line] = value
                }
            }
            // The junction acknowledges a request 50-300 ms after it, drops the ack with it.
            for a in 0..<2 {
                if request[a] && !ack[a] && !degraded {
                    if ackAt[a] == nil { ackAt[a] = t + rng.int(5...30) }
                    if let at = ackAt[a], t >= at { ack[a] = true; ackAt[a] = nil }
                }
                if !request[a] { ack[a] = false; ackAt[a] = nil }
            }
            if rng.chance(degraded ? 0.01 : 0.0005) { degraded.toggle() }
            if t >= nextJ {
                out.append(.poll("j", [.ack(1): ack[0] ? 1 : 0, .ack(2): ack[1] ? 1 : 0, .degraded: degraded ? 1 : 0], online: !rng.chance(0.004)))
                nextJ = t + gap(5)
            }
            if rng.chance(0.004) { out.append(.edge("in-n", true, initial: false)) }
            if rng.chance(0.003) { out.append(.edge("out-n", true, initial: false)) }
            // Presence: episodes, polled (p1) or edged (pg).
            if rng.chance(0.004) { presence.toggle() }
            if t >= nextP1 {
                out.append(.poll("p1", [.presence: presence ? 1 : 0, .lux: 10], online: !rng.chance(0.004)))
                nextP1 = t + gap(10)
            }
            if t == 0 || rng.chance(0.003) {
                if t > 0 { pg.toggle() }
                out.append(.edge("pir-g", pg, initial: t == 0))
            }
            // Luminaires every 2 s: the level written (now and then another one: a reboot), the
            // power it should draw (now and then none: a failed lamp).
            for lamp in ["l1", "l2", "l3"] where t >= nextLamp[lamp]! {
                let rated = lamp == "l3" ? 40.0 : 60.0
                var level = setpoint[lamp]!
                if rng.chance(0.05) { level = Double(rng.int(0...100)) }
                let power = rng.chance(0.1) ? 0 : rated * level / 100
                out.append(.poll(lamp, [.level: level, .setpoint: level, .powerW: power, .lampFailure: 0, .driverFault: rng.chance(0.02) ? 1 : 0,
                                        .overTemperature: 0, .energyWh: Double(t)], online: !rng.chance(0.004)))
                nextLamp[lamp] = t + 200
            }
            // Commands.
            if rng.chance(0.0003) { out.append(.command("emergency_lower", rng.chance(0.5) ? "b1" : "b2", [:])) }
            if rng.chance(0.006) {
                let seconds = ControlValue.number(Double(rng.int(1...150)) / 100)
                let vehicle = ControlValue.string("v\(rng.int(1...4))")
                let commands: [(String, String, [String: ControlValue])] = [
                    ("set_level", "g1", ["level": .number(Double(rng.int(0...100))), "duration_s": seconds]),
                    ("set_level", "l3", ["level": .number(Double(rng.int(0...100))), "duration_s": seconds]),
                    ("release", "g1", [:]), ("release", "l3", [:]),
                    ("raise", "b1", [:]), ("raise", "b2", [:]), ("raise", "b1", [:]), ("raise", "b2", [:]),
                    ("lower", "b1", [:]), ("lower", "b2", [:]),
                    ("hold_down", "b1", ["duration_s": seconds]), ("hold_down", "b2", ["duration_s": seconds]),
                    ("clear_emergency", "b1", [:]), ("clear_emergency", "b2", [:]),
                    ("priority_request", "north", ["vehicle": vehicle]), ("priority_request", "south", ["vehicle": vehicle]),
                    ("priority_cancel", "north", ["vehicle": vehicle]), ("priority_cancel", "south", ["vehicle": vehicle]),
                ]
                let (action, target, args) = commands[rng.int(0...(commands.count - 1))]
                out.append(.command(action, target, args))
            }
            return out
        }
    }

    /// A core driven by the test, with the trace of what it did: writes and events, each with
    /// the instant of the step that made it.
    final class Driven {
        let rig: CoreRig
        var trace: [String] = []
        var steps = 0
        var last: MonotonicInstant?
        private var seenWrites = 0
        private var seenEvents = 0

        init(extra: String) throws {
            rig = try CoreRig(devices: TicklessEquivalenceTests.devices, extra: extra, board: TicklessEquivalenceTests.board)
        }

        /// Posts the inputs; returns whether one of them wakes the agent's loop: an edge, a
        /// command, a poll `ReadingWakeFilter` lets through. A luminaire's poll counts as
        /// waking here (in the agent it waits up to `maxSleep`, a documented delay of its
        /// telemetry and lamp alarms, which this proof is not about).
        @discardableResult
        func post(_ inputs: [Input], at t: MonotonicInstant) -> Bool {
            rig.clock.withLock { $0 = t }
            var wakes = false
            for input in inputs {
                switch input {
                case .poll(let d, let values, let online):
                    var v = PointValues()
                    for (r, x) in values { v[r] = x }
                    let reading = DeviceReading(device: rig.id(d), online: online, values: online ? v : PointValues(), timestampNanos: t.nanoseconds,
                                                error: online ? nil : "timeout")
                    rig.inbox.post(.reading(reading))
                    if rig.core.wakeFilter.wakes(reading) || d.hasPrefix("l") { wakes = true }
                case .edge(let line, let value, let initial):
                    rig.edge(line, value, initial: initial)
                    wakes = true
                case .command(let action, let target, let args):
                    let kind = CommandAction.TargetKind(of: target, in: rig.config)
                    guard case .success(let a) = CommandAction.parse(action: action, args: args, target: target, targetKind: kind, source: .local) else { continue }
                    rig.inbox.post(.command(PendingCommand(AgentCommand(origin: .local(uid: 0), id: "t", target: target, action: a, args: args))))
                    wakes = true
                }
            }
            return wakes
        }

        /// One step at `t`, and a second one at once when a write completed during it (a
        /// completion wakes the loop; `RecordingField` completes inside the step); returns the
        /// writes they made.
        @discardableResult
        func step(at t: MonotonicInstant) -> [CoreRig.Write] {
            rig.clock.withLock { $0 = t }
            rig.core.step(now: t)
            if !rig.inbox.isEmpty { rig.core.step(now: t) }
            steps += 1
            last = t
            let writes = rig.writes
            let events = rig.log.events.withLock { $0 }
            let newWrites = Array(writes[seenWrites...])
            for w in newWrites { trace.append("\(t.nanoseconds) write \(w.device) \(w.points.map { "\($0.point)=\($0.value)" }) \(w.priority)") }
            for e in events[seenEvents...] { trace.append("\(t.nanoseconds) \(Self.describe(e))") }
            seenWrites = writes.count
            seenEvents = events.count
            return newWrites
        }

        static func describe(_ e: AgentEvent) -> String {
            switch e {
            case .control(let c): return "event \(c)"
            case .device(let d, let online, let error): return "device \(d) \(online) \(error ?? "")"
            case .telemetry(let d, let values): return "telemetry \(d) \(values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })"
            }
        }
    }

    /// Runs one seed; returns the two traces and the tickless core's step count.
    static func run(seed: UInt64, gridSteps: Int) throws -> (reference: Driven, tickless: Driven) {
        var config = ControlTest.SplitMix64(seed: seed ^ 0x5EED)
        let extra = Self.extra(&config)
        let reference = try Driven(extra: extra)
        let tickless = try Driven(extra: extra)
        var world = World(seed: seed)
        let start = reference.rig.now
        let grid = Duration.milliseconds(10)

        /// Steps `core` at every deadline it reports before `t` (the reference: only those off
        /// the grid; the tickless one: all, and at most maxSleep after its last step).
        func catchUp(_ d: Driven, before t: MonotonicInstant, tickless isTickless: Bool) {
            while let last = d.last {
                var due = d.rig.core.nextDeadline
                if isTickless { due = min(due ?? last + ControlCore.maxSleep, last + ControlCore.maxSleep) }
                guard let next = due, next < t else { return }
                #expect(next > last, "seed \(seed): a deadline \(next - last) after the step that reported it")
                guard next > last else { return }
                if !isTickless, (next.nanoseconds - start.nanoseconds) % grid.nanosecondsClamped == 0 { return }
                d.step(at: next)
            }
        }

        for k in 0..<gridSteps {
            let t = start + grid * k
            catchUp(reference, before: t, tickless: false)
            catchUp(tickless, before: t, tickless: true)
            let inputs = world.inputs()
            reference.post(inputs, at: t)
            let wakes = tickless.post(inputs, at: t)
            world.apply(reference.step(at: t))
            let due = tickless.last.flatMap { _ in tickless.rig.core.nextDeadline }
            if wakes || tickless.last == nil || due == t || (tickless.last.map { $0 + ControlCore.maxSleep == t } ?? false) {
                tickless.step(at: t)
            }
        }
        return (reference, tickless)
    }

    @Test(arguments: 0..<24)
    func steppingAtDeadlinesAndInputsEqualsSteppingEvery10ms(seed: Int) throws {
        let (reference, tickless) = try Self.run(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1, gridSteps: 3000)
        // Telemetry goes out when a poll is looked at, and a repeated poll waits in the inbox for
        // the next step (at most maxSleep): its timing is not the reference's, by design.
        let a = reference.trace.filter { !$0.contains(" telemetry ") }, b = tickless.trace.filter { !$0.contains(" telemetry ") }
        func devices(_ t: [String]) -> Set<Substring> { Set(t.filter { $0.contains(" telemetry ") }.map { $0.split(separator: " ")[2] }) }
        #expect(devices(reference.trace) == devices(tickless.trace), "seed \(seed): every device's telemetry goes out")
        if let i = (0..<min(a.count, b.count)).first(where: { a[$0] != b[$0] }) ?? (a.count == b.count ? nil : min(a.count, b.count)) {
            Issue.record("""
            seed \(seed): the tickless core differs from the 10 ms reference at entry \(i) of \(a.count)/\(b.count)
            reference: \(i < a.count ? a[i] : "-")
            tickless:  \(i < b.count ? b[i] : "-")
            before:    \(a[max(0, i - 3)..<i].joined(separator: "\n           "))
            """)
        }
        #expect(tickless.steps * 3 < reference.steps, "the tickless core stepped \(tickless.steps) times, the reference \(reference.steps)")
    }

    /// Traces of the rules time drives: hold ends, the light wave, overrides, pre-warning,
    /// travel timeout, sensor age, auto-raise, priority max-hold and rate limit, lamp warm-up.
    static let timedRules = ["Cause.presence", "Cause.neighbour", "Cause.override", "motor_up=1.0", "travel_timeout", "sensor_stale",
                             "Cause.autoRaise", "priorityTimeout", "delayed: true", "power_low"]

    /// The random field reaches the time-driven rules the proof is about (over all seeds).
    @Test func theRandomFieldReachesEveryTimedRule() throws {
        var seen = Set<String>()
        for seed in 0..<6 {
            let (reference, _) = try Self.run(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ 1, gridSteps: 3000)
            for line in reference.trace {
                for needle in Self.timedRules where line.contains(needle) { seen.insert(needle) }
            }
        }
        for needle in Self.timedRules { #expect(seen.contains(needle), "no \(needle) in six seeds: \(seen.sorted())") }
    }

    /// A bollard whose I/O went silent gets motor-off again every 500 ms until a write is
    /// confirmed: each retry is a deadline the loop sleeps until (writes to a silent device
    /// fail, so the random field above never needs one).
    @Test func theMotorCutRetryIsADeadline() throws {
        var rng = ControlTest.SplitMix64(seed: 7)
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra(&rng), board: Self.board)
        rig.poll("b1", ControlWiringTests.bollardDown)
        rig.step()
        rig.field.failing.withLock { _ = $0.insert("b1") }
        let lost = rig.now
        rig.poll("b1", [:], online: false)
        rig.step(Duration.zero)
        rig.clearWrites()
        var cuts: [MonotonicInstant] = []
        for _ in 0..<6 {
            let due = try #require(rig.core.nextDeadline)
            #expect(due > rig.now)
            rig.clock.withLock { $0 = due }
            let before = rig.writes(to: "b1").count
            rig.core.step(now: due)
            if rig.writes(to: "b1").count > before { cuts.append(due) }
        }
        #expect(cuts.count >= 3 && zip(cuts, cuts.dropFirst()).allSatisfy { $1 - $0 == .milliseconds(500) }, "motor-off retried at \(cuts.map { $0 - lost })")
        rig.field.failing.withLock { $0.removeAll() }
        let confirmedAt = try #require(rig.core.nextDeadline)
        rig.clock.withLock { $0 = confirmedAt }
        rig.core.step(now: confirmedAt)
        let writes = rig.writes(to: "b1").count
        while let due = rig.core.nextDeadline, due < confirmedAt + .seconds(3) {
            rig.clock.withLock { $0 = due }
            rig.core.step(now: due)
        }
        #expect(rig.writes(to: "b1").count == writes, "no retry once a cut is confirmed")
    }
}
