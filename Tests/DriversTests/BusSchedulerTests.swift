import Testing
@testable import Drivers

/// `BusScheduler` on a virtual clock: which job next, given deadlines, health, pending writes
/// and the probe budget. A small simulated bus runs its decisions with modelled job costs.
@Suite struct BusSchedulerTests {
    static let ms: Int64 = 1_000_000

    /// A virtual bus: devices with a cost per poll/write; `dead` devices never answer (a probe
    /// then lasts the probe timeout, an online request the full timeout).
    struct VirtualBus {
        var scheduler: BusScheduler
        var now: Int64 = 0
        var dead: Set<Int> = []
        var pollCost: [Int64]
        var writeCost: Int64 = 3 * BusSchedulerTests.ms
        var timeout: Int64 = 500 * BusSchedulerTests.ms
        var pending: [Int: WriteSummary] = [:]
        /// (device, start, probe, kind, the device's due time once the job ended)
        var log: [(device: Int, start: Int64, probe: Bool, write: Bool, due: Int64)] = []
        /// The times the bus woke from a sleep to run a job (a job right after a job is no wake-up).
        var wakes: [Int64] = []
        var slept = false

        init(devices: [BusScheduler.Device], probeTimeout: Int64, seed: UInt64 = 1) {
            scheduler = BusScheduler(devices: devices, settings: .init(probeTimeout: probeTimeout), start: 0, seed: seed)
            pollCost = devices.map(\.pollCost)
        }

        mutating func queue(_ device: Int, safety: Bool) {
            let old = pending[device]
            pending[device] = WriteSummary(safety: safety || old?.safety == true, oldestQueuedAt: old?.oldestQueuedAt ?? now)
        }

        /// Runs decisions until `end`; `every` is called before each decision (to queue writes).
        mutating func run(until end: Int64, every: (inout VirtualBus) -> Void = { _ in }) {
            while now < end {
                every(&self)
                let pending = self.pending
                switch scheduler.next(now: now, writes: { pending[$0] }) {
                case .sleep(let until):
                    now = min(end, max(now + 1, until ?? end))
                    slept = true
                case .run(let job, let probe):
                    let d = job.device
                    var write = false
                    if case .write = job { write = true; self.pending[d] = nil }
                    if slept { wakes.append(now); slept = false }
                    let cost: Int64 = dead.contains(d) ? (probe ? scheduler.settings.probeTimeout : timeout) : (write ? writeCost : pollCost[d])
                    let start = now
                    now += cost
                    scheduler.finished(job, probe: probe, started: start, ended: now, outcome: dead.contains(d) ? .noAnswer : .answered)
                    log.append((d, start, probe, write, scheduler.due(d)))
                }
            }
        }

        /// Gaps between successive poll starts of `device` after `from`.
        func pollGaps(_ device: Int, from: Int64 = 0) -> [Int64] {
            let starts = log.filter { $0.device == device && !$0.write && $0.start >= from }.map(\.start)
            return zip(starts.dropFirst(), starts).map { $0 - $1 }
        }
    }

    static func bollard(cost: Int64 = 2 * ms) -> BusScheduler.Device { .init(period: 50 * ms, safety: true, pollCost: cost) }
    static func lamp(cost: Int64 = 2 * ms) -> BusScheduler.Device { .init(period: 2000 * ms, safety: false, pollCost: cost) }

    @Test func eachDeviceIsPolledAtItsOwnPeriod() {
        var bus = VirtualBus(devices: [Self.bollard(), .init(period: 100 * Self.ms, safety: true, pollCost: Self.ms), Self.lamp()], probeTimeout: 25 * Self.ms)
        bus.run(until: 10_000 * Self.ms)
        let warm = 200 * Self.ms
        for (device, period) in [(0, 50 * Self.ms), (1, 100 * Self.ms), (2, 2000 * Self.ms)] {
            let gaps = bus.pollGaps(device, from: warm)
            #expect(!gaps.isEmpty)
            #expect(gaps.allSatisfy { abs($0 - period) <= 5 * Self.ms }, "device \(device): \(Set(gaps).sorted())")
            // Anchored: no drift over the run.
            #expect(abs(gaps.reduce(0, +) - Int64(gaps.count) * period) <= 5 * Self.ms)
        }
    }

    @Test func safetyWritesGoFirstAndSafetyPollsBeforeOtherWork() {
        var bus = VirtualBus(devices: [Self.bollard(), Self.lamp()], probeTimeout: 25 * Self.ms)
        bus.run(until: 100 * Self.ms)   // both online
        #expect(bus.scheduler.answers(0) && bus.scheduler.answers(1))
        // At a bollard due time, with a control write to the lamp and a safety write to the bollard queued.
        bus.now = bus.scheduler.due(0)
        bus.queue(1, safety: false)
        bus.queue(0, safety: true)
        let pending = bus.pending
        #expect(bus.scheduler.next(now: bus.now, writes: { pending[$0] }) == .run(.write(0), probe: false))
        let rest = pending.filter { $0.key != 0 }
        #expect(bus.scheduler.next(now: bus.now, writes: { rest[$0] }) == .run(.poll(0), probe: false))
    }

    @Test func aLightingChangeDelaysTheBollardByAtMostHalfAPeriod() {
        // RTU-like costs: bollard poll 24 ms, lamp write 30 ms; 30 lamps written at once.
        var devices = [Self.bollard(cost: 24 * Self.ms)]
        devices += (0..<30).map { _ in Self.lamp(cost: 32 * Self.ms) }
        for d in devices.indices { devices[d].writeCost = 30 * Self.ms }
        var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms)
        bus.writeCost = 30 * Self.ms
        bus.run(until: 3000 * Self.ms)
        #expect((0..<31).allSatisfy { bus.scheduler.answers($0) })
        let change = bus.now
        for lamp in 1...30 { bus.queue(lamp, safety: false) }
        bus.run(until: change + 4000 * Self.ms)
        let gaps = bus.pollGaps(0, from: change)
        #expect(gaps.max()! <= 75 * Self.ms, "bollard poll gaps during the change: max \(gaps.max()! / Self.ms) ms")
        let written = bus.log.filter { $0.write && $0.start >= change }.count
        #expect(written == 30, "every lamp written: \(written)")
    }

    @Test func aDeadUnitCostsAtMostItsShareAndTheOthersKeepTheirPeriods() {
        // Dead bollard (0), second bollard (1), junction (2), 20 lamps; default 500 ms timeout.
        var devices = [Self.bollard(), Self.bollard(), Self.bollard()]
        devices += (0..<20).map { _ in Self.lamp() }
        var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms)
        bus.dead = [0]
        // The controller re-queues a motor-off for the dead unit every 500 ms.
        var nextCut: Int64 = 0
        bus.run(until: 20_000 * Self.ms) { b in
            if b.now >= nextCut { b.queue(0, safety: true); nextCut = b.now + 500 * Self.ms }
        }
        #expect(bus.scheduler.health(0) == .offline)
        for d in [1, 2] {
            let gaps = bus.pollGaps(d, from: 100 * Self.ms)
            #expect(gaps.max()! <= 75 * Self.ms, "device \(d): max gap \(gaps.max()! / Self.ms) ms")
        }
        // Probes: one probe timeout each, never more than the share of any window.
        let probes = bus.log.filter { $0.device == 0 }
        #expect(probes.allSatisfy { $0.probe })
        let window = bus.scheduler.settings.window
        for p in probes {
            let inWindow = probes.filter { $0.start >= p.start && $0.start < p.start + window }.count
            #expect(Int64(inWindow) * 25 * Self.ms <= Int64(Double(window) * 0.2))
        }
        // Backoff: the probes thin out (capped exponential): fewer than one per second overall.
        #expect(probes.count < 20, "probes of the dead unit: \(probes.count)")
    }

    @Test func aUnitThatDiesCostsOneTimeoutThenOnlyProbes() {
        var bus = VirtualBus(devices: [Self.bollard(), Self.bollard()], probeTimeout: 25 * Self.ms)
        bus.run(until: 500 * Self.ms)
        bus.dead = [0]
        let death = bus.now
        bus.run(until: death + 5000 * Self.ms)
        let attempts = bus.log.filter { $0.device == 0 && $0.start >= death }
        #expect(attempts.first?.probe == false, "the first miss uses the full timeout")
        #expect(attempts.dropFirst().allSatisfy { $0.probe }, "then probes only")
        #expect(bus.scheduler.health(0) == .offline)
        // After the one full timeout, the other bollard is back at its period.
        let gaps = bus.pollGaps(1, from: death + 600 * Self.ms)
        #expect(gaps.max()! <= 75 * Self.ms)
    }

    @Test func aWriteToAnOfflineUnitIsItsProbeAndAnAnswerBringsItBack() {
        var bus = VirtualBus(devices: [Self.bollard(), Self.lamp()], probeTimeout: 25 * Self.ms)
        bus.dead = [0]
        bus.run(until: 300 * Self.ms)
        #expect(bus.scheduler.health(0) == .offline)
        bus.queue(0, safety: true)
        bus.dead = []
        bus.run(until: 3000 * Self.ms)
        let after = bus.log.filter { $0.device == 0 && $0.start >= 300 * Self.ms }
        #expect(after.first?.write == true && after.first?.probe == true, "the pending motor-off is the probe")
        #expect(bus.scheduler.health(0) == .online)
    }

    @Test func backoffIsCappedExponentialWithJitter() {
        // No safety device: the probe timeout is the whole timeout; window = timeout / share.
        var bus = VirtualBus(devices: [Self.lamp()], probeTimeout: 100 * Self.ms)
        bus.dead = [0]
        bus.run(until: 400_000 * Self.ms)
        let starts = bus.log.map(\.start)
        let gaps = zip(starts.dropFirst(), starts).map { Double($0 - $1 - 100 * Self.ms) / 1e9 }
        // Steps 1, 2, 4, 8, 16 then 30 s, each within [3/4, 5/4] of the step.
        let steps = [1.0, 2, 4, 8, 16, 30, 30, 30]
        for (gap, step) in zip(gaps, steps) {
            #expect(gap >= step * 0.75 - 0.001 && gap <= step * 1.25 + 0.001, "gap \(gap) for step \(step)")
        }
        #expect(Set(gaps.suffix(5).map { Int($0 * 1000) }).count > 1, "jitter: \(gaps.suffix(5))")
    }

    /// Property: over random fields, dead units and write bursts, every answering safety device
    /// is polled at most 1.5 periods apart (plus the other safety work due at the same time),
    /// probes of dead units stay within the share, and no write to an answering unit is starved.
    @Test func propertyRandomFieldsWithDeadUnits() {
        var rng = SplitMix64(seed: 12)
        for round in 0..<60 {
            let safety = Int.random(in: 1...3, using: &rng)
            let lamps = Int.random(in: 0...20, using: &rng)
            var devices: [BusScheduler.Device] = (0..<safety).map { _ in
                .init(period: [50, 100].randomElement(using: &rng)! * Self.ms, safety: true, pollCost: Int64.random(in: 1...6, using: &rng) * Self.ms)
            }
            devices += (0..<lamps).map { _ in Self.lamp(cost: Int64.random(in: 1...8, using: &rng) * Self.ms) }
            let writeCost = Int64.random(in: 1...8, using: &rng) * Self.ms
            for d in devices.indices { devices[d].writeCost = writeCost }
            var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms, seed: UInt64(round))
            bus.writeCost = writeCost
            let deadCount = Int.random(in: 0...2, using: &rng)
            bus.dead = Set((0..<deadCount).map { _ in Int.random(in: 0..<devices.count, using: &rng) })
            bus.run(until: 8000 * Self.ms) { b in
                if Int.random(in: 0..<200, using: &rng) == 0 {
                    // Safety writes go to safety devices (motor-off, request drop), control writes anywhere.
                    for d in 0..<devices.count where Bool.random(using: &rng) { b.queue(d, safety: d < safety && Bool.random(using: &rng)) }
                }
            }
            for d in 0..<safety where !bus.dead.contains(d) {
                let period = devices[d].period
                let gaps = bus.pollGaps(d, from: 500 * Self.ms)
                #expect(!gaps.isEmpty)
                // Half a period late at most, plus the other safety polls and a write per safety device
                // queued at the same moment (safety work is not delayed for other work, only by itself).
                let others = (0..<safety).filter { $0 != d }.reduce(Int64(0)) { $0 + devices[$1].pollCost }
                let bound = period * 3 / 2 + others + Int64(safety) * bus.writeCost
                #expect(gaps.max() ?? 0 <= bound, "round \(round) device \(d): max gap \((gaps.max() ?? 0) / Self.ms) ms > \(bound / Self.ms)")
            }
            for d in bus.dead { #expect(bus.scheduler.health(d) == .offline) }
            let probeTime = bus.log.filter(\.probe).filter { bus.dead.contains($0.device) }.count
            #expect(Int64(probeTime) * 25 * Self.ms <= 8000 * Self.ms / 5 + 25 * Self.ms, "round \(round)")
            #expect(bus.pending.isEmpty || bus.pending.keys.allSatisfy { bus.dead.contains($0) }, "round \(round): writes starved \(bus.pending)")
        }
    }

    /// The reference cabinet's field on Modbus TCP: 4 bollards and a signal I/O at 50 ms, 8 presence
    /// sensors at 100 ms, 64 luminaires at 2 s (costs in ms).
    static func referenceCabinet(lampCost: Int64 = 2 * ms) -> [BusScheduler.Device] {
        (0..<5).map { _ in bollard() }
            + (0..<8).map { _ in BusScheduler.Device(period: 100 * ms, safety: true, pollCost: ms) }
            + (0..<64).map { _ in lamp(cost: lampCost) }
    }

    /// Rule 7: devices that come online at scattered times (dead at first, each back at a random
    /// moment, found by its backoff probes) are then due at the same instants, those of the grid
    /// of the scheduler's start, so the bus wakes once per instant of the shortest period.
    @Test func devicesComingOnlineAtScatteredTimesAreDueAtTheSameInstants() {
        let devices = Self.referenceCabinet()
        let origin: Int64 = 13_000_000_007   // any origin
        var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms)
        bus.scheduler = BusScheduler(devices: devices, settings: .init(probeTimeout: 25 * Self.ms), start: origin, seed: 5)
        bus.now = origin
        var rng = SplitMix64(seed: 9)
        let back = devices.map { _ in origin + Int64.random(in: 0..<3_000_000_000, using: &rng) }
        bus.dead = Set(devices.indices)
        bus.run(until: origin + 20_000 * Self.ms) { b in
            for d in b.dead where back[d] <= b.now { b.dead.remove(d) }
        }
        #expect(devices.indices.allSatisfy { bus.scheduler.answers($0) })
        // Each came online at its first poll after it was back.
        let online = devices.indices.map { d in bus.log.first { $0.device == d && $0.start >= back[d] }!.start }
        #expect(Set(online).count > devices.count / 2, "scattered: \(Set(online).count) distinct times")
        let settled = online.max()!
        // From then on every device is due on its period's grid, and those of one period at once.
        for e in bus.log where e.start > settled {
            #expect((e.due - origin) % devices[e.device].period == 0, "device \(e.device) due off the grid")
        }
        for period in Set(devices.map(\.period)) {
            let dues = Set(devices.indices.filter { devices[$0].period == period }.map { bus.scheduler.due($0) })
            #expect(dues.count == 1, "period \(period / Self.ms) ms: \(dues.count) distinct due times")
        }
        // One wake-up per 50 ms instant, each at the instant.
        let wakes = bus.wakes.filter { $0 > settled }
        #expect(wakes.allSatisfy { ($0 - origin) % (50 * Self.ms) == 0 }, "wake-ups off the 50 ms grid")
        #expect(Int64(wakes.count) <= (bus.now - settled) / (50 * Self.ms) + 1, "\(wakes.count) wake-ups")
    }

    /// Property (rule 7): over random fields (periods that divide each other or not), random start
    /// and random times of coming online, a device's next poll is never due later than a period
    /// after its last poll started (nor before it started); and once every device answers, when
    /// the bus keeps up (periods that divide each other, every burst done before the next instant),
    /// two polls of a device start at most a period apart plus the other devices' polls ahead of it.
    @Test func propertyNoDeviceWaitsLongerThanItsPeriod() {
        var rng = SplitMix64(seed: 21)
        let periods: [Int64] = [30, 50, 70, 100, 200, 1000, 2000].map { $0 * Self.ms }
        for round in 0..<80 {
            let n = Int.random(in: 1...6, using: &rng)
            let devices: [BusScheduler.Device] = (0..<n).map { _ in
                .init(period: periods.randomElement(using: &rng)!, safety: Bool.random(using: &rng), pollCost: Int64.random(in: 1...3, using: &rng) * Self.ms)
            }
            let origin = Int64.random(in: 0...1_000_000_000_000, using: &rng)
            var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms)
            bus.scheduler = BusScheduler(devices: devices, settings: .init(probeTimeout: 25 * Self.ms), start: origin, seed: UInt64(round))
            bus.now = origin + Int64.random(in: 0..<3_000_000_000, using: &rng)
            let back = devices.map { _ in bus.now + Int64.random(in: 0..<3_000_000_000, using: &rng) }
            bus.dead = Set(devices.indices)
            bus.run(until: bus.now + 15_000 * Self.ms) { b in
                for d in b.dead where back[d] <= b.now { b.dead.remove(d) }
            }
            let online = devices.indices.map { d in bus.log.first { $0.device == d && $0.start >= back[d] }?.start }
            #expect(online.allSatisfy { $0 != nil }, "round \(round): not all online")
            for (d, at) in online.enumerated() {
                guard let at else { continue }
                for e in bus.log where e.device == d && e.start >= at {
                    #expect(e.due > e.start && e.due <= e.start + devices[d].period, "round \(round) device \(d)")
                }
            }
            let dividing = devices.allSatisfy { a in devices.allSatisfy { max(a.period, $0.period) % min(a.period, $0.period) == 0 } }
            guard dividing, let settled = online.compactMap({ $0 }).max() else { continue }
            for d in devices.indices {
                let others = devices.indices.filter { $0 != d }.reduce(Int64(0)) { $0 + devices[$1].pollCost }
                let gaps = bus.pollGaps(d, from: settled)
                #expect(gaps.allSatisfy { $0 <= devices[d].period + others }, "round \(round) device \(d): max gap \((gaps.max() ?? 0) / Self.ms) ms")
            }
        }
    }

    /// Rule 3 with the grid: 64 luminaires due at one instant never delay a safety poll by more
    /// than half its period. The first safety poll of an instant starts by due + period / 2 (rule
    /// 3: no other job may end later); the ones queued behind it at most by the other safety polls
    /// more. With the reference cabinet's TCP costs every bollard poll starts by due + period / 2;
    /// with slower luminaires (RTU-like 8 and 20 ms, the bus 94 % busy) the bound with the queue.
    @Test func aBurstOfLuminairesDueTogetherDelaysNoSafetyPollBeyondRule3() {
        for lampCost in [2, 8, 20].map({ $0 * Self.ms }) {
            let devices = Self.referenceCabinet(lampCost: lampCost)
            var bus = VirtualBus(devices: devices, probeTimeout: 25 * Self.ms)
            bus.run(until: 12_000 * Self.ms)
            #expect(devices.indices.allSatisfy { bus.scheduler.answers($0) })
            let lamps = devices.indices.filter { !devices[$0].safety }
            #expect(Set(lamps.map { bus.scheduler.due($0) }).count == 1, "luminaires due together")
            let safety = devices.indices.filter { devices[$0].safety }
            var bursts = 0
            for d in safety {
                let polls = bus.log.filter { $0.device == d && !$0.write && $0.start >= 1000 * Self.ms }
                let half = devices[d].period / 2
                let others = safety.filter { $0 != d }.reduce(Int64(0)) { $0 + devices[$1].pollCost }
                for (previous, poll) in zip(polls, polls.dropFirst()) {
                    let late = poll.start - previous.due
                    if previous.due % (2000 * Self.ms) == 0 { bursts += 1 }
                    #expect(late >= 0 && late <= half + others, "lamps \(lampCost / Self.ms) ms, device \(d): \(late / Self.ms) ms late")
                    if lampCost == 2 * Self.ms { #expect(late <= half, "device \(d): \(late / Self.ms) ms late") }
                }
            }
            #expect(bursts >= 5 * safety.count, "safety polls at the luminaires' instants: \(bursts)")
        }
    }
}
