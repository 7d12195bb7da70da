@testable import Drivers

/// A test-only copy of `BusScheduler` as it was before its indexes (commit da45cc0): every
/// decision scans all devices in index order. `BusSchedulerEquivalenceTests` runs it beside
/// `BusScheduler` and requires the same decisions. Do not change it to follow `BusScheduler`;
/// it is the definition the faster scheduler must match. One change of the rules since: the
/// poll grid (rule 7 of `BusScheduler`), written here on its own in `gridAfter`.
struct ReferenceBusScheduler {
    typealias Device = BusScheduler.Device
    typealias Health = BusScheduler.Health
    typealias Job = BusScheduler.Job
    typealias Decision = BusScheduler.Decision
    typealias Outcome = BusScheduler.Outcome
    typealias Transition = BusScheduler.Transition
    typealias Settings = BusScheduler.Settings

    struct State: Sendable {
        var device: Device
        var health: Health = .unknown
        var due: Int64
        /// Offline: no probe before this.
        var notBefore: Int64 = 0
        var backoff: Int64
        var writeCost: Int64
    }

    public let settings: Settings
    let origin: Int64
    var states: [State]
    /// Probes of the window: (start, end).
    var probes: [(Int64, Int64)] = []
    var rng: SplitMix64

    public init(devices: [Device], settings: Settings, start: Int64, seed: UInt64) {
        self.settings = settings
        origin = start
        // Every device is due at once: the rules' order and the probe budget pace the first round.
        states = devices.map { State(device: $0, due: start, backoff: settings.backoffStart, writeCost: $0.writeCost) }
        rng = SplitMix64(seed: seed)
    }

    public var count: Int { states.count }
    public func health(_ device: Int) -> Health { states[device].health }
    public func due(_ device: Int) -> Int64 { states[device].due }
    public func answers(_ device: Int) -> Bool { states[device].health == .online }
    /// Probe time spent in the window ending at `now`, ns.
    public func probeTime(now: Int64) -> Int64 {
        probes.reduce(0) { $0 + max(0, $1.1 - max($1.0, now - settings.window)) }
    }

    /// The next job, given each device's pending writes (`writes[d]`, nil: none).
    public mutating func next(now: Int64, writes: (Int) -> WriteSummary?) -> Decision {
        probes.removeAll { $0.1 <= now - settings.window }
        // Rule 1: safety writes to answering devices, oldest first.
        var best: (Int, Int64)?
        for (d, s) in states.enumerated() where s.health == .online {
            if let w = writes(d), w.safety, best.map({ w.oldestQueuedAt < $0.1 }) ?? true { best = (d, w.oldestQueuedAt) }
        }
        if let best { return .run(.write(best.0), probe: false) }
        // Rule 2: released polls of answering safety devices, earliest deadline first.
        var poll: (Int, Int64)?
        for (d, s) in states.enumerated() where s.health == .online && s.device.safety && s.due <= now {
            let deadline = s.due + s.device.period
            if poll.map({ deadline < $0.1 }) ?? true { poll = (d, deadline) }
        }
        if let poll { return .run(.poll(poll.0), probe: false) }
        // Rule 3: the rest, earliest deadline first, each only if it fits before the safety polls.
        var latestStart = Int64.max
        var wake = Int64.max
        for s in states where s.health == .online && s.device.safety {
            latestStart = min(latestStart, s.due + s.device.period / 2)
            wake = min(wake, s.due)
        }
        let slack = latestStart == .max ? Int64.max : latestStart - now
        let budgetLeft = Int64(Double(settings.window) * settings.probeShare) - probeTime(now: now)
        var pick: (job: Job, probe: Bool, deadline: Int64)?
        func consider(_ job: Job, probe: Bool, deadline: Int64) {
            if pick.map({ deadline < $0.deadline }) ?? true { pick = (job, probe, deadline) }
        }
        for (d, s) in states.enumerated() {
            let w = writes(d)
            if s.health == .online {
                if let w, s.writeCost <= slack { consider(.write(d), probe: false, deadline: w.oldestQueuedAt + settings.controlWriteLatency) }
                if s.due <= now {
                    if !s.device.safety, s.device.pollCost <= slack { consider(.poll(d), probe: false, deadline: s.due + s.device.period) }
                } else {
                    wake = min(wake, s.due)
                }
            } else {
                let release = s.health == .offline ? max(s.notBefore, s.due) : s.due
                guard release <= now else { wake = min(wake, release); continue }
                // A probe lasts its timeout, or the poll if the unit answers after all.
                guard max(settings.probeTimeout, s.device.pollCost) <= slack else { continue }
                guard settings.probeTimeout <= budgetLeft else {
                    // Budget again once the oldest probes leave the window.
                    if let first = probes.first { wake = min(wake, first.1 + settings.window) }
                    continue
                }
                consider(w != nil ? .write(d) : .poll(d), probe: true, deadline: release + s.device.period)
            }
        }
        if let pick { return .run(pick.job, probe: pick.probe) }
        return .sleep(until: wake == .max ? nil : max(wake, now))
    }

    /// Reports a job's end; returns the device's health change.
    @discardableResult
    public mutating func finished(_ job: Job, probe: Bool, started: Int64, ended: Int64, outcome: Outcome) -> Transition {
        let d = job.device
        // The budget counts the time spent on units that did not answer.
        if probe, outcome == .noAnswer { probes.append((started, ended)) }
        var s = states[d]
        let from = s.health
        let cost = max(0, ended - started)
        switch (job, outcome) {
        case (.poll, .answered):
            // Measured cost, smoothed (a probe's cost is its timeout, not the device's).
            s.device.pollCost = s.device.pollCost == 0 ? cost : (s.device.pollCost * 3 + cost) / 4
            s.health = .online
            s.backoff = settings.backoffStart
            var next = s.due + s.device.period
            if from != .online || next <= ended { next = gridAfter(started, s.device.period) }
            s.due = max(next, s.due)
        case (.write, .answered), (.write, .refused):
            if from == .online {
                s.writeCost = (s.writeCost * 3 + cost) / 4
            } else {
                // It answers: poll it now (a probe still, until a poll brings it online).
                s.notBefore = ended
                s.due = min(s.due, ended)
                if from == .offline { s.health = .suspect }
            }
        case (_, .noAnswer), (.poll, .refused):
            switch from {
            case .online:
                s.health = .suspect
                s.due = max(s.due, gridAfter(started, s.device.period))
            case .unknown, .suspect, .offline:
                s.health = .offline
                let step = s.backoff
                s.notBefore = ended + jittered(step)
                s.backoff = min(step * 2, settings.backoffMax)
                s.due = max(s.due, ended)
            }
        }
        states[d] = s
        return Transition(from: from, to: s.health)
    }

    /// The first `origin + k * period` strictly after `time`.
    func gridAfter(_ time: Int64, _ period: Int64) -> Int64 {
        var k = (time - origin) / period
        while origin + k * period <= time { k += 1 }
        while origin + (k - 1) * period > time { k -= 1 }
        return origin + k * period
    }

    /// A delay in [3/4, 5/4] of `step`.
    mutating func jittered(_ step: Int64) -> Int64 {
        let fraction = Double(rng.next() >> 11) / Double(1 << 53)
        return step * 3 / 4 + Int64(Double(step / 2) * fraction)
    }
}
