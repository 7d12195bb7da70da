import EdgeRuntime
import EdgeAgent
import Testing

/// Properties of `PriorityApproach` over thousands of random sequences of check-ins,
/// check-outs, centre requests/cancels, acks and degraded periods, against a small model
/// of who is checked in. The runner's contract is played: `tick` at `nextDeadline`.
@Suite struct PrioritySafetyTests {
    struct Coverage {
        var rises = 0, timeouts = 0, delayed = 0, granted = 0
    }

    @Test func requestIsBoundedAndFollowsTheVehicles() {
        var coverage = Coverage()
        var failures = 0
        for k in 0..<2_000 {
            let seed: UInt64 = 0x9A1_0000 + UInt64(k)
            if let failure = Self.run(seed: seed, steps: 150, coverage: &coverage) {
                Issue.record("priority seed \(seed): \(failure)")
                failures += 1
                if failures >= 3 { break }
            }
        }
        #expect(coverage.rises > 2_000, "\(coverage)")
        #expect(coverage.timeouts > 200, "\(coverage)")
        #expect(coverage.delayed > 200, "\(coverage)")
        #expect(coverage.granted > 500, "\(coverage)")
    }

    static func run(seed: UInt64, steps: Int, coverage: inout Coverage) -> String? {
        var rng = ControlTest.SplitMix64(seed: seed)
        let maxHold = Duration.seconds(rng.int(5...60))
        let minInterval = Duration.seconds(rng.int(0...20))
        var p = PriorityApproach(name: "a", approach: 1, maxHold: maxHold, minInterval: minInterval)
        var clock = ControlTest.Clock()

        // The model: who is checked in.
        var anonymous = 0
        var named: Set<String> = []
        var degraded = false
        var rose: MonotonicInstant?
        var fell: MonotonicInstant?
        let ids = ["bus-1", "bus-2", "bus-3", "bus-4", "bus-5"]

        for step in 0..<steps {
            var next = clock.now + .milliseconds(rng.int(1...6_000))
            var deadline = false
            if let d = p.nextDeadline, d <= next {
                next = max(d, clock.now)
                deadline = true
            }
            clock.set(next)
            let now = clock.now
            let wasOn = p.outputs.request

            if deadline {
                p.tick(at: now)
            } else {
                switch rng.int(0...99) {
                case 0..<25:
                    p.handle(.checkinEdge, at: now)
                    if !degraded && anonymous + named.count < PriorityApproach.capacity { anonymous += 1 }
                case 25..<45:
                    p.handle(.checkoutEdge, at: now)
                    if anonymous > 0 { anonymous -= 1 }
                case 45..<60:
                    let v = ids[rng.int(0...4)]
                    if p.request(vehicle: v, line: "L1", etaSeconds: rng.int(0...60), at: now).isAccepted {
                        if degraded { return "step \(step): request accepted while degraded" }
                        named.insert(v)
                    }
                case 60..<70:
                    let v = ids[rng.int(0...4)]
                    p.cancel(vehicle: v, at: now)
                    named.remove(v)
                case 70..<80:
                    p.handle(.acknowledged(rng.chance(0.5)), at: now)
                case 80..<83:
                    degraded.toggle()
                    p.handle(.degraded(degraded), at: now)
                    if degraded { anonymous = 0; named.removeAll() }
                default:
                    p.tick(at: now)
                }
            }

            let on = p.outputs.request
            let at = "step \(step) t=\(now)"
            if let d = p.nextDeadline, d <= now { return "\(at): nextDeadline \(d) not in the future (the runner would spin)" }
            // A drop with vehicles still checked in can only be max_hold (or degraded).
            if wasOn && !on {
                fell = now
                if anonymous + named.count > 0 {
                    guard let r = rose, now - r == maxHold else { return "\(at): dropped with vehicles checked in before max_hold" }
                    anonymous = 0
                    named.removeAll()
                }
            }
            if !wasOn && on {
                coverage.rises += 1
                if let f = fell, now - f < minInterval { return "\(at): re-request \(now - f) after the drop, min_interval \(minInterval)" }
                rose = now
            }
            if on, let r = rose, now - r > maxHold { return "\(at): request on for \(now - r), max_hold \(maxHold)" }
            if on && anonymous + named.count == 0 { return "\(at): request on with no vehicle checked in" }
            if on && degraded { return "\(at): request on while the controller is degraded" }
            if p.checkedIn != anonymous + named.count { return "\(at): \(p.checkedIn) checked in, model says \(anonymous + named.count)" }
            // Liveness: vehicles waiting and the output off only inside the rate-limit window.
            if !on && !degraded && anonymous + named.count > 0 {
                guard let f = fell, now - f < minInterval else { return "\(at): vehicles checked in but no request" }
            }
            for e in p.drainEvents() {
                switch e.kind {
                case .priorityTimeout: coverage.timeouts += 1
                case .priorityRequest(let info) where info.delayed: coverage.delayed += 1
                case .priorityGranted: coverage.granted += 1
                default: break
                }
            }
        }
        return nil
    }
}
