import Testing
@testable import Drivers

/// `BusScheduler` (indexed: pending-write set, safety list, poll heaps) against
/// `ReferenceBusScheduler` (today's scan of every device): over random fields, write bursts,
/// dead, flaky and refusing units and clock steps, every decision, health change and due time
/// must be the same. Virtual clock only; nothing is timed.
@Suite struct BusSchedulerEquivalenceTests {
    static let ms: Int64 = 1_000_000

    /// How a simulated unit behaves (it may change mid-run).
    enum Unit: CaseIterable {
        case good, dead, flaky, refusing
    }

    struct Counts {
        var polls = 0, writes = 0, probes = 0, sleeps = 0, rounds = 0, backwards = 0
        var transitions = 0
    }

    /// One random sequence; returns false at the first difference (recorded as an issue).
    static func runRound(_ round: Int, rng: inout SplitMix64, counts: inout Counts) -> Bool {
        let many = round % 7 == 0
        let n = Int.random(in: 1...(many ? 90 : 14), using: &rng)
        // Few distinct periods and costs, all whole milliseconds: equal deadlines are common.
        let periods: [Int64] = [10, 20, 50, 100, 2000].map { $0 * ms }
        let devices: [BusScheduler.Device] = (0..<n).map { _ in
            let safety = Int.random(in: 0..<4, using: &rng) == 0
            let cost = Int64.random(in: 0...(Bool.random(using: &rng) ? 6 : 35), using: &rng) * ms
            let write: Int64? = Bool.random(using: &rng) ? nil : Int64.random(in: 1...30, using: &rng) * ms
            return .init(period: periods.randomElement(using: &rng)!, safety: safety, pollCost: cost, writeCost: write)
        }
        var settings = BusScheduler.Settings(probeTimeout: [5, 25, 100].randomElement(using: &rng)! * ms)
        settings.backoffStart = [20, 100, 1000].randomElement(using: &rng)! * ms
        settings.backoffMax = settings.backoffStart * [1, 4, 30].randomElement(using: &rng)!
        settings.controlWriteLatency = [0, 10, 100].randomElement(using: &rng)! * ms
        if Bool.random(using: &rng) {
            settings.probeShare = [0.05, 0.2, 0.5].randomElement(using: &rng)!
            settings.window = max(settings.window / 4, Int64((Double(settings.probeTimeout) / settings.probeShare).rounded(.up)))
        }
        let start = Int64.random(in: 0...1_000_000, using: &rng) * ms
        let seed = rng.next()
        var fast = BusScheduler(devices: devices, settings: settings, start: start, seed: seed)
        // Some rounds rebuild the poll heaps as soon as they hold any stale entry.
        if round % 3 == 0 { fast.staleAllowance = 0 }
        var reference = ReferenceBusScheduler(devices: devices, settings: settings, start: start, seed: seed)
        var units: [Unit] = (0..<n).map { _ in
            Int.random(in: 0..<3, using: &rng) == 0 ? Unit.allCases.randomElement(using: &rng)! : .good
        }
        let timeout = [50, 500].randomElement(using: &rng)! * ms
        var pending: [Int: WriteSummary] = [:]
        var now = start
        let steps = many ? 600 : 300
        for step in 0..<steps {
            // Writes arrive in bursts (a lighting change, a motor-off), at random moments.
            if Int.random(in: 0..<6, using: &rng) == 0 {
                for d in 0..<n where Int.random(in: 0..<3, using: &rng) == 0 {
                    let old = pending[d]
                    let safety = Int.random(in: 0..<3, using: &rng) == 0
                    pending[d] = WriteSummary(safety: safety || old?.safety == true, oldestQueuedAt: old?.oldestQueuedAt ?? now)
                }
            }
            if Int.random(in: 0..<50, using: &rng) == 0 { units[Int.random(in: 0..<n, using: &rng)] = Unit.allCases.randomElement(using: &rng)! }
            let writes = pending
            // The pending set in any order, sometimes with devices that have nothing queued.
            var keys = Array(writes.keys).shuffled(using: &rng)
            if Bool.random(using: &rng) { keys.append(Int.random(in: 0..<n, using: &rng)) }
            let expected = reference.next(now: now, writes: { writes[$0] })
            let got = fast.next(now: now, pending: keys, writes: { writes[$0] })
            guard expected == got else {
                Issue.record("round \(round) step \(step) at \(now): reference \(expected), indexed \(got)")
                return false
            }
            switch expected {
            case .sleep(let until):
                counts.sleeps += 1
                if Int.random(in: 0..<400, using: &rng) == 0 {
                    // The clock goes back (not on a real bus; the decisions must still agree).
                    now -= Int64.random(in: 1...200, using: &rng) * ms
                    counts.backwards += 1
                } else if let until, Int.random(in: 0..<4, using: &rng) != 0 {
                    now = until == now ? now + Int64.random(in: 0...2, using: &rng) * ms : until
                } else {
                    now += Int64.random(in: 0...60, using: &rng) * ms
                }
            case .run(let job, let probe):
                let d = job.device
                var isWrite = false
                if case .write = job { isWrite = true; pending[d] = nil; counts.writes += 1 } else { counts.polls += 1 }
                if probe { counts.probes += 1 }
                let outcome: BusScheduler.Outcome
                var cost: Int64
                switch units[d] {
                case .good: outcome = .answered
                case .dead: outcome = .noAnswer
                case .flaky: outcome = Bool.random(using: &rng) ? .answered : .noAnswer
                case .refusing: outcome = .refused
                }
                if outcome == .noAnswer {
                    cost = probe ? settings.probeTimeout : timeout
                } else {
                    cost = isWrite ? Int64.random(in: 1...30, using: &rng) * ms : Int64.random(in: 0...8, using: &rng) * ms
                }
                if Int.random(in: 0..<10, using: &rng) == 0 { cost += Int64.random(in: 0...999_999, using: &rng) }
                let started = now
                now += cost
                let a = reference.finished(job, probe: probe, started: started, ended: now, outcome: outcome)
                let b = fast.finished(job, probe: probe, started: started, ended: now, outcome: outcome)
                if a.from != a.to { counts.transitions += 1 }
                guard a == b, reference.health(d) == fast.health(d), reference.due(d) == fast.due(d) else {
                    Issue.record("round \(round) step \(step): finished \(job) -> reference \(a) due \(reference.due(d)), indexed \(b) due \(fast.due(d))")
                    return false
                }
            }
        }
        counts.rounds += 1
        return true
    }

    @Test func sameDecisionsAsTheReferenceOverRandomSequences() {
        var rng = SplitMix64(seed: 20261204)
        var counts = Counts()
        for round in 0..<2000 {
            guard Self.runRound(round, rng: &rng, counts: &counts) else { break }
        }
        #expect(counts.rounds == 2000)
        // The sequences did reach every kind of decision.
        #expect(counts.polls > 10_000 && counts.writes > 1_000 && counts.probes > 1_000 && counts.sleeps > 1_000, "\(counts)")
        #expect(counts.transitions > 1_000 && counts.backwards > 10, "\(counts)")
    }

    /// Equal deadlines: the lower device index goes first, as in the reference's scan, and a
    /// device's write before its own poll.
    @Test func tiesGoToTheLowerIndexAsInTheReference() {
        let lamp = BusScheduler.Device(period: 100 * Self.ms, safety: false, pollCost: Self.ms)
        var fast = BusScheduler(devices: Array(repeating: lamp, count: 5), settings: .init(probeTimeout: 25 * Self.ms), start: 0, seed: 1)
        // Bring all five online, in index order (first round: probes, all released at 0).
        var order: [Int] = []
        var now: Int64 = 0
        for _ in 0..<5 {
            guard case .run(let job, let probe) = fast.next(now: now, pending: [Int](), writes: { _ in nil }) else { break }
            order.append(job.device)
            fast.finished(job, probe: probe, started: now, ended: now, outcome: .answered)
        }
        #expect(order == [0, 1, 2, 3, 4])
        // All due at 100 ms, same deadline; a control write to 3 queued at 100 ms - latency + period
        // has the same deadline as the polls (200 ms) and goes after device 2's poll, before 3's.
        now = 100 * Self.ms
        let w = WriteSummary(safety: false, oldestQueuedAt: 200 * Self.ms - fast.settings.controlWriteLatency)
        order = []
        var pending: Set<Int> = [3]
        for _ in 0..<6 {
            let p = pending
            guard case .run(let job, let probe) = fast.next(now: now, pending: Array(p), writes: { p.contains($0) ? w : nil }) else { break }
            order.append(job.device * 10 + (job.rank))
            if case .write = job { pending.remove(job.device) }
            fast.finished(job, probe: probe, started: now, ended: now, outcome: .answered)
        }
        #expect(order == [1, 11, 21, 30, 31, 41])
    }
}
