public import EdgeRuntime

/// The safety state machine of one retractable bollard. Pure logic: no I/O, no clock; the
/// runner feeds it the bollard's inputs and commands and writes `outputs` to the coils.
///
/// Rules (DESIGN.md "Safety rules / Bollards"), enforced here and again as a final mask on
/// the outputs:
/// - `motorUp` only while raising, after the warning lights (and buzzer) have been on for
///   `preWarning`, with the loop clear, the photocell clear, no emergency (input or
///   latched), no motor fault, the I/O online, the top not reached and the travel time not
///   exceeded. `motorUp` and `motorDown` are never both on.
/// - Motion starts only on a whole poll (`sensors`) sampled at or after the end of the
///   pre-warning that shows loop and photocell clear. Inputs are polled, so what is known
///   when the pre-warning ends can be a poll period old: a vehicle that entered the loop
///   since would be missed. The controller waits in the pre-warning (lights and buzzer on)
///   for that fresh poll; a poll's `at` is when it was begun (`DeviceReading.timestampNanos`).
/// - Sensor age: motion starts only on a poll begun at most `maxSensorAge` ago, and a running
///   motor (up or down) is cut as soon as the latest poll of the loop, photocell and end
///   switches is older than `maxSensorAge` (a stalled bus, a dead unit hogging the line, a
///   queue of writes): fault `sensors_stale`, alarm `sensor_stale` (critical). The movement is
///   not resumed: the next whole poll clears the alarm and the position is taken from the end
///   switches, as after lost contact (an emergency latched meanwhile lowers again then).
/// - A raise command is refused (`interlock`) while the loop is occupied or the photocell is
///   interrupted: the bollard never starts rising beneath a vehicle.
/// - Obstruction (loop or photocell) while raising: in the same call `motorUp` goes off and
///   `motorDown` on (a reversal). An obstruction during the pre-warning aborts the raise
///   before any motion; it counts as a reversal too. After `maxReversals` reversals the
///   bollard stays down until a new `raise` command.
/// - The motor is cut at the end-position input. A movement lasting `travelTimeout` is cut
///   and latches fault `travel_timeout` (alarm, major). From any fault only `lower`,
///   `holdDown` or `emergencyLower` are accepted (lowering is the safe direction); `raise`
///   is refused until the bollard has been confirmed down. The alarm clears when a later
///   movement reaches its end position.
/// - Motor fault input: every output off, fault `motor_fault` (alarm, critical; it clears
///   when the input clears, the fault stays latched until a lower command, or until the
///   input clears while an emergency is latched, which resumes the emergency lowering).
/// - Emergency (fire-brigade key input or `emergencyLower`) lowers at once, outranks every
///   command (`raise`, `lower`, `holdDown` are refused or no-ops) and holds until
///   `clearEmergency` is accepted, which needs the key input to be gone. After it the
///   bollard stays down until a new `raise` (the commanded mode is reset to down). The key
///   input latches even while the I/O is offline; lowering starts when contact returns.
///   From a latched fault, lowering is tried once per emergency (and per emergency command).
/// - Lost I/O contact (`ioOnline(false)`): every output off, alarm `io_lost` (critical),
///   every command refused with `device_offline`. An interrupted movement is not resumed:
///   when contact returns the position is taken from the end switches (both or neither =
///   fault `position_unknown`, which a `lower` command or an end switch resolves).
///   Latched faults survive the outage. The controller starts in that state (no contact yet).
/// - Auto-raise (`autoRaiseAfter` set) only while the commanded mode is up (after a `raise`
///   command), when the bollard is down and armed: a vehicle has passed after the lowering
///   (loop occupied, then clear), or a `holdDown` period has ended, or a raise was reversed;
///   then loop and photocell must stay clear for `autoRaiseAfter` (counted from the later of
///   the arming and the last clearing). A `lower` command is access for one vehicle; a
///   `holdDown(d)` keeps the bollard down for `d`. Auto-raise goes through the pre-warning.
/// - The traffic light shows green only when the bollard is confirmed fully down (bottom
///   switch, not top, at rest, I/O online, no motor fault); red otherwise.
///
/// Carry-over (a reload builds a new controller from `carryOver(at:)`; a restart from what
/// `SafetyStateStore` kept of it):
/// - Kept: the emergency latch (lowering is tried again when contact returns, so a bollard
///   found up is lowered and `raise` stays refused until `clearEmergency`), the latched faults
///   `travel_timeout` (its alarm raised again) and `motor_fault` (only a lower or an emergency
///   ends them, as before), and what is left of a `holdDown` (at most 24 h). The commanded mode
///   (`raise`) is kept over a reload only: after a restart a bollard never rises by itself.
/// - Not kept: the phase, the inputs, the reversal count, the auto-raise arming, and the
///   other alarms (judged afresh on the first poll). The controller starts without contact.
/// - A movement is never resumed. A bollard that was moving or in a raise's pre-warning when
///   its controller was replaced (`interrupted`; after a restart every bollard counts as such,
///   since the agent cannot know) is driven to "lowered": at first contact, found between its
///   end positions it lowers (motor down to the bottom switch, warning lights on, under the
///   usual rules: fresh polls, travel timeout, motor fault input), found at an end it stays
///   there; both end switches on is `position_unknown`. A raise so abandoned is not retried:
///   the commanded mode goes to down. Lowering is the one direction that can hurt no one (the
///   rule above: from any fault only lowering is accepted), and a half-raised bollard blocks the
///   lane while telling drivers nothing. A latched fault is not moved: it still needs a lower.
///
/// `at` instants older than the last one seen are treated as the last one. `nextDeadline` is
/// the pre-warning end, the travel timeout or the sensor-age limit of a movement, a hold-down
/// end or an auto-raise; the control loop sleeps until it (`TicklessEquivalenceTests`).
public struct BollardController: Sendable {
    /// The position/mode reported as telemetry `position` and in `bollard.state` events.
    public enum Position: String, Sendable, Equatable {
        case up, down, raising, lowering, fault
        case emergencyDown = "emergency_down"
    }

    /// Why the position changed (event data `cause`).
    public enum Cause: String, Sendable, Equatable {
        case command
        case autoRaise = "auto_raise"
        case preWarningDone = "pre_warning_done"
        case endPosition = "end_position"
        case reversal
        case reversalLimit = "reversal_limit"
        case travelTimeout = "travel_timeout"
        case motorFault = "motor_fault"
        case emergency
        case emergencyCleared = "emergency_cleared"
        case ioLost = "io_lost"
        case ioRestored = "io_restored"
        case holdExpired = "hold_expired"
        case switches
        case sensorsStale = "sensors_stale"
        /// A movement interrupted by a reload or a restart: lowered (rules: "Carry-over").
        case interrupted
    }

    /// Why the bollard is in fault.
    public enum FaultReason: Sendable, Equatable {
        /// No I/O contact (at start, or lost); not latched.
        case noContact
        /// A movement did not reach its end position in time (latched).
        case travelTimeout(raising: Bool)
        /// The motor fault input was set (latched).
        case motorFault
        /// Neither or both end switches after contact came back.
        case positionUnknown
        /// The motor was cut because its inputs were older than `maxSensorAge`; not latched.
        case sensorsStale
    }

    /// A fault that only a lower command (or an emergency) ends; what a restart keeps.
    public enum LatchedFault: String, Sendable, Equatable, CaseIterable {
        case travelTimeoutRaising = "travel_timeout_raising"
        case travelTimeoutLowering = "travel_timeout_lowering"
        case motorFault = "motor_fault"
    }

    /// What of a bollard's state outlives its controller (rules: "Carry-over" above). Durations
    /// are counted from the instant given to `carryOver(at:)` / `init(config:restoring:at:)`.
    public struct CarryOver: Sendable, Equatable {
        /// Emergency lowering latched, until `clearEmergency`.
        public var emergencyLatched = false
        public var latchedFault: LatchedFault?
        /// What is left of a `holdDown` period.
        public var holdRemaining: Duration?
        /// The commanded mode is up (kept over a reload, never over a restart).
        public var commandedUp = false
        /// The bollard may have been moving: lowered if found between its end positions.
        public var interrupted = false
        public init(emergencyLatched: Bool = false, latchedFault: LatchedFault? = nil, holdRemaining: Duration? = nil,
                    commandedUp: Bool = false, interrupted: Bool = false) {
            self.emergencyLatched = emergencyLatched
            self.latchedFault = latchedFault
            self.holdRemaining = holdRemaining
            self.commandedUp = commandedUp
            self.interrupted = interrupted
        }
        /// Only what a restart keeps (the people-protecting part): nil when there is nothing.
        public var durable: CarryOver? {
            let d = CarryOver(emergencyLatched: emergencyLatched, latchedFault: latchedFault, holdRemaining: holdRemaining)
            return d == CarryOver() ? nil : d
        }
    }

    /// The part of the state a restart keeps, with the hold as an instant: compared at every
    /// step to tell when it must be written again (allocates nothing).
    public struct DurableKey: Sendable, Equatable {
        var emergencyLatched: Bool
        var latchedFault: LatchedFault?
        var holdUntil: MonotonicInstant?
    }

    /// All discrete inputs of the bollard (one Modbus poll).
    public struct Sensors: Sendable, Equatable {
        public var atTop = false
        public var atBottom = false
        public var loopOccupied = false
        public var photocellInterrupted = false
        public var motorFault = false
        public var emergencyInput = false
        public init(atTop: Bool = false, atBottom: Bool = false, loopOccupied: Bool = false, photocellInterrupted: Bool = false, motorFault: Bool = false, emergencyInput: Bool = false) {
            self.atTop = atTop
            self.atBottom = atBottom
            self.loopOccupied = loopOccupied
            self.photocellInterrupted = photocellInterrupted
            self.motorFault = motorFault
            self.emergencyInput = emergencyInput
        }
    }

    /// What the runner reports: a whole Modbus poll, or single edges (GPIO-wired inputs).
    public enum Input: Sendable, Equatable {
        /// A whole poll of the inputs; also means the I/O answers (online).
        case sensors(Sensors)
        case atTop(Bool)
        case atBottom(Bool)
        case loopOccupied(Bool)
        case photocellInterrupted(Bool)
        case emergencyInput(Bool)
        case motorFault(Bool)
        /// The bollard's I/O answers (true) or not (false).
        case ioOnline(Bool)
    }

    /// The coils and the traffic light. All false is the safe state.
    public struct Outputs: Sendable, Equatable {
        public var motorUp = false
        public var motorDown = false
        public var warningLights = false
        public var buzzer = false
        /// Traffic light green (else red).
        public var trafficGreen = false
        public init() {}
    }

    private enum Phase: Equatable {
        case unknown
        case down
        case preWarning(since: MonotonicInstant)
        case rising(warnSince: MonotonicInstant, motionSince: MonotonicInstant)
        case up
        case lowering(since: MonotonicInstant)
        case fault(FaultReason)
    }

    public let name: String
    public let preWarning: Duration
    public let travelTimeout: Duration
    public let autoRaiseAfter: Duration?
    public let maxReversals: Int
    /// The oldest poll a movement may start or continue on.
    public let maxSensorAge: Duration
    /// The default `maxSensorAge`: six polls at the bollards' 50 ms period.
    public static let defaultMaxSensorAge = Duration.milliseconds(300)

    public private(set) var sensors = Sensors()
    public private(set) var ioOnline = false
    public private(set) var outputs = Outputs()
    /// Emergency lowering latched (input or command), until `clearEmergency`.
    public private(set) var emergencyLatched = false
    /// The commanded mode is up (a `raise` was accepted and not superseded by an emergency).
    public private(set) var commandedUp = false
    /// Reversals since the last `raise` command or the last completed rise.
    public private(set) var reversals = 0
    /// End of a `holdDown` period.
    public private(set) var holdUntil: MonotonicInstant?
    /// When the latest whole poll (`Input.sensors`) was begun, as given (not clamped to the
    /// controller's clock): what motion may start on.
    public private(set) var lastPollAt: MonotonicInstant?
    /// The latest edge of a GPIO-wired input (live lines: every input known as of then).
    public private(set) var lastInputsAt: MonotonicInstant?

    private var phase: Phase = .unknown
    private var armedAt: MonotonicInstant?
    private var clearSince: MonotonicInstant?
    /// An emergency latched while the I/O was offline: try lowering when it answers again.
    private var emergencyRetryPending = false
    /// Carried over from an interrupted movement: at first contact, between the end
    /// positions means lower (instead of `position_unknown`).
    private var lowerIfBetween = false
    private var alarms = AlarmFlags()
    private var cause: Cause = .command
    private var clock: MonotonicInstant?
    private var queue = EventQueue()

    private struct AlarmFlags: Equatable {
        var ioLost = false
        var travelTimeout = false
        var motorFault = false
        var positionUnknown = false
        var sensorStale = false
    }

    public init(name: String, preWarning: Duration, travelTimeout: Duration, autoRaiseAfter: Duration?, maxReversals: Int = 3,
                maxSensorAge: Duration = BollardController.defaultMaxSensorAge) {
        self.name = name
        self.preWarning = preWarning
        self.travelTimeout = travelTimeout
        self.autoRaiseAfter = autoRaiseAfter
        self.maxReversals = max(1, maxReversals)
        self.maxSensorAge = maxSensorAge
    }

    /// A controller built from its `bollards:` config entry.
    public init(config: BollardConfig) {
        self.init(name: config.name, preWarning: config.preWarning, travelTimeout: config.travelTimeout, autoRaiseAfter: config.autoRaiseAfter,
                  maxReversals: config.maxReversals, maxSensorAge: config.maxSensorAge)
    }

    /// A controller that starts from a carried-over state at `at` (rules: "Carry-over" above):
    /// without contact, like a new one, but with the latches, the hold and the lowering of an
    /// interrupted movement waiting for the first poll.
    public init(config: BollardConfig, restoring c: CarryOver, at: MonotonicInstant) {
        self.init(config: config)
        clock = at
        emergencyLatched = c.emergencyLatched
        emergencyRetryPending = c.emergencyLatched
        switch c.latchedFault {
        case .travelTimeoutRaising?: enterFault(.travelTimeout(raising: true), now: at)
        case .travelTimeoutLowering?: enterFault(.travelTimeout(raising: false), now: at)
        case .motorFault?: enterFault(.motorFault, now: at)
        case nil: break
        }
        if let h = c.holdRemaining, h > .zero, !c.emergencyLatched { holdUntil = at + min(h, Self.maxHold) }
        lowerIfBetween = c.interrupted && c.latchedFault == nil
        commandedUp = c.commandedUp && !c.emergencyLatched
    }

    /// What a new controller needs to carry on from this one at `at` (rules: "Carry-over").
    public func carryOver(at: MonotonicInstant) -> CarryOver {
        let now = clock.map { max($0, at) } ?? at
        var c = CarryOver(emergencyLatched: emergencyLatched, latchedFault: latchedFault, commandedUp: commandedUp)
        if let h = holdUntil, h > now { c.holdRemaining = h - now }
        switch phase {
        case .preWarning, .rising:
            c.interrupted = true
            c.commandedUp = false   // the raise is abandoned, not retried
        case .lowering: c.interrupted = true
        case .unknown: c.interrupted = lowerIfBetween
        default: break
        }
        return c
    }

    /// What a restart keeps, as of now (see `DurableKey`).
    public var durableKey: DurableKey { DurableKey(emergencyLatched: emergencyLatched, latchedFault: latchedFault, holdUntil: holdUntil) }

    /// The latched fault in force, if any.
    public var latchedFault: LatchedFault? {
        switch phase {
        case .fault(.travelTimeout(let raising)): raising ? .travelTimeoutRaising : .travelTimeoutLowering
        case .fault(.motorFault): .motorFault
        default: nil
        }
    }

    /// The longest `holdDown`.
    public static let maxHold = CommandLimits.maxHoldDown

    /// The position reported to the centre.
    public var position: Position {
        if emergencyLatched, !isFault { return .emergencyDown }
        switch phase {
        case .unknown, .fault: return .fault
        case .down: return .down
        case .preWarning, .rising: return .raising
        case .up: return .up
        case .lowering: return .lowering
        }
    }

    /// The fault reason while `position` is `fault` (or an emergency is latched on a fault).
    public var fault: FaultReason? {
        switch phase {
        case .unknown: .noContact
        case .fault(let r): r
        default: nil
        }
    }

    /// When `tick` must run next at the latest.
    public var nextDeadline: MonotonicInstant? {
        switch phase {
        case .preWarning(let since):
            // Pre-warning done: what remains is waiting for a fresh poll, which arrives as an input.
            if let c = clock, c >= since + preWarning { return nil }
            return since + preWarning
        case .rising(_, let m): return min(m + travelTimeout, staleAt ?? m + travelTimeout)
        case .lowering(let m): return min(m + travelTimeout, staleAt ?? m + travelTimeout)
        case .down:
            if let h = holdUntil { return h }
            return autoRaiseTime
        default: return nil
        }
    }

    // MARK: - inputs

    public mutating func handle(_ input: Input, at: MonotonicInstant) {
        let now = advance(to: at)
        let before = position
        let wasClear = !sensors.loopOccupied && !sensors.photocellInterrupted
        let wasLoop = sensors.loopOccupied
        switch input {
        case .sensors(let s):
            sensors = s
            if lastPollAt.map({ at > $0 }) ?? true { lastPollAt = at }
            setOnline(true, now: now)
            if isFresh(now: now) { sensorsFresh(now: now) }
        case .atTop(let v): sensors.atTop = v; inputsLive(at: at)
        case .atBottom(let v): sensors.atBottom = v; inputsLive(at: at)
        case .loopOccupied(let v): sensors.loopOccupied = v; inputsLive(at: at)
        case .photocellInterrupted(let v): sensors.photocellInterrupted = v; inputsLive(at: at)
        case .emergencyInput(let v): sensors.emergencyInput = v; inputsLive(at: at)
        case .motorFault(let v): sensors.motorFault = v; inputsLive(at: at)
        case .ioOnline(let v): setOnline(v, now: now)
        }
        // Clear-time bookkeeping for auto-raise.
        let isClear = !sensors.loopOccupied && !sensors.photocellInterrupted
        if !isClear { clearSince = nil } else if !wasClear || clearSince == nil { clearSince = now }
        // A vehicle passed (loop occupied, then clear) while down or lowering: arm auto-raise.
        if wasLoop, !sensors.loopOccupied, commandedUp, !emergencyLatched {
            switch phase {
            case .down, .lowering: armedAt = now
            default: break
            }
        }
        evaluate(now: now)
        finish(before: before, now: now)
    }

    public mutating func tick(at: MonotonicInstant) {
        let now = advance(to: at)
        let before = position
        evaluate(now: now)
        finish(before: before, now: now)
    }

    // MARK: - commands

    /// Raise (commanded mode up). Refused while offline, in emergency, in fault, or with the
    /// loop occupied or the photocell interrupted. A no-op when up or already raising.
    @discardableResult
    public mutating func raise(at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        let before = position
        evaluate(now: now)
        if let refusal = commonRefusal() ?? raiseRefusal() {
            finish(before: before, now: now)
            return .refused(refusal)
        }
        commandedUp = true
        reversals = 0
        armedAt = nil
        holdUntil = nil
        switch phase {
        case .down, .lowering:
            cause = .command
            phase = .preWarning(since: now)
        default: break
        }
        evaluate(now: now)
        finish(before: before, now: now)
        return .accepted
    }

    /// Lower for one vehicle (the commanded mode stays; auto-raise after it has passed).
    @discardableResult
    public mutating func lower(at: MonotonicInstant) -> ControlOutcome {
        lowerCommand(hold: nil, at: at)
    }

    /// Lower and keep down for `duration` (then auto-raise as after a vehicle, if the
    /// commanded mode is up). Refused (`out_of_range`) unless 0 < duration <= `CommandLimits.maxHoldDown` (24 h).
    @discardableResult
    public mutating func holdDown(_ duration: Duration, at: MonotonicInstant) -> ControlOutcome {
        guard duration > .zero, duration <= CommandLimits.maxHoldDown else {
            return .refused(CommandError(.outOfRange, "bollard \(name): hold_down duration \(duration) outside 0-24 h"))
        }
        return lowerCommand(hold: duration, at: at)
    }

    /// Emergency lowering: outranks everything, holds until `clearEmergency`.
    @discardableResult
    public mutating func emergencyLower(at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        let before = position
        evaluate(now: now)
        if let r = offlineRefusal() {
            finish(before: before, now: now)
            return .refused(r)
        }
        latchEmergency(now: now, retryFault: true)
        evaluate(now: now)
        finish(before: before, now: now)
        return .accepted
    }

    /// Ends a latched emergency (local technician or authorised centre). Refused while the
    /// emergency key input is still active. The bollard then stays down until a `raise`.
    @discardableResult
    public mutating func clearEmergency(at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        let before = position
        evaluate(now: now)
        if let r = offlineRefusal() {
            finish(before: before, now: now)
            return .refused(r)
        }
        if sensors.emergencyInput {
            finish(before: before, now: now)
            return .refused(CommandError(.interlock, "bollard \(name): emergency key input still active"))
        }
        if emergencyLatched {
            emergencyLatched = false
            commandedUp = false
            armedAt = nil
            cause = .emergencyCleared
        }
        evaluate(now: now)
        finish(before: before, now: now)
        return .accepted
    }

    /// Takes the queued events (allocates only when there are some).
    public mutating func drainEvents() -> [ControlEvent] { queue.drain() }
    public mutating func drainEvents(into buffer: inout [ControlEvent]) { queue.drain(into: &buffer) }

    // MARK: - internals

    private var isFault: Bool {
        switch phase {
        case .fault, .unknown: true
        default: false
        }
    }

    private var autoRaiseTime: MonotonicInstant? {
        guard let after = autoRaiseAfter, commandedUp, !emergencyLatched, ioOnline, !sensors.motorFault, sensors.atBottom, !sensors.atTop,
              reversals < maxReversals, holdUntil == nil, let armed = armedAt, let clear = clearSince
        else { return nil }
        return max(armed, clear) + after
    }

    private mutating func advance(to at: MonotonicInstant) -> MonotonicInstant {
        let now = clock.map { max($0, at) } ?? at
        clock = now
        return now
    }

    /// An edge of a GPIO-wired input: those lines are read live (the kernel reports every
    /// change), so every input is known as of `at` for the age rule. (It is not a whole poll
    /// for the start-of-motion rule: that needs `sensors`.)
    private mutating func inputsLive(at: MonotonicInstant) {
        if let f = lastInputsAt, at <= f { return }
        lastInputsAt = at
        if let now = clock, isFresh(now: now) { sensorsFresh(now: now) }
    }

    /// The first instant at which the inputs are too old to move on.
    private var staleAt: MonotonicInstant? { inputsAt.map { $0 + maxSensorAge + .nanoseconds(1) } }

    /// When every input was last known: the latest whole poll or live edge.
    private var inputsAt: MonotonicInstant? {
        switch (lastPollAt, lastInputsAt) {
        case (let p?, let e?): max(p, e)
        case (let p, let e): p ?? e
        }
    }

    /// The inputs are young enough to start or continue a movement on.
    private func isFresh(now: MonotonicInstant) -> Bool {
        guard let t = inputsAt else { return false }
        return now - t <= maxSensorAge
    }

    /// A fresh poll after the motor was cut for stale inputs: the movement is not resumed;
    /// the position is taken from the end switches (`step` from `.unknown`).
    private mutating func sensorsFresh(now: MonotonicInstant) {
        guard case .fault(.sensorsStale) = phase else { return }
        setAlarm(.sensorStale, false, .critical, "bollard \(name): inputs polled again, position from the end switches", now: now)
        phase = .unknown
        if emergencyLatched { emergencyRetryPending = true }
    }

    private func offlineRefusal() -> CommandError? {
        ioOnline ? nil : CommandError(.deviceOffline, "bollard \(name): I/O not reachable")
    }

    private func commonRefusal() -> CommandError? {
        if let r = offlineRefusal() { return r }
        if emergencyLatched { return CommandError(.interlock, "bollard \(name): emergency lowering active, clear the emergency first") }
        if sensors.motorFault { return CommandError(.interlock, "bollard \(name): motor fault input active") }
        return nil
    }

    private func raiseRefusal() -> CommandError? {
        if case .fault(let r) = phase {
            return CommandError(.interlock, "bollard \(name): in fault (\(Self.describe(r))), lower it first")
        }
        if sensors.loopOccupied { return CommandError(.interlock, "bollard \(name): vehicle loop occupied") }
        if sensors.photocellInterrupted { return CommandError(.interlock, "bollard \(name): photocell interrupted") }
        return nil
    }

    private mutating func lowerCommand(hold: Duration?, at: MonotonicInstant) -> ControlOutcome {
        let now = advance(to: at)
        let before = position
        evaluate(now: now)
        if let r = offlineRefusal() {
            finish(before: before, now: now)
            return .refused(r)
        }
        if emergencyLatched {
            // Already lowering or down and held: consistent with the command.
            finish(before: before, now: now)
            return .accepted
        }
        if sensors.motorFault {
            finish(before: before, now: now)
            return .refused(CommandError(.interlock, "bollard \(name): motor fault input active"))
        }
        armedAt = nil
        holdUntil = hold.map { now + $0 }
        cause = .command
        switch phase {
        case .down, .lowering: break
        default: startLowering(now: now)
        }
        evaluate(now: now)
        finish(before: before, now: now)
        return .accepted
    }

    private mutating func startLowering(now: MonotonicInstant) {
        if sensors.atBottom && !sensors.atTop { phase = .down } else { phase = .lowering(since: now) }
    }

    private mutating func setOnline(_ online: Bool, now: MonotonicInstant) {
        if !online {
            if ioOnline || !alarms.ioLost {
                setAlarm(.ioLost, true, .critical, "bollard \(name): I/O not reachable, all outputs off", now: now)
            }
            ioOnline = false
            switch phase {
            case .fault(let r) where r != .noContact: break
            default:
                if phase != .unknown { cause = .ioLost }
                phase = .unknown
            }
            armedAt = nil
        } else if !ioOnline {
            ioOnline = true
            if alarms.ioLost {
                setAlarm(.ioLost, false, .critical, "bollard \(name): I/O answers again", now: now)
            }
            cause = .ioRestored
        }
    }

    /// Latches the emergency and starts lowering. From a fault (but a motor fault with its
    /// input set) lowering is tried when the emergency begins, on each emergency command,
    /// and when I/O contact returns after an emergency latched while it was lost.
    private mutating func latchEmergency(now: MonotonicInstant, retryFault: Bool) {
        let retry = retryFault || !emergencyLatched
        if !emergencyLatched {
            emergencyLatched = true
            cause = .emergency
        }
        commandedUp = false
        armedAt = nil
        holdUntil = nil
        // No motion without I/O: retry when contact returns.
        guard ioOnline else {
            emergencyRetryPending = true
            return
        }
        switch phase {
        case .preWarning, .rising, .up:
            startLowering(now: now)
        case .fault(let r) where retry && !sensors.motorFault && r != .noContact:
            cause = .emergency
            startLowering(now: now)
        default: break
        }
    }

    private mutating func enterFault(_ r: FaultReason, now: MonotonicInstant) {
        phase = .fault(r)
        switch r {
        case .travelTimeout(let raising):
            cause = .travelTimeout
            setAlarm(.travelTimeout, true, .major,
                     "bollard \(name): \(raising ? "top" : "bottom") not reached within travel timeout \(travelTimeout), motor cut", now: now)
        case .motorFault:
            cause = .motorFault
        case .positionUnknown:
            cause = .switches
            let s = sensors.atTop ? "both end switches on" : "neither end switch on"
            setAlarm(.positionUnknown, true, .major, "bollard \(name): position unknown (\(s))", now: now)
        case .noContact, .sensorsStale:
            break
        }
    }

    private mutating func reachedEnd(_ p: Phase, now: MonotonicInstant) {
        phase = p
        cause = .endPosition
        if alarms.travelTimeout {
            setAlarm(.travelTimeout, false, .major, "bollard \(name): end position reached again", now: now)
        }
    }

    /// Applies every rule until the phase is stable.
    private mutating func evaluate(now: MonotonicInstant) {
        // Motor fault alarm follows the input; the fault itself latches.
        if sensors.motorFault != alarms.motorFault, ioOnline {
            setAlarm(.motorFault, sensors.motorFault, .critical,
                     sensors.motorFault ? "bollard \(name): motor fault input set, all outputs off" : "bollard \(name): motor fault input cleared", now: now)
        }
        // The key input latches even while the outputs cannot be written.
        if sensors.emergencyInput { latchEmergency(now: now, retryFault: false) }
        guard ioOnline else { return }
        if sensors.motorFault {
            switch phase {
            case .fault(.motorFault): break
            default: enterFault(.motorFault, now: now)
            }
        }
        settle(now: now)
        if emergencyRetryPending {
            emergencyRetryPending = false
            latchEmergency(now: now, retryFault: true)
            settle(now: now)
        }
    }

    private mutating func settle(now: MonotonicInstant) {
        for _ in 0..<6 {
            let old = phase
            step(now: now)
            if phase == old { break }
        }
    }

    private mutating func step(now: MonotonicInstant) {
        let s = sensors
        let obstructed = s.loopOccupied || s.photocellInterrupted
        switch phase {
        case .unknown:
            cause = .ioRestored
            if s.atBottom && !s.atTop {
                phase = .down
            } else if s.atTop && !s.atBottom {
                phase = .up
            } else if lowerIfBetween, !s.atTop {
                cause = .interrupted
                phase = .lowering(since: now)
            } else {
                enterFault(.positionUnknown, now: now)
            }
            lowerIfBetween = false
        case .preWarning(let since):
            if emergencyLatched {
                cause = .emergency
                startLowering(now: now)
            } else if obstructed {
                reverse(now: now)
            } else if now - since >= preWarning, hasFreshPoll(since: since), isFresh(now: now) {
                cause = .preWarningDone
                phase = .rising(warnSince: since, motionSince: now)
            }
        case .rising where !isFresh(now: now), .lowering where !isFresh(now: now):
            let age = inputsAt.map { "\(now - $0)" } ?? "no poll"
            setAlarm(.sensorStale, true, .critical,
                     "bollard \(name): loop, photocell and end switches not polled for \(age) (limit \(maxSensorAge)), motor cut", now: now)
            cause = .sensorsStale
            phase = .fault(.sensorsStale)
            if emergencyLatched { emergencyRetryPending = true }
        case .rising(_, let motion):
            if emergencyLatched {
                cause = .emergency
                phase = .lowering(since: now)
            } else if obstructed {
                reverse(now: now)
            } else if s.atTop {
                reversals = 0
                reachedEnd(.up, now: now)
            } else if now - motion >= travelTimeout {
                enterFault(.travelTimeout(raising: true), now: now)
            }
        case .lowering(let motion):
            if s.atBottom {
                reachedEnd(.down, now: now)
            } else if now - motion >= travelTimeout {
                enterFault(.travelTimeout(raising: false), now: now)
            }
        case .up:
            if emergencyLatched {
                cause = .emergency
                phase = .lowering(since: now)
            } else if s.atBottom && !s.atTop {
                cause = .switches
                phase = .down
            }
        case .down:
            if s.atTop && !s.atBottom {
                cause = .switches
                phase = .up
                return
            }
            if let h = holdUntil, now >= h {
                holdUntil = nil
                if commandedUp, !emergencyLatched { armedAt = h }
            }
            if let t = autoRaiseTime, now >= t {
                cause = .autoRaise
                armedAt = nil
                phase = .preWarning(since: now)
            }
        case .fault(let r):
            switch r {
            case .motorFault where !s.motorFault && emergencyLatched:
                cause = .emergency
                startLowering(now: now)
            case .positionUnknown:
                if s.atBottom != s.atTop {
                    setAlarm(.positionUnknown, false, .major, "bollard \(name): end switch reports a position again", now: now)
                    cause = .switches
                    phase = s.atBottom ? .down : .up
                    if emergencyLatched, s.atTop { phase = .lowering(since: now) }
                }
            default: break
            }
        }
        if case .fault = phase {} else if alarms.positionUnknown {
            setAlarm(.positionUnknown, false, .major, "bollard \(name): position known again", now: now)
        }
    }

    /// A whole poll begun at or after the end of the pre-warning that started at `since`.
    private func hasFreshPoll(since: MonotonicInstant) -> Bool {
        guard let p = lastPollAt else { return false }
        return p >= since + preWarning
    }

    /// Obstruction while raising: back down at once; count it.
    private mutating func reverse(now: MonotonicInstant) {
        reversals += 1
        if reversals >= maxReversals {
            cause = .reversalLimit
            armedAt = nil
        } else {
            cause = .reversal
            armedAt = now
        }
        startLowering(now: now)
    }

    private enum AlarmKind { case ioLost, travelTimeout, motorFault, positionUnknown, sensorStale }

    private mutating func setAlarm(_ kind: AlarmKind, _ on: Bool, _ severity: ControlEvent.Severity, _ message: String, now: MonotonicInstant) {
        let code: ControlEvent.AlarmCode
        let current: Bool
        switch kind {
        case .ioLost: code = .ioLost; current = alarms.ioLost; alarms.ioLost = on
        case .travelTimeout: code = .travelTimeout; current = alarms.travelTimeout; alarms.travelTimeout = on
        case .motorFault: code = .motorFault; current = alarms.motorFault; alarms.motorFault = on
        case .positionUnknown: code = .positionUnknown; current = alarms.positionUnknown; alarms.positionUnknown = on
        case .sensorStale: code = .sensorStale; current = alarms.sensorStale; alarms.sensorStale = on
        }
        guard current != on else { return }
        queue.append(ControlEvent(at: now, source: name, kind: .alarm(.init(code: code, active: on, severity: severity, message: message))))
    }

    /// Computes the outputs from the phase, masked by every interlock, and emits the
    /// position event.
    private mutating func finish(before: Position, now: MonotonicInstant) {
        var o = Outputs()
        let s = sensors
        if ioOnline && !s.motorFault {
            switch phase {
            case .preWarning:
                o.warningLights = true
                o.buzzer = true
            case .rising(let warn, let motion):
                o.warningLights = true
                o.buzzer = true
                o.motorUp = !s.loopOccupied && !s.photocellInterrupted && !s.emergencyInput && !emergencyLatched
                    && !s.atTop && now - warn >= preWarning && now - motion < travelTimeout && hasFreshPoll(since: warn) && isFresh(now: now)
            case .lowering(let motion):
                o.warningLights = true
                o.motorDown = !s.atBottom && now - motion < travelTimeout && isFresh(now: now)
            case .down:
                o.trafficGreen = s.atBottom && !s.atTop
            default:
                break
            }
        }
        if o.motorUp && o.motorDown { o.motorUp = false }
        outputs = o
        let after = position
        if after != before {
            queue.append(ControlEvent(at: now, source: name, kind: .bollardState(from: before, to: after, cause: cause)))
        }
    }

    private static func describe(_ r: FaultReason) -> String {
        switch r {
        case .noContact: "no I/O contact"
        case .travelTimeout(let up): "travel timeout while \(up ? "raising" : "lowering")"
        case .motorFault: "motor fault"
        case .positionUnknown: "position unknown"
        case .sensorsStale: "inputs not polled in time"
        }
    }
}
