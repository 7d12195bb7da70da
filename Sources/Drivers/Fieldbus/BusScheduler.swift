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
/// 7. Poll grid: an answering device's next poll is due one period after its last due time
///    (anchored: no drift), except when it comes online, when it fell a period behind (that due
///    time has passed when the poll ends) and after a miss: then it is due at the first instant
///    `start + k * period` strictly after the poll's start (`start`: the scheduler's). Every
///    device of one period is thus due at the same instants, and devices whose periods divide
///    each other share instants, so the bus polls them back to back in one wake-up; and a device
///    is never due later than a period after its last poll started.
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
        /// A device's write comes before its poll at equal deadlines.
        var rank: Int {
            switch self {
            case .write: return 0
            case .poll: return 1
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
    /// The origin of the poll grid (rule 7): the `start` the scheduler was made with.
    public let origin: Int64
    private var states: [State]
    /// Probes of the window: (start, end).
    private var probes: [(Int64, Int64)] = []
    private var rng: SplitMix64

    // Indexes over `states`, so a decision visits only the devices that can matter (the rules'
    // outcome is that of a scan of every device in index order; these only find it faster).
    // Invariants, between calls:
    // - `safetyDevices`: the safety devices' indices, ascending (fixed: `safety` never changes).
    // - `notAnswering`: exactly the devices whose health is not `.online`.
    // - Every online non-safety device `d` has exactly one live entry (its `version` equals
    //   `versions[d]`), in `waiting` (keyed by its due time) or in `released` (keyed by its
    //   deadline, due + period; only once its due time was <= the `now` of a decision). Any
    //   change of a device's due time or health bumps `versions[d]`, which makes its old entry
    //   stale; stale entries are dropped when they surface (lazy deletion), and both heaps are
    //   rebuilt when they hold too many of them. `released` holds only devices due at
    //   `lastNow`: a decision at an earlier time than the last rebuilds the heaps.
    private let safetyDevices: [Int]
    private var notAnswering: DeviceSet
    private var versions: [UInt32]
    private var waiting = DeviceHeap()
    private var released = DeviceHeap()
    private var lastNow = Int64.min
    /// Stale entries the heaps may hold (beyond one live entry per device) before they are
    /// rebuilt (tests lower it to rebuild at every stale entry).
    var staleAllowance: Int

    public init(devices: [Device], settings: Settings, start: Int64, seed: UInt64) {
        self.settings = settings
        origin = start
        // Every device is due at once: the rules' order and the probe budget pace the first round.
        states = devices.map { State(device: $0, due: start, backoff: settings.backoffStart, writeCost: $0.writeCost) }
        rng = SplitMix64(seed: seed)
        safetyDevices = devices.indices.filter { devices[$0].safety }
        // Nothing answers yet: every device is `unknown`, none is in the poll heaps.
        notAnswering = DeviceSet(count: devices.count, all: true)
        versions = Array(repeating: 0, count: devices.count)
        staleAllowance = max(64, devices.count)
    }

    public var count: Int { states.count }
    public func health(_ device: Int) -> Health { states[device].health }
    public func due(_ device: Int) -> Int64 { states[device].due }
    public func answers(_ device: Int) -> Bool { states[device].health == .online }
    /// Probe time spent in the window ending at `now`, ns.
    public func probeTime(now: Int64) -> Int64 {
        probes.reduce(0) { $0 + max(0, $1.1 - max($1.0, now - settings.window)) }
    }

    /// The next job, given each device's pending writes (`writes[d]`, nil: none). Asks every
    /// device for its writes (O(devices)); a bus that knows which devices have writes passes
    /// them to `next(now:pending:writes:)`.
    public mutating func next(now: Int64, writes: (Int) -> WriteSummary?) -> Decision {
        next(now: now, pending: 0..<states.count, writes: writes)
    }

    /// The next job, given each device's pending writes (`writes[d]`, nil: none) and `pending`,
    /// the devices that may have some: every device with `writes(d) != nil` must be in it (any
    /// order; others and repeats are harmless). Decides exactly as a scan of every device in
    /// index order by the rules above (equal deadlines: the lower device index first, and a
    /// device's write before its poll), in O(pending + safety devices + devices that do not
    /// answer + log(devices)) per decision.
    public mutating func next(now: Int64, pending: some Sequence<Int>, writes: (Int) -> WriteSummary?) -> Decision {
        if !probes.isEmpty { probes.removeAll { $0.1 <= now - settings.window } }
        if now < lastNow { rebuildHeaps() }
        lastNow = now
        // Rule 1: safety writes to answering devices, oldest first.
        var best: (Int, Int64)?
        for d in pending where states[d].health == .online {
            if let w = writes(d), w.safety, best.map({ (w.oldestQueuedAt, d) < ($0.1, $0.0) }) ?? true { best = (d, w.oldestQueuedAt) }
        }
        if let best { return .run(.write(best.0), probe: false) }
        // Rule 2: released polls of answering safety devices, earliest deadline first; with the
        // latest start they tolerate (rule 3) and the earliest of their due times (rule 6).
        var poll: (Int, Int64)?
        var latestStart = Int64.max
        var wake = Int64.max
        for d in safetyDevices where states[d].health == .online {
            let s = states[d]
            if s.due <= now {
                let deadline = s.due + s.device.period
                if poll.map({ deadline < $0.1 }) ?? true { poll = (d, deadline) }
            }
            latestStart = min(latestStart, s.due + s.device.period / 2)
            wake = min(wake, s.due)
        }
        if let poll { return .run(.poll(poll.0), probe: false) }
        // Rule 3: the rest, earliest deadline first, each only if it fits before the safety polls.
        let slack = latestStart == .max ? Int64.max : latestStart - now
        var pick: Candidate?
        func consider(_ c: Candidate) {
            if pick.map({ c.precedes($0) }) ?? true { pick = c }
        }
        // Control writes to answering devices.
        for d in pending where states[d].health == .online {
            if let w = writes(d), states[d].writeCost <= slack {
                consider(Candidate(job: .write(d), probe: false, deadline: w.oldestQueuedAt + settings.controlWriteLatency))
            }
        }
        // Probes of the devices that do not answer.
        var budgetLeft: Int64?
        for d in notAnswering.members {
            let s = states[d]
            let release = s.health == .offline ? max(s.notBefore, s.due) : s.due
            guard release <= now else { wake = min(wake, release); continue }
            // A probe lasts its timeout, or the poll if the unit answers after all.
            guard max(settings.probeTimeout, s.device.pollCost) <= slack else { continue }
            let left = budgetLeft ?? Int64(Double(settings.window) * settings.probeShare) - probeTime(now: now)
            budgetLeft = left
            guard settings.probeTimeout <= left else {
                // Budget again once the oldest probes leave the window.
                if let first = probes.first { wake = min(wake, first.1 + settings.window) }
                continue
            }
            consider(Candidate(job: writes(d) != nil ? .write(d) : .poll(d), probe: true, deadline: release + s.device.period))
        }
        // Released polls of answering non-safety devices: the earliest deadline that fits.
        while let e = waiting.top, e.key <= now {
            waiting.pop()
            if isLive(e) { released.push(.init(key: states[e.device].due + states[e.device].device.period, device: e.device, version: e.version)) }
        }
        while let e = waiting.top, !isLive(e) { waiting.pop() }
        if let e = waiting.top { wake = min(wake, e.key) }
        var tooLong: [DeviceHeap.Entry] = []
        while let e = released.top {
            guard isLive(e) else { released.pop(); continue }
            let c = Candidate(job: .poll(e.device), probe: false, deadline: e.key)
            // Nothing further down the heap can come before the pick.
            if let pick, !c.precedes(pick) { break }
            if states[e.device].device.pollCost <= slack { pick = c; break }
            tooLong.append(e)
            released.pop()
        }
        for e in tooLong { released.push(e) }
        if let pick { return .run(pick.job, probe: pick.probe) }
        return .sleep(until: wake == .max ? nil : max(wake, now))
    }

    /// A job rule 3 may pick. Order: earliest deadline, then the lower device index, then a
    /// device's write before its poll (the order of a scan of the devices by index).
    private struct Candidate {
        var job: Job
        var probe: Bool
        var deadline: Int64
        func precedes(_ other: Candidate) -> Bool {
            (deadline, job.device, job.rank) < (other.deadline, other.job.device, other.job.rank)
        }
    }

    private func isLive(_ e: DeviceHeap.Entry) -> Bool { versions[e.device] == e.version }

    /// Puts every online non-safety device's live entry back into `waiting` (the next decision
    /// releases the due ones): after the clock went back, or to drop the stale entries.
    private mutating func rebuildHeaps() {
        waiting.removeAll()
        released.removeAll()
        for (d, s) in states.enumerated() where s.health == .online && !s.device.safety {
            waiting.push(.init(key: s.due, device: d, version: versions[d]))
        }
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
            if from != .online || next <= ended { next = onGrid(after: started, period: s.device.period) }
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
                s.due = max(s.due, onGrid(after: started, period: s.device.period))
            case .unknown, .suspect, .offline:
                s.health = .offline
                let step = s.backoff
                s.notBefore = ended + jittered(step)
                s.backoff = min(step * 2, settings.backoffMax)
                s.due = max(s.due, ended)
            }
        }
        let before = states[d]
        states[d] = s
        if s.health != before.health || s.due != before.due {
            versions[d] &+= 1
            if s.health == .online && !s.device.safety {
                waiting.push(.init(key: s.due, device: d, version: versions[d]))
                if waiting.count + released.count > states.count + staleAllowance { rebuildHeaps() }
            }
            if s.health == .online { notAnswering.remove(d) } else { notAnswering.insert(d) }
        }
        return Transition(from: from, to: s.health)
    }

    /// The first instant of the poll grid of `period` strictly after `time` (rule 7): in
    /// (time, time + period].
    func onGrid(after time: Int64, period: Int64) -> Int64 {
        let period = max(period, 1)
        let elapsed = time - origin
        // Floor division (a time before the origin: a clock that went back).
        let k = elapsed >= 0 ? elapsed / period : -((-elapsed + period - 1) / period)
        return origin + (k + 1) * period
    }

    /// A delay in [3/4, 5/4] of `step`.
    private mutating func jittered(_ step: Int64) -> Int64 {
        let fraction = Double(rng.next() >> 11) / Double(1 << 53)
        return step * 3 / 4 + Int64(Double(step / 2) * fraction)
    }
}

/// A binary min-heap of device entries, ordered by key, then device index.
struct DeviceHeap: Sendable {
    struct Entry: Sendable {
        var key: Int64
        var device: Int
        /// The device's version when pushed (the entry is stale once the device's moved on).
        var version: UInt32
        func less(_ o: Entry) -> Bool { key < o.key || (key == o.key && device < o.device) }
    }

    private(set) var entries: [Entry] = []
    var count: Int { entries.count }
    var top: Entry? { entries.first }

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    mutating func push(_ e: Entry) {
        entries.append(e)
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[i].less(entries[parent]) else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes the top entry (the heap must not be empty).
    mutating func pop() {
        let last = entries.removeLast()
        guard !entries.isEmpty else { return }
        entries[0] = last
        var i = 0
        let n = entries.count
        while true {
            let l = 2 * i + 1
            guard l < n else { break }
            var m = l
            if l + 1 < n, entries[l + 1].less(entries[l]) { m = l + 1 }
            guard entries[m].less(entries[i]) else { break }
            entries.swapAt(i, m)
            i = m
        }
    }
}

/// A set of device indices with O(1) insert, remove and membership, and its members as an array
/// (in no particular order).
struct DeviceSet: Sendable {
    private(set) var members: [Int] = []
    /// Position of each device in `members`, -1: not a member.
    private var position: [Int]

    init(count: Int, all: Bool = false) {
        position = Array(repeating: -1, count: count)
        if all {
            members = Array(0..<count)
            position = members
        }
    }

    func contains(_ d: Int) -> Bool { position[d] >= 0 }

    mutating func insert(_ d: Int) {
        guard position[d] < 0 else { return }
        position[d] = members.count
        members.append(d)
    }

    mutating func remove(_ d: Int) {
        let i = position[d]
        guard i >= 0 else { return }
        let last = members.removeLast()
        if last != d {
            members[i] = last
            position[last] = i
        }
        position[d] = -1
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
