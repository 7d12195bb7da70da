import EdgeAgent
import EdgeRuntime
import Testing

@Suite struct BollardTests {
    typealias Clock = ControlTest.Clock
    typealias S = BollardController.Sensors

    static let down = S(atBottom: true)
    static let top = S(atTop: true)
    static let midway = S()

    /// pre-warning 3 s, travel timeout 8 s, auto-raise after 10 s, 3 reversals; at rest down.
    /// The other rules are tested with sparse inputs, so the sensor-age limit is set out of
    /// their way (60 s) unless given; `SensorAgeTests` tests it at its default.
    static func make(_ clock: Clock, autoRaise: Duration? = .seconds(10), maxSensorAge: Duration = .seconds(60)) -> BollardController {
        var b = BollardController(config: BollardConfig(name: "bollard-1", preWarning: .seconds(3), travelTimeout: .seconds(8), autoRaiseAfter: autoRaise,
                                                        maxSensorAge: maxSensorAge))
        b.handle(.sensors(down), at: clock.now)
        _ = b.drainEvents()
        return b
    }

    /// Raised and at rest up (commanded mode up).
    static func makeUp(_ clock: inout Clock) -> BollardController {
        var b = make(clock)
        #expect(b.raise(at: clock.now) == .accepted)
        clock.advance(.seconds(3))
        b.tick(at: clock.now)
        b.handle(.sensors(midway), at: clock.plus(0.5))
        clock.advance(.seconds(4))
        b.handle(.sensors(top), at: clock.now)
        #expect(b.position == .up)
        _ = b.drainEvents()
        return b
    }

    static func refusal(_ o: ControlOutcome) -> CommandError? {
        if case .refused(let r) = o { return r }
        return nil
    }

    @Test func startsWithoutContactThenTakesPositionFromSwitches() {
        let clock = Clock()
        var b = BollardController(name: "bollard-1", preWarning: .seconds(3), travelTimeout: .seconds(8), autoRaiseAfter: nil)
        #expect(b.position == .fault)
        #expect(b.fault == .noContact)
        #expect(Self.refusal(b.raise(at: clock.now))?.code == .deviceOffline)
        b.handle(.sensors(Self.down), at: clock.now)
        #expect(b.position == .down)
        #expect(b.outputs.trafficGreen, "confirmed fully down: green")
        let e = b.drainEvents()
        #expect(e.map(\.kind) == [.bollardState(from: .fault, to: .down, cause: .ioRestored)])
    }

    @Test func raiseWarnsForPreWarningBeforeMotorUp() {
        var clock = Clock()
        var b = Self.make(clock)
        #expect(b.raise(at: clock.now) == .accepted)
        #expect(b.position == .raising)
        #expect(b.outputs.warningLights && b.outputs.buzzer)
        #expect(!b.outputs.motorUp)
        #expect(!b.outputs.trafficGreen, "red as soon as raising starts")
        #expect(b.nextDeadline == clock.plus(3))
        b.tick(at: clock.plus(2.999))
        #expect(!b.outputs.motorUp, "warning on for less than pre_warning")
        clock.advance(.seconds(3))
        b.tick(at: clock.now)
        #expect(!b.outputs.motorUp, "no poll begun since the pre-warning ended: the loop may have been entered since")
        #expect(b.outputs.warningLights && b.outputs.buzzer && b.position == .raising)
        #expect(b.nextDeadline == nil, "waiting for a poll, which arrives as an input")
        b.handle(.sensors(Self.down), at: clock.plus(-0.001))
        #expect(!b.outputs.motorUp, "a poll begun 1 ms before the end of the pre-warning is not enough")
        b.handle(.sensors(Self.down), at: clock.now)
        #expect(b.outputs.motorUp && !b.outputs.motorDown)
        #expect(b.nextDeadline == clock.plus(8), "travel timeout")
        b.handle(.atBottom(false), at: clock.plus(0.5))
        b.handle(.atTop(true), at: clock.plus(4))
        #expect(b.position == .up)
        #expect(b.outputs == BollardController.Outputs(), "motor cut at the end position, lights off, red")
        let events = b.drainEvents().map(\.kind)
        #expect(events == [
            .bollardState(from: .down, to: .raising, cause: .command),
            .bollardState(from: .raising, to: .up, cause: .endPosition),
        ])
    }

    @Test func raiseRefusedUnderAVehicleOrPhotocell() {
        let clock = Clock()
        var b = Self.make(clock)
        b.handle(.loopOccupied(true), at: clock.now)
        let r = Self.refusal(b.raise(at: clock.now))
        #expect(r?.code == .interlock)
        #expect(r?.message.contains("vehicle loop occupied") == true)
        #expect(b.outputs.warningLights == false, "nothing actuated")
        b.handle(.loopOccupied(false), at: clock.plus(1))
        b.handle(.photocellInterrupted(true), at: clock.plus(1))
        #expect(Self.refusal(b.raise(at: clock.plus(1)))?.message.contains("photocell interrupted") == true)
        #expect(b.position == .down)
    }

    /// The polling race: the last poll before the end of the pre-warning showed the loop clear,
    /// a vehicle entered since. The first poll begun after the pre-warning sees it: the raise
    /// is aborted (a reversal) with the motor never on.
    @Test func aVehicleEnteringJustBeforeThePreWarningEndsIsSeenBeforeAnyMotion() {
        var clock = Clock()
        var b = Self.make(clock)
        #expect(b.raise(at: clock.now) == .accepted)
        b.handle(.sensors(Self.down), at: clock.plus(2.96))  // clear, 40 ms before the end
        clock.advance(.seconds(3))
        b.tick(at: clock.now)
        #expect(!b.outputs.motorUp)
        b.handle(.sensors(S(atBottom: true, loopOccupied: true)), at: clock.plus(0.01))
        #expect(!b.outputs.motorUp && b.reversals == 1)
        #expect(b.position == .down, "aborted before any motion: still at the bottom")
        #expect(b.drainEvents().map(\.kind).contains(.bollardState(from: .raising, to: .down, cause: .reversal)))
    }

    @Test func obstructionWhileRisingReversesInTheSameCall() {
        var clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        clock.advance(.seconds(3))
        b.handle(.sensors(Self.down), at: clock.now)  // the first poll begun after the pre-warning
        b.handle(.atBottom(false), at: clock.plus(0.2))
        #expect(b.outputs.motorUp)
        b.handle(.loopOccupied(true), at: clock.plus(1))
        #expect(!b.outputs.motorUp && b.outputs.motorDown, "reversal: up off, down on, at once")
        #expect(b.position == .lowering)
        #expect(b.reversals == 1)
        b.handle(.atBottom(true), at: clock.plus(2))
        #expect(b.position == .down && !b.outputs.motorDown)
        let kinds = b.drainEvents().map(\.kind)
        #expect(kinds.contains(.bollardState(from: .raising, to: .lowering, cause: .reversal)))
        // Photocell works the same way.
        b.handle(.loopOccupied(false), at: clock.plus(3))
        #expect(b.raise(at: clock.plus(3)) == .accepted)
        b.tick(at: clock.plus(6))
        b.handle(.atBottom(false), at: clock.plus(6.1))
        b.handle(.photocellInterrupted(true), at: clock.plus(7))
        #expect(!b.outputs.motorUp && b.outputs.motorDown)
    }

    @Test func obstructionDuringPreWarningAbortsBeforeMotion() {
        let clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        b.handle(.photocellInterrupted(true), at: clock.plus(1))
        #expect(b.position == .down)
        #expect(b.outputs.trafficGreen && !b.outputs.warningLights && !b.outputs.motorUp && !b.outputs.motorDown)
        #expect(b.reversals == 1)
    }

    @Test func afterMaxReversalsStaysDownUntilANewRaise() {
        var clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        for _ in 0..<3 {
            b.handle(.loopOccupied(true), at: clock.plus(1))
            b.handle(.loopOccupied(false), at: clock.plus(2))
            clock.advance(.seconds(2))
            // Auto-raise retries after the loop stays clear for 10 s, until the limit.
            if let d = b.nextDeadline { clock.set(d); b.tick(at: clock.now) }
        }
        #expect(b.reversals == 3)
        #expect(b.position == .down)
        #expect(b.nextDeadline == nil, "no more automatic raise")
        b.tick(at: clock.plus(3600))
        #expect(b.position == .down)
        #expect(b.drainEvents().contains { $0.kind == .bollardState(from: .raising, to: .down, cause: .reversalLimit) })
        #expect(b.raise(at: clock.plus(3601)) == .accepted)
        #expect(b.reversals == 0)
        #expect(b.position == .raising)
    }

    @Test func travelTimeoutCutsTheMotorAndLatches() {
        var clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        clock.advance(.seconds(3))
        b.handle(.sensors(Self.down), at: clock.now)  // the first poll begun after the pre-warning
        b.handle(.atBottom(false), at: clock.plus(1))
        #expect(b.nextDeadline == clock.plus(8))
        b.tick(at: clock.plus(7.999))
        #expect(b.outputs.motorUp)
        b.tick(at: clock.plus(8))
        #expect(b.outputs == BollardController.Outputs())
        #expect(b.position == .fault)
        #expect(b.fault == .travelTimeout(raising: true))
        #expect(ControlTest.alarms(b.drainEvents()).map(\.0) == ["travel_timeout"])
        // Latched: nothing moves by itself; raise refused; lower allowed.
        b.tick(at: clock.plus(100))
        #expect(b.outputs == BollardController.Outputs())
        let r = Self.refusal(b.raise(at: clock.plus(100)))
        #expect(r?.code == .interlock && r?.message.contains("lower it first") == true)
        b.handle(.sensors(Self.midway), at: clock.plus(100.5))
        #expect(b.fault == .travelTimeout(raising: true), "a poll does not clear the latch")
        #expect(b.lower(at: clock.plus(101)) == .accepted)
        #expect(b.outputs.motorDown)
        b.handle(.atBottom(true), at: clock.plus(103))
        #expect(b.position == .down)
        #expect(ControlTest.alarms(b.drainEvents()).map { "\($0.0)=\($0.1)" } == ["travel_timeout=false"])
    }

    @Test func travelTimeoutWhileLowering() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        #expect(b.lower(at: clock.now) == .accepted)
        #expect(b.outputs.motorDown && b.outputs.warningLights && !b.outputs.motorUp)
        b.tick(at: clock.plus(8))
        #expect(!b.outputs.motorDown)
        #expect(b.fault == .travelTimeout(raising: false))
    }

    @Test func motorFaultSwitchesEverythingOff() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        b.lower(at: clock.now)
        #expect(b.outputs.motorDown)
        b.handle(.motorFault(true), at: clock.plus(1))
        #expect(b.outputs == BollardController.Outputs())
        #expect(b.position == .fault)
        #expect(Self.refusal(b.lower(at: clock.plus(2)))?.message.contains("motor fault") == true)
        b.handle(.motorFault(false), at: clock.plus(3))
        #expect(b.position == .fault, "latched until a command")
        #expect(ControlTest.alarms(b.drainEvents()).map { "\($0.0)=\($0.1)" } == ["motor_fault=true", "motor_fault=false"])
        #expect(b.lower(at: clock.plus(4)) == .accepted)
        #expect(b.outputs.motorDown)
    }

    @Test func emergencyInputOutranksAndHoldsUntilCleared() {
        var clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        clock.advance(.seconds(3))
        b.handle(.sensors(Self.down), at: clock.now)  // the first poll begun after the pre-warning
        b.handle(.atBottom(false), at: clock.plus(1))
        #expect(b.outputs.motorUp)
        b.handle(.emergencyInput(true), at: clock.plus(2))
        #expect(!b.outputs.motorUp && b.outputs.motorDown, "lowers at once")
        #expect(b.position == .emergencyDown)
        let r = Self.refusal(b.raise(at: clock.plus(3)))
        #expect(r?.code == .interlock && r?.message.contains("emergency") == true)
        b.handle(.atBottom(true), at: clock.plus(4))
        #expect(b.position == .emergencyDown && !b.outputs.motorDown)
        #expect(b.outputs.trafficGreen, "fully down: green for the fire brigade")
        b.handle(.emergencyInput(false), at: clock.plus(5))
        #expect(b.position == .emergencyDown, "input gone is not enough: needs clearing")
        #expect(b.clearEmergency(at: clock.plus(6)) == .accepted)
        #expect(b.position == .down)
        #expect(!b.commandedUp, "stays down until a new raise")
        b.handle(.loopOccupied(true), at: clock.plus(7))
        b.handle(.loopOccupied(false), at: clock.plus(8))
        b.tick(at: clock.plus(60))
        #expect(b.position == .down)
    }

    @Test func clearRefusedWhileKeyInputActive() {
        let clock = Clock()
        var b = Self.make(clock)
        b.handle(.emergencyInput(true), at: clock.now)
        let r = Self.refusal(b.clearEmergency(at: clock.plus(1)))
        #expect(r?.code == .interlock && r?.message.contains("key input still active") == true)
        #expect(b.emergencyLatched)
    }

    @Test func emergencyCommandFromUpLowersAndCentreClears() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        #expect(b.emergencyLower(at: clock.now) == .accepted)
        #expect(b.outputs.motorDown && b.position == .emergencyDown)
        #expect(b.lower(at: clock.plus(1)) == .accepted, "consistent with the emergency: accepted, no change")
        #expect(Self.refusal(b.holdDown(.seconds(60), at: clock.plus(1))) == nil)
        b.handle(.atBottom(true), at: clock.plus(3))
        #expect(b.clearEmergency(at: clock.plus(10)) == .accepted)
        #expect(b.position == .down)
        let kinds = b.drainEvents().map(\.kind)
        #expect(kinds.first == .bollardState(from: .up, to: .emergencyDown, cause: .emergency))
        #expect(kinds.last == .bollardState(from: .emergencyDown, to: .down, cause: .emergencyCleared))
    }

    @Test func lostIOStopsEverythingAndRefusesCommands() {
        var clock = Clock()
        var b = Self.make(clock)
        b.raise(at: clock.now)
        clock.advance(.seconds(3))
        b.handle(.sensors(Self.down), at: clock.now)  // the first poll begun after the pre-warning
        b.handle(.atBottom(false), at: clock.plus(1))
        #expect(b.outputs.motorUp)
        b.handle(.ioOnline(false), at: clock.plus(2))
        #expect(b.outputs == BollardController.Outputs())
        #expect(ControlTest.alarms(b.drainEvents()).map { "\($0.0)=\($0.1)" } == ["io_lost=true"])
        for outcome in [b.raise(at: clock.plus(3)), b.lower(at: clock.plus(3)), b.emergencyLower(at: clock.plus(3)), b.clearEmergency(at: clock.plus(3))] {
            #expect(Self.refusal(outcome)?.code == .deviceOffline)
        }
        // Back, midway: the interrupted raise is not resumed; position unknown until lowered.
        b.handle(.sensors(Self.midway), at: clock.plus(10))
        #expect(b.position == .fault && b.fault == .positionUnknown)
        #expect(b.outputs == BollardController.Outputs())
        #expect(ControlTest.alarms(b.drainEvents()).map { "\($0.0)=\($0.1)" } == ["io_lost=false", "position_unknown=true"])
        #expect(b.lower(at: clock.plus(11)) == .accepted)
        #expect(b.outputs.motorDown)
        b.handle(.sensors(Self.down), at: clock.plus(13))
        #expect(b.position == .down)
    }

    @Test func autoRaiseOnlyAfterAVehicleHasPassedAndTheLoopStayedClear() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        #expect(b.lower(at: clock.now) == .accepted)
        b.handle(.sensors(Self.down), at: clock.plus(2))
        #expect(b.position == .down)
        #expect(b.nextDeadline == nil, "no vehicle yet: no auto-raise")
        b.tick(at: clock.plus(600))
        #expect(b.position == .down)
        clock.advance(.seconds(600))
        b.handle(.loopOccupied(true), at: clock.now)
        b.handle(.loopOccupied(false), at: clock.plus(2))
        #expect(b.nextDeadline == clock.plus(12))
        // A second vehicle restarts the clear time.
        b.handle(.loopOccupied(true), at: clock.plus(8))
        #expect(b.nextDeadline == nil)
        b.handle(.loopOccupied(false), at: clock.plus(9))
        b.tick(at: clock.plus(18.9))
        #expect(b.position == .down)
        b.tick(at: clock.plus(19))
        #expect(b.position == .raising && !b.outputs.motorUp && b.outputs.warningLights, "auto-raise starts with the pre-warning")
        #expect(b.drainEvents().last?.kind == .bollardState(from: .down, to: .raising, cause: .autoRaise))
    }

    @Test func noAutoRaiseWithoutCommandedUpOrWithoutSetting() {
        var clock = Clock()
        var b = Self.make(clock)  // never raised: commanded mode down
        b.handle(.loopOccupied(true), at: clock.now)
        b.handle(.loopOccupied(false), at: clock.plus(1))
        b.tick(at: clock.plus(100))
        #expect(b.position == .down)

        var c = Self.make(clock, autoRaise: nil)
        c.raise(at: clock.now)
        c.tick(at: clock.plus(3))
        c.handle(.sensors(Self.top), at: clock.plus(6))
        clock.advance(.seconds(10))
        c.lower(at: clock.now)
        c.handle(.sensors(Self.down), at: clock.plus(2))
        c.handle(.loopOccupied(true), at: clock.plus(3))
        c.handle(.loopOccupied(false), at: clock.plus(4))
        c.tick(at: clock.plus(1000))
        #expect(c.position == .down)
        #expect(c.nextDeadline == nil)
    }

    @Test func holdDownKeepsDownThenAutoRaises() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        #expect(b.holdDown(.seconds(300), at: clock.now) == .accepted)
        b.handle(.sensors(Self.down), at: clock.plus(2))
        for k in 0..<5 {  // vehicles during the hold do not raise it
            b.handle(.loopOccupied(true), at: clock.plus(Double(10 + 30 * k)))
            b.handle(.loopOccupied(false), at: clock.plus(Double(12 + 30 * k)))
        }
        #expect(b.nextDeadline == clock.plus(300))
        b.tick(at: clock.plus(300))
        #expect(b.position == .down)
        #expect(b.nextDeadline == clock.plus(310), "after the hold: clear for auto_raise_after")
        b.tick(at: clock.plus(310))
        #expect(b.position == .raising)
        #expect(Self.refusal(b.holdDown(.zero, at: clock.plus(311)))?.code == .outOfRange)
    }

    @Test func trafficLightGreenOnlyWhenConfirmedDown() {
        var clock = Clock()
        var b = Self.makeUp(&clock)
        #expect(!b.outputs.trafficGreen)
        b.lower(at: clock.now)
        #expect(!b.outputs.trafficGreen, "lowering: red")
        b.handle(.sensors(S(atBottom: true)), at: clock.plus(2))
        #expect(b.outputs.trafficGreen)
        b.handle(.sensors(S(atTop: true, atBottom: true)), at: clock.plus(3))
        #expect(!b.outputs.trafficGreen, "both switches: not confirmed")
        b.handle(.ioOnline(false), at: clock.plus(4))
        #expect(!b.outputs.trafficGreen)
    }

    @Test func idleTicksMakeNoEvents() {
        let clock = Clock()
        var b = Self.make(clock)
        var buffer: [ControlEvent] = []
        buffer.reserveCapacity(16)
        for i in 0..<10_000 {
            b.tick(at: clock.plus(Double(i) * 0.01))
            b.drainEvents(into: &buffer)
        }
        #expect(buffer.isEmpty)
    }
}

/// Sensor age (BollardController rules): motion starts only on inputs younger than
/// `maxSensorAge`, and a running motor is cut (`sensor_stale`) once they are older.
@Suite struct BollardSensorAgeTests {
    typealias Clock = ControlTest.Clock
    typealias S = BollardController.Sensors

    /// Down at rest, default limit (300 ms); raised until the motor runs, polled every 50 ms.
    static func rising(_ clock: inout Clock) -> BollardController {
        var b = BollardTests.make(clock, maxSensorAge: BollardController.defaultMaxSensorAge)
        #expect(b.raise(at: clock.now) == .accepted)
        for _ in 0..<60 {
            clock.advance(.milliseconds(50))
            b.handle(.sensors(S(atBottom: true)), at: clock.now)
        }
        b.handle(.sensors(S()), at: clock.now)
        #expect(b.outputs.motorUp, "rising on fresh polls")
        _ = b.drainEvents()
        return b
    }

    @Test func aStalledBusCutsTheRunningMotorAtTheLimit() {
        var clock = Clock()
        var b = Self.rising(&clock)
        let lastPoll = clock.now
        #expect(b.nextDeadline == lastPoll + .milliseconds(300) + .nanoseconds(1), "the loop must wake when the inputs turn stale")
        b.tick(at: lastPoll + .milliseconds(300))
        #expect(b.outputs.motorUp, "300 ms old: still within the limit")
        b.tick(at: lastPoll + .milliseconds(301))
        #expect(!b.outputs.motorUp && !b.outputs.motorDown, "older than the limit: motor cut")
        #expect(b.position == .fault && b.fault == .sensorsStale)
        let events = b.drainEvents()
        #expect(ControlTest.alarms(events).map { "\($0.0)=\($0.1)" } == ["sensor_stale=true"])
        #expect(events.contains { $0.kind == .bollardState(from: .raising, to: .fault, cause: .sensorsStale) })
        // Polls again, midway: not resumed; the position is taken from the end switches.
        b.handle(.sensors(S()), at: lastPoll + .milliseconds(900))
        #expect(b.outputs == BollardController.Outputs())
        #expect(b.fault == .positionUnknown)
        #expect(ControlTest.alarms(b.drainEvents()).map { "\($0.0)=\($0.1)" } == ["sensor_stale=false", "position_unknown=true"])
    }

    @Test func lateDeliveryOfAnOldPollDoesNotRestartMotion() {
        var clock = Clock()
        var b = BollardTests.make(clock, maxSensorAge: BollardController.defaultMaxSensorAge)
        #expect(b.raise(at: clock.now) == .accepted)
        clock.advance(.seconds(3))
        b.tick(at: clock.now)
        // A poll begun after the pre-warning but handed over 400 ms late (a queue of writes
        // ahead of it): too old to start moving on.
        b.handle(.sensors(S(atBottom: true)), at: clock.now)
        #expect(b.outputs.motorUp == true, "fresh: moves")
        var c2 = Clock()
        var b2 = BollardTests.make(c2, maxSensorAge: BollardController.defaultMaxSensorAge)
        #expect(b2.raise(at: c2.now) == .accepted)
        c2.advance(.seconds(3))
        b2.tick(at: c2.now + .milliseconds(400))
        b2.handle(.sensors(S(atBottom: true)), at: c2.now)
        #expect(!b2.outputs.motorUp, "a poll 400 ms old when it arrives is not enough to start")
        #expect(b2.position == .raising, "still warning, waiting for a fresh poll")
        b2.handle(.sensors(S(atBottom: true)), at: c2.now + .milliseconds(410))
        #expect(b2.outputs.motorUp)
    }

    @Test func loweringIsCutTooAndAnEmergencyLowersAgainWhenPollsReturn() {
        var clock = Clock()
        var b = Self.rising(&clock)
        #expect(b.emergencyLower(at: clock.now) == .accepted)
        #expect(b.outputs.motorDown)
        b.tick(at: clock.now + .milliseconds(301))
        #expect(!b.outputs.motorDown, "stale inputs: the down motor stops too (the bottom switch is not known)")
        #expect(b.fault == .sensorsStale && b.emergencyLatched)
        b.handle(.sensors(S()), at: clock.now + .milliseconds(500))
        #expect(b.outputs.motorDown, "polled again, midway, emergency latched: lowering again")
        b.handle(.sensors(S(atBottom: true)), at: clock.now + .milliseconds(550))
        #expect(b.position == .emergencyDown && !b.outputs.motorDown)
    }

    @Test func gpioWiredInputsAreLiveEdges() {
        var clock = Clock()
        var b = Self.rising(&clock)
        // Edges of live lines keep the inputs known (the agent also feeds GPIO bollards a
        // snapshot of their lines at every step).
        for _ in 0..<10 {
            clock.advance(.milliseconds(200))
            b.handle(.photocellInterrupted(false), at: clock.now)
            #expect(b.outputs.motorUp)
        }
    }
}
