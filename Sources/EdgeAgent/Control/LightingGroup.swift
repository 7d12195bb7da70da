public import EdgeRuntime

/// The dimming state machine of one lighting group: presence boost over a schedule, the
/// neighbour "light wave", and centre/technician overrides. Pure logic: no I/O, no clock.
///
/// Rules (DESIGN.md "Lighting"):
/// - Level = max(schedule level, boost) while the schedule is on; a sensor can never lower
///   the light (TALQ control effect "Max").
/// - Boost while any sensor detects, and for `hold` after the last detection ENDS.
/// - A sensor that is offline counts as detecting (light on is the safe side). Its hold runs
///   from when it came back.
/// - A sensor not heard from yet (after a start or a reload) counts as neither: it does not
///   boost, and its first report starts no hold, so a start or a reload never boosts without
///   presence. The field reports a sensor that does not answer offline after its first failed
///   poll, which then boosts.
/// - The light wave: for each `presence` event of a group the runner calls
///   `neighbourPresence(from:detected:at:)` on that group's neighbours: they boost while the
///   neighbour detects and hold for their own `hold` after it ends. `neighbourBoost(at:)` is
///   a one-shot variant (boost now, hold for `hold`).
/// - The schedule level is set by the runner (`setSchedule`); 0 means the astronomical clock
///   says off (daylight): level 0 whatever the presence. Until the first `setSchedule` the
///   group runs at 100 %, the DALI "no program" default.
/// - An override (`setOverride`) wins over schedule and presence, also in daylight (a
///   technician testing a lamp), until its expiry or `release`; a new one replaces the old.
/// - Outputs change only when the target level changes; the fade time written with it is
///   `fade_up` when rising and `fade_down` when falling (the luminaire fades by itself).
/// - Carry-over (a reload builds the new group from `carryOver(at:)`; nothing of it survives
///   a restart): the override with what is left of it, and the boost as a hold: what is left
///   of the own or neighbour hold, or a whole `hold` when a sensor or neighbour was detecting
///   (or a sensor offline). The sensors are heard afresh: one still detecting keeps the boost.
///
/// Invariants: `outputs.level` is in 0...100; `nextDeadline` is the earliest instant at
/// which time alone can change the level (hold end, neighbour hold end, override expiry); the
/// control loop sleeps until it (`TicklessEquivalenceTests`).
/// `at` instants older than the last one seen are treated as the last one (no going back).
public struct LightingGroup: Sendable {
    /// Sensor reports for this group's presence sensors (by device name).
    public enum Input: Sendable, Equatable {
        /// A reading of a presence sensor; also means the sensor is online.
        case presence(sensor: String, detected: Bool)
        /// The sensor's device went offline (false) or answers again (true).
        case sensorOnline(sensor: String, online: Bool)
    }

    /// What the runner writes to every luminaire of the group (holding registers 0 and 1).
    public struct Outputs: Sendable, Equatable {
        /// Target level, % 0-100.
        public var level: Int
        /// Fade time to write with `level` (fade_up when the level rose, fade_down when it fell).
        public var fade: Duration
        /// `fade` in the luminaire's unit, 0.1 s (rounded, clamped to 0...65535).
        public init(level: Int, fade: Duration) {
            self.level = level
            self.fade = fade
        }
        public var fadeTenths: Int {
            let t = (fade.seconds * 10).rounded()
            return t <= 0 ? 0 : (t >= 65535 ? 65535 : Int(t))
        }
    }

    /// Why the level is what it is (event data `cause`).
    public enum Cause: String, Sendable, Equatable {
        case schedule
        case daylight
        case presence
        case neighbour
        case sensorOffline = "sensor_offline"
        case override
    }

    public let name: String
    public let boostLevel: Int
    public let hold: Duration
    public let fadeUp: Duration
    public let fadeDown: Duration

    private let sensorNames: [String]
    private var detecting: [Bool]
    private var online: [Bool]
    /// The sensor has reported (presence, or online/offline) since the group was built.
    private var heard: [Bool]
    /// Own hold end (after the last detection or offline period ended).
    private var holdUntil: MonotonicInstant?
    private var neighbourUntil: MonotonicInstant?
    /// Neighbour groups detecting now (reserved storage: no allocation below 8).
    private var activeNeighbours: [String] = []
    private var scheduleLevel = 100
    private var override: (level: Int, until: MonotonicInstant?)?
    private var anyPresence = false
    private var clock: MonotonicInstant?
    private var queue = EventQueue()

    public private(set) var outputs: Outputs
    /// Why the current level is what it is.
    public private(set) var cause: Cause = .schedule

    /// A group with the given sensors; levels are clamped to 0...100.
    public init(name: String, sensors: [String], boost: Int, hold: Duration, fadeUp: Duration, fadeDown: Duration) {
        self.name = name
        self.boostLevel = Self.clampLevel(boost)
        self.hold = hold
        self.fadeUp = fadeUp
        self.fadeDown = fadeDown
        self.sensorNames = sensors
        self.detecting = Array(repeating: false, count: sensors.count)
        self.online = Array(repeating: false, count: sensors.count)
        self.heard = Array(repeating: false, count: sensors.count)
        self.outputs = Outputs(level: 0, fade: fadeUp)
        self.activeNeighbours.reserveCapacity(8)
        let (level, cause) = computeLevel(now: nil)
        self.outputs.level = level
        self.cause = cause
    }

    /// A group built from its `lighting:` config entry.
    public init(config: LightingGroupConfig) {
        self.init(name: config.name, sensors: config.presence, boost: config.boost, hold: config.hold, fadeUp: config.fadeUp, fadeDown: config.fadeDown)
    }

    /// The schedule level in force (from `LightingSchedule.level(at:)`), 0 = off (daylight).
    public var schedule: Int { scheduleLevel }

    /// Whether the presence boost is active (detection, hold, offline sensor or neighbour).
    public var boosting: Bool { boostCause(now: clock) != nil }

    /// The override in force, if any.
    public var activeOverride: (level: Int, until: MonotonicInstant?)? { override }

    /// When `tick` must run next at the latest (nil: nothing pending).
    public var nextDeadline: MonotonicInstant? {
        var d: MonotonicInstant? = nil
        if !anyPresence && !anySensorOffline, let h = holdUntil { d = h }
        if let n = neighbourUntil { d = d.map { min($0, n) } ?? n }
        if let o = override?.until { d = d.map { min($0, o) } ?? o }
        return d
    }

    public mutating func handle(_ input: Input, at: MonotonicInstant) {
        let now = advance(to: at)
        switch input {
        case .presence(let sensor, let detected):
            guard let i = Self.index(of: sensor, in: sensorNames) else { return }
            let wasActive = sensorActive(i)
            online[i] = true
            heard[i] = true
            detecting[i] = detected
            if wasActive && !sensorActive(i) { extendHold(now + hold) }
        case .sensorOnline(let sensor, let isOnline):
            guard let i = Self.index(of: sensor, in: sensorNames) else { return }
            let wasActive = sensorActive(i)
            online[i] = isOnline
            heard[i] = true
            if !isOnline { detecting[i] = false }
            if wasActive && !sensorActive(i) { extendHold(now + hold) }
        }
        let presence = Self.any(detecting, true)
        if presence != anyPresence {
            anyPresence = presence
            queue.append(ControlEvent(at: now, source: name, kind: .presence(detected: presence)))
        }
        update(now: now)
    }

    public mutating func tick(at: MonotonicInstant) {
        update(now: advance(to: at))
    }

    /// Sets the schedule level (0 = off: daylight). Values are clamped to 0...100.
    public mutating func setSchedule(level: Int, at: MonotonicInstant) {
        let now = advance(to: at)
        scheduleLevel = Self.clampLevel(level)
        update(now: now)
    }

    /// A neighbouring group's presence: boost now and hold for `hold` from now.
    public mutating func neighbourBoost(at: MonotonicInstant) {
        let now = advance(to: at)
        let until = now + hold
        if neighbourUntil.map({ $0 < until }) ?? true { neighbourUntil = until }
        update(now: now)
    }

    /// A neighbouring group's presence started (`detected`) or ended: boost while it lasts,
    /// hold for `hold` after it ends. Pass the neighbour's `presence` events here.
    public mutating func neighbourPresence(from neighbour: String, detected: Bool, at: MonotonicInstant) {
        let now = advance(to: at)
        if let i = Self.index(of: neighbour, in: activeNeighbours) {
            if !detected {
                activeNeighbours.remove(at: i)
                let until = now + hold
                if neighbourUntil.map({ $0 < until }) ?? true { neighbourUntil = until }
            }
        } else if detected {
            activeNeighbours.append(neighbour)
        }
        update(now: now)
    }

    /// A centre or technician override: `level` until `until` (nil: until `release`).
    /// Replaces any previous override. Refused (`out_of_range`) for a level outside 0-100 or
    /// an expiry not in the future.
    @discardableResult
    public mutating func setOverride(level: Int, until: MonotonicInstant?, at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        guard CommandLimits.level.contains(level) else {
            return .refused(CommandError(.outOfRange, "lighting group \(name): level \(level) outside 0-100"))
        }
        if let until, until <= now {
            return .refused(CommandError(.outOfRange, "lighting group \(name): override expiry is not in the future"))
        }
        override = (level, until)
        update(now: now)
        return .accepted
    }

    /// Ends the override: back to schedule and presence. Accepted also without an override.
    @discardableResult
    public mutating func release(at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        override = nil
        update(now: now)
        return .accepted
    }

    /// What of a group outlives it over a reload (rules: "Carry-over" above). Durations are
    /// counted from the instant given to `carryOver(at:)` / `init(config:restoring:at:)`.
    public struct CarryOver: Sendable, Equatable {
        /// The override's level and what is left of it (nil: until `release`).
        public var override: (level: Int, remaining: Duration?)?
        /// How long the boost must go on without a new detection.
        public var boostRemaining: Duration?
        public init(override: (level: Int, remaining: Duration?)? = nil, boostRemaining: Duration? = nil) {
            self.override = override
            self.boostRemaining = boostRemaining
        }
        public static func == (a: CarryOver, b: CarryOver) -> Bool {
            a.override?.level == b.override?.level && a.override?.remaining == b.override?.remaining && a.boostRemaining == b.boostRemaining
        }
    }

    /// What a new group needs to carry on from this one at `at`; nil when nothing.
    public func carryOver(at: MonotonicInstant) -> CarryOver? {
        let now = clock.map { max($0, at) } ?? at
        var c = CarryOver()
        if let o = override, o.until.map({ $0 > now }) ?? true { c.override = (o.level, o.until.map { $0 - now }) }
        var boost: Duration? = nil
        func take(_ d: Duration) { if d > .zero, boost.map({ $0 < d }) ?? true { boost = d } }
        if anyPresence || anySensorOffline || !activeNeighbours.isEmpty { take(hold) }
        if let h = holdUntil { take(h - now) }
        if let n = neighbourUntil { take(n - now) }
        c.boostRemaining = boost
        return c == CarryOver() ? nil : c
    }

    /// A group built from its config entry that carries on from `c` at `at` (rules: "Carry-over").
    public init(config: LightingGroupConfig, restoring c: CarryOver, at: MonotonicInstant) {
        self.init(config: config)
        clock = at
        if let o = c.override, (0...100).contains(o.level) { override = (o.level, o.remaining.map { at + $0 }) }
        if let b = c.boostRemaining, b > .zero { holdUntil = at + b }
        update(now: at)
    }

    /// Takes the queued events (allocates only when there are some).
    public mutating func drainEvents() -> [ControlEvent] { queue.drain() }

    /// Appends the queued events to `buffer` (no allocation when it has room).
    public mutating func drainEvents(into buffer: inout [ControlEvent]) { queue.drain(into: &buffer) }

    // MARK: - internals

    private static func clampLevel(_ l: Int) -> Int { l < 0 ? 0 : (l > 100 ? 100 : l) }

    /// A sensor reported offline (one not heard from yet does not count).
    private var anySensorOffline: Bool {
        var i = 0
        while i < online.count {
            if heard[i] && !online[i] { return true }
            i += 1
        }
        return false
    }

    // Index loops: iterators and `contains`/`firstIndex` allocate (coroutine frames) in
    // unoptimised builds, and these run on every tick.
    private static func any(_ flags: [Bool], _ value: Bool) -> Bool {
        var i = 0
        while i < flags.count {
            if flags[i] == value { return true }
            i += 1
        }
        return false
    }

    private static func index(of name: String, in names: [String]) -> Int? {
        var i = 0
        while i < names.count {
            if names[i] == name { return i }
            i += 1
        }
        return nil
    }

    /// A sensor keeps the boost on while it detects or is (reported) offline.
    private func sensorActive(_ i: Int) -> Bool { detecting[i] || (heard[i] && !online[i]) }

    private mutating func extendHold(_ until: MonotonicInstant) {
        if holdUntil.map({ $0 < until }) ?? true { holdUntil = until }
    }

    private mutating func advance(to at: MonotonicInstant) -> MonotonicInstant {
        let now = clock.map { max($0, at) } ?? at
        clock = now
        return now
    }

    private func boostCause(now: MonotonicInstant?) -> Cause? {
        if anyPresence { return .presence }
        if anySensorOffline { return .sensorOffline }
        if !activeNeighbours.isEmpty { return .neighbour }
        if let now {
            if let h = holdUntil, now < h { return .presence }
            if let n = neighbourUntil, now < n { return .neighbour }
        }
        return nil
    }

    private func computeLevel(now: MonotonicInstant?) -> (Int, Cause) {
        if let o = override { return (o.level, .override) }
        if scheduleLevel == 0 { return (0, .daylight) }
        if let c = boostCause(now: now), boostLevel > scheduleLevel { return (boostLevel, c) }
        return (scheduleLevel, .schedule)
    }

    private mutating func update(now: MonotonicInstant) {
        // Expire what time has ended (keeps nextDeadline in the future).
        if let h = holdUntil, h <= now { holdUntil = nil }
        if let n = neighbourUntil, n <= now { neighbourUntil = nil }
        if let u = override?.until, u <= now { override = nil }
        let (level, newCause) = computeLevel(now: now)
        cause = newCause
        guard level != outputs.level else { return }
        let fade = level > outputs.level ? fadeUp : fadeDown
        outputs = Outputs(level: level, fade: fade)
        queue.append(ControlEvent(at: now, source: name, kind: .lightingLevel(level: level, fade: fade, cause: newCause)))
    }
}
