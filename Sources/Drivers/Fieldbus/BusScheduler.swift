/// What one bus does next: a pure decision over the devices' deadlines, their health, the
/// pending writes and the probe budget, on a clock it is given (nanoseconds, any origin), so it
/// is tested without threads or sockets. `ModbusBus` runs its decisions.
///
/// Rules, in order:
/// 1. Safety writes to devices that answer (`online`) go first, oldest first.
/// 2. Then the released polls (due <= now) of answering safety devices (bollards, signal I/O,
///    presence), earliest deadline first (a poll's deadline is its due time plus its period).
/// 3. Then, earliest deadline first, one of: a control write to an answering device (deadline:
///    queued + `controlWriteLatency`), a released poll of another answering device (due +
///    period), or a probe of a device that does not answer (unknown, after a miss, offline;
///    deadline: release + period). Such a job starts only if, by its estimated cost (a probe: its
///    timeout, or its poll if longer), it ends by every answering safety device's latest tolerated
///    start, due + period / 2: a lighting change or a dead unit delays a bollard's poll by at most
///    half a period.
/// 4. A probe is a job for a device that does not answer: its pending write if any (so a
///    motor-off reaches the unit the moment it answers), else a poll. It runs with the probe
///    timeout, not before its device's release (after a miss: the next due; offline: the end of
///    a capped exponential backoff with jitter), and only while the unanswered probes of the
///    sliding window plus this one's timeout stay within `probeShare` of it. A dead unit therefore
///    costs at most one probe timeout per backoff step and never more than `probeShare` of the
///    bus time (a probe that is answered costs what a poll costs and is not counted).
/// 5. Health: a device answers from its first good poll (`online`). A failed poll or a write that
///    got no answer makes an online device `suspect` (one miss: its retry is a probe) and any
///    other `offline`; a good poll brings it back. Offline devices are probed at backoff steps
///    of `backoffStart` doubling to `backoffMax`, each drawn in [3/4, 5/4] of the step.
/// 6. Nothing to do: sleep until the earliest release (a due poll, a backoff end, budget again).
///
/// Invariants: at most one job runs at a time (the caller reports each with `finished`); the
/// probe log holds only probes of the last window; a device's period never changes.
public struct BusScheduler: Sendable {
    /// A device as the scheduler sees it.
    public struct Device: Sendable, Equatable {
        /// Poll period, ns.
        public var period: Int64
        /// A safety device (bollard, signal I/O, presence): its polls go before other work.
        public var safety: Bool
        /// Estimated duration of one poll, ns (refined from measured polls).
        public var pollCost: Int64
        /// Estimated duration of one write batch, ns (refined from measured writes); nil: `pollCost`.
        public var writeCost: Int64
        public init(period: Int64, safety: Bool, pollCost: Int64, writeCost: Int64? = nil) {
            self.period = period
            self.safety = safety
            self.pollCost = pollCost
            self.writeCost = writeCost ?? pollCost
        }
    }

    public enum Health: Sendable, Equatable {
        case unknown, online, suspect, offline
    }

    public enum Job: Sendable, Equatable {
        case poll(Int)
        case write(Int)
        var device: Int {
            switch self {
            case .poll(let d), .write(let d): return d
            }
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Run this job; `probe`: with the probe timeout (the device does not answer).
        case run(Job, probe: Bool)
        /// Nothing to do before this time (nil: until something is queued).
        case sleep(until: Int64?)
    }

    /// How a job ended.
    public enum Outcome: Sendable, Equatable {
        case answered
        /// No answer (timeout, I/O); for a poll also an exception answer (counts as a miss).
        case noAnswer
        /// A write the device refused (exception, verify mismatch): it answers.
        case refused
    }

    /// What changed with a finished job.
    public struct Transition: Sendable, Equatable {
        public var from: Health
        public var to: Health
        public var cameOnline: Bool { from != .online && to == .online }
        public var wentOffline: Bool { from != .offline && to == .offline }
    }

    public struct Settings: Sendable, Equatable {
        /// Timeout of a probe, ns.
        public var probeTimeout: Int64
        /// Largest share of the window probes may take.
        public var probeShare: Double = 0.2
        /// Sliding window of the probe budget, ns (at least probeTimeout / probeShare).
        public var window: Int64 = 1_000_000_000
        public var backoffStart: Int64 = 1_000_000_000
        public var backoffMax: Int64 = 30_000_000_000
        /// Deadline of a control write after it was queued, ns.
        public var controlWriteLatency: Int64 = 100_000_000
        public init(probeTimeout: Int64) {
            self.probeTimeout = probeTimeout
            window = max(window, Int64((Double(probeTimeout) / probeShare).rounded(.up)))
        }
    }

    private struct State: Sendable {
        var device: Device
        var health: Health = .unknown
        var due: Int64
        /// Offline: no probe before this.
        var notBefore: Int64 = 0
        var backoff: Int64
        var writeCost: Int64
    }

    public let settings: Settings
    private var states: [State]
    /// Probes of the window: (start, end).
    private var probes: [(Int64, Int64)] = []
    private var rng: SplitMix64

    public init(devices: [Device], settings: Settings, start: Int64, seed: UInt64) {
        self.settings = settings
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
            if from != .online || next <= ended { next = started + s.device.period }
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
                s.due = max(s.due, started + s.device.period)
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

    /// A delay in [3/4, 5/4] of `step`.
    private mutating func jittered(_ step: Int64) -> Int64 {
        let fraction = Double(rng.next() >> 11) / Double(1 << 53)
        return step * 3 / 4 + Int64(Double(step / 2) * fraction)
    }
}

/// What `BusScheduler` needs of a device's pending writes.
public struct WriteSummary: Sendable, Equatable {
    /// At least one pending point was queued as a safety write.
    public var safety: Bool
    public var oldestQueuedAt: Int64
    public init(safety: Bool, oldestQueuedAt: Int64) {
        self.safety = safety
        self.oldestQueuedAt = oldestQueuedAt
    }
}

/// A small, fast, seedable generator (for jitter; tests seed it for repeatable runs).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
