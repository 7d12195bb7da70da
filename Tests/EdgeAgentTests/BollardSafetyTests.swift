import EdgeRuntime
import EdgeAgent
import Testing

/// Safety properties of `BollardController` over thousands of random input sequences, with
/// a crude physical bollard (it moves while a motor is on, unless "stuck") so that end
/// switches, reversals and timeouts really happen. The runner's contract is played: `tick`
/// at `nextDeadline` whenever it comes before the next input, and a poll of the whole world
/// at a period of the sequence's (besides the random ones), with bus stalls (no poll for up
/// to 2 s) injected, as a dead unit or a queue of writes would cause.
@Suite struct BollardSafetyTests {
    typealias S = BollardController.Sensors

    struct Coverage {
        var motorUpSteps = 0, reversals = 0, timeouts = 0, emergencies = 0, reachedTop = 0, autoRaises = 0, staleCuts = 0
        var reloads = 0, reloadsWhileMoving = 0, latchesCarried = 0, holdsCarried = 0
    }

    @Test func safetyInvariantsHoldOverRandomSequences() {
        var coverage = Coverage()
        var failures = 0
        for k in 0..<2_000 {
            let seed: UInt64 = 0xB011_A4D0_0000 + UInt64(k)
            if let failure = Self.run(seed: seed, steps: 600, coverage: &coverage) {
                Issue.record("bollard seed \(seed): \(failure)")
                failures += 1
                if failures >= 3 { break }
            }
        }
        // The random walk must really exercise the dangerous states.
        #expect(coverage.motorUpSteps > 1_000, "\(coverage)")
        #expect(coverage.reversals > 100, "\(coverage)")
        #expect(coverage.timeouts > 50, "\(coverage)")
        #expect(coverage.emergencies > 200, "\(coverage)")
        #expect(coverage.reachedTop > 100, "\(coverage)")
        #expect(coverage.autoRaises > 10, "\(coverage)")
        #expect(coverage.staleCuts > 40, "\(coverage)")
    }

    /// Runs one sequence; returns a description of the first violated property. `reloads`:
    /// the controller is also replaced at random moments by one built from its carry-over (a
    /// reload) or from its durable part (a restart), which must keep every latch and hold.
    static func run(seed: UInt64, steps: Int, coverage: inout Coverage, reloads: Bool = false) -> String? {
        var rng = ControlTest.SplitMix64(seed: seed)
        let preWarning = Duration.milliseconds(rng.int(500...4_000))
        let travel = Duration.milliseconds(rng.int(3_000...10_000))
        let autoRaise: Duration? = rng.chance(0.7) ? .milliseconds(rng.int(500...15_000)) : nil
        let maxAge = Duration.milliseconds(rng.int(100...500))
        let config = BollardConfig(name: "b", preWarning: preWarning, travelTimeout: travel, autoRaiseAfter: autoRaise, maxReversals: rng.int(1...4),
                                   maxSensorAge: maxAge)
        var b = BollardController(config: config)
        /// After a restart or an interrupted raise: no motion up before a new `raise`.
        var noRiseUntilRaise = false
        var clock = ControlTest.Clock()
        let pollPeriod = Duration.milliseconds(rng.int(20...Int((maxAge / 2).components.attoseconds / 1_000_000_000_000_000)))
        var lastInputs: MonotonicInstant?
        var nextPoll = clock.now + pollPeriod
        var lastPoll: MonotonicInstant?
        var motorWasUp = false

        // The physical world.
        var pos = 0.0  // 0 = down, 1 = up
        var stuck = false
        var loop = false, photo = false, emerg = false, mfault = false, io = true
        // What the controller has been told.
        var told = S()
        var toldIO = false
        var emergencyActive = false
        var warnSince: MonotonicInstant?, upSince: MonotonicInstant?, downSince: MonotonicInstant?

        func world() -> S { S(atTop: pos >= 1, atBottom: pos <= 0, loopOccupied: loop, photocellInterrupted: photo, motorFault: mfault, emergencyInput: emerg) }
        func send(_ input: BollardController.Input, _ now: MonotonicInstant) {
            switch input {
            case .sensors(let s): told = s; toldIO = true; lastPoll = now
            case .atTop(let v): told.atTop = v
            case .atBottom(let v): told.atBottom = v
            case .loopOccupied(let v): told.loopOccupied = v
            case .photocellInterrupted(let v): told.photocellInterrupted = v
            case .emergencyInput(let v): told.emergencyInput = v
            case .motorFault(let v): told.motorFault = v
            case .ioOnline(let v): toldIO = v
            }
            if told.emergencyInput { emergencyActive = true }
            if case .sensors = input {} else if case .ioOnline = input {} else { lastInputs = max(lastInputs ?? now, now) }
            b.handle(input, at: now)
        }
        func inputsAt() -> MonotonicInstant? {
            switch (lastPoll, lastInputs) {
            case (let p?, let e?): return max(p, e)
            case (let p, let e): return p ?? e
            }
        }

        send(.sensors(world()), clock.now)
        for step in 0..<steps {
            // Time passes: a random gap, or the machine's deadline if it comes first.
            var next = clock.now + .milliseconds(rng.int(1...2_500))
            var deadline = false
            var poll = false
            if let d = b.nextDeadline, d <= next {
                next = max(d, clock.now)
                deadline = true
            }
            if nextPoll < next {
                next = nextPoll
                deadline = false
                poll = true
            }
            let dt = (next - clock.now).seconds
            if !stuck && io {
                if b.outputs.motorUp { pos = min(1, pos + dt / 4) }
                if b.outputs.motorDown { pos = max(0, pos - dt / 2.5) }
            }
            clock.set(next)
            let now = clock.now

            if poll {
                nextPoll = now + pollPeriod
                if io { send(.sensors(world()), now) } else { b.tick(at: now) }
            } else if deadline {
                b.tick(at: now)
            } else {
                // The poll reports the world most of the time.
                if io && rng.chance(0.6) { send(.sensors(world()), now) }
                switch rng.int(0...99) {
                case 0..<12: loop.toggle(); if io || rng.chance(0.5) { send(.loopOccupied(loop), now) }
                case 12..<17: photo.toggle(); if io { send(.photocellInterrupted(photo), now) }
                case 17..<20: emerg.toggle(); send(.emergencyInput(emerg), now)  // a GPIO key: also while the bus is down
                case 20..<22: mfault.toggle(); if io { send(.motorFault(mfault), now) }
                case 22..<25:
                    io.toggle()
                    if io { send(.sensors(world()), now) } else { send(.ioOnline(false), now) }
                case 25..<27: stuck.toggle()
                case 27..<42: if b.raise(at: now).isAccepted { noRiseUntilRaise = false }
                case 42..<48: _ = b.lower(at: now)
                case 48..<51: _ = b.holdDown(.milliseconds(rng.int(1...30_000)), at: now)
                case 51..<53: if b.emergencyLower(at: now).isAccepted { emergencyActive = true }
                case 58..<64:
                    // A bus stall: no poll for up to 2 s (a dead unit, a queue of writes).
                    nextPoll = now + .milliseconds(rng.int(100...2_000))
                case 53..<58:
                    if b.clearEmergency(at: now).isAccepted {
                        if told.emergencyInput { return "step \(step): clearEmergency accepted with the key input active" }
                        emergencyActive = false
                    }
                default: b.tick(at: now)
                }
            }

            if reloads, rng.chance(0.01) {
                let before = b
                let restart = rng.chance(0.4)
                var c = b.carryOver(at: now)
                if restart {
                    c = c.durable ?? .init()
                    c.interrupted = true
                }
                b = BollardController(config: config, restoring: c, at: now)
                coverage.reloads += 1
                if before.outputs.motorUp || before.outputs.motorDown { coverage.reloadsWhileMoving += 1 }
                if before.emergencyLatched || before.latchedFault != nil { coverage.latchesCarried += 1 }
                let hold = before.holdUntil.flatMap { $0 > now ? $0 : nil }
                if hold != nil { coverage.holdsCarried += 1 }
                let at = "step \(step) t=\(now) \(restart ? "restart" : "reload")"
                if b.emergencyLatched != before.emergencyLatched { return "\(at): emergency latch \(before.emergencyLatched) not carried" }
                if b.latchedFault != before.latchedFault { return "\(at): latched fault \(String(describing: before.latchedFault)) not carried" }
                if b.holdUntil != hold { return "\(at): hold until \(String(describing: hold)) carried as \(String(describing: b.holdUntil))" }
                if !restart, b.carryOver(at: now) != c { return "\(at): carry-over \(c) exported again as \(b.carryOver(at: now))" }
                if restart || before.position == .raising { noRiseUntilRaise = true }
                // The new controller has been told nothing yet.
                told = S()
                toldIO = false
                lastPoll = nil
                lastInputs = nil
                motorWasUp = false
            }

            // Properties.
            let o = b.outputs
            let at = "step \(step) t=\(now)"
            if let d = b.nextDeadline, d <= now { return "\(at): nextDeadline \(d) not in the future (the runner would spin)" }
            if o.motorUp && o.motorDown { return "\(at): both motors on" }
            if o.warningLights { warnSince = warnSince ?? now } else { warnSince = nil }
            if o.motorUp {
                coverage.motorUpSteps += 1
                if noRiseUntilRaise { return "\(at): motorUp after a restart or an interrupted raise without a new raise" }
                if told.loopOccupied { return "\(at): motorUp with the loop occupied" }
                if told.photocellInterrupted { return "\(at): motorUp with the photocell interrupted" }
                if told.emergencyInput || emergencyActive { return "\(at): motorUp during an emergency" }
                if !toldIO { return "\(at): motorUp with the I/O offline" }
                if told.motorFault { return "\(at): motorUp with a motor fault" }
                guard let w = warnSince, now - w >= preWarning else { return "\(at): motorUp before \(preWarning) of warning" }
                if !motorWasUp, !(lastPoll.map { $0 >= w + preWarning } ?? false) {
                    return "\(at): motion started without a poll begun after the pre-warning (last poll \(String(describing: lastPoll)))"
                }
                if !motorWasUp, !(lastPoll.map { now - $0 <= maxAge } ?? false) {
                    return "\(at): motion started on a poll older than \(maxAge) (last poll \(String(describing: lastPoll)))"
                }
            }
            if o.motorUp || o.motorDown {
                guard let t = inputsAt(), now - t <= maxAge else {
                    return "\(at): motor on with inputs \(inputsAt().map { "\(now - $0)" } ?? "never") old (limit \(maxAge))"
                }
            }
            motorWasUp = o.motorUp
            if o.motorUp { upSince = upSince ?? now } else { upSince = nil }
            if o.motorDown { downSince = downSince ?? now } else { downSince = nil }
            if let u = upSince, now - u > travel { return "\(at): motor up on for \(now - u), past travel timeout \(travel)" }
            if let d = downSince, now - d > travel { return "\(at): motor down on for \(now - d), past travel timeout \(travel)" }
            if emergencyActive && !(b.position == .emergencyDown || b.position == .fault) {
                return "\(at): emergency active but position \(b.position)"
            }
            if !toldIO && o != BollardController.Outputs() { return "\(at): outputs \(o) with the I/O offline" }
            if told.motorFault && toldIO && o != BollardController.Outputs() { return "\(at): outputs \(o) with a motor fault" }
            if o.trafficGreen && !(told.atBottom && !told.atTop && !o.motorUp && !o.motorDown) { return "\(at): green while not confirmed down" }

            for e in b.drainEvents() {
                switch e.kind {
                case .bollardState(_, let to, let cause):
                    if cause == .reversal || cause == .reversalLimit { coverage.reversals += 1 }
                    if cause == .autoRaise { coverage.autoRaises += 1 }
                    if to == .up { coverage.reachedTop += 1 }
                    if to == .emergencyDown { coverage.emergencies += 1 }
                case .alarm(let a) where a.code == .travelTimeout && a.active:
                    coverage.timeouts += 1
                case .alarm(let a) where a.code == .sensorStale && a.active:
                    coverage.staleCuts += 1
                default: break
                }
            }
        }
        return nil
    }
}
