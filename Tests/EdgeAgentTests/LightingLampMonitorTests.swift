import EdgeAgent
import Testing

@Suite struct LightingLampMonitorTests {
    typealias Clock = ControlTest.Clock

    /// 100 W rated, ±30 %, warm-up 60 s.
    static func make() -> LampMonitor {
        LampMonitor(lamp: "lamp-01", ratedPowerW: 100, tolerance: 0.3, warmUp: .seconds(60))
    }

    @Test func statusBitsRaiseAndClearAtOnce() {
        let clock = Clock()
        var m = Self.make()
        m.handle(.reading(actualLevel: 50, powerW: 50, status: [.driverFault, .overTemperature]), at: clock.now)
        #expect(m.active == [.driverFault, .overTemperature])
        let raised = ControlTest.alarms(m.drainEvents())
        #expect(raised.map(\.0) == ["driver_fault", "over_temperature"])
        #expect(raised.allSatisfy { $0.1 })
        m.handle(.reading(actualLevel: 50, powerW: 50, status: [.overTemperature]), at: clock.plus(1))
        #expect(m.active == [.overTemperature])
        let cleared = ControlTest.alarms(m.drainEvents())
        #expect(cleared.count == 1)
        #expect(cleared.first?.0 == "driver_fault")
        #expect(cleared.first?.1 == false)
        m.handle(.reading(actualLevel: 50, powerW: 50, status: [.lampFailure]), at: clock.plus(2))
        #expect(m.active == [.lampFailure])
        let events = m.drainEvents()
        guard case .alarm(let a) = events.first?.kind else {
            Issue.record("no lamp_failure event")
            return
        }
        #expect(a.code == .lampFailure && a.severity == .major && a.message.contains("lamp-01"))
    }

    @Test func powerJudgedOnlyAfterWarmUp() {
        let clock = Clock()
        var m = Self.make()
        m.handle(.reading(actualLevel: 50, powerW: 80, status: []), at: clock.now)
        #expect(m.active.isEmpty, "warm-up: not judged yet")
        #expect(m.nextDeadline == clock.plus(60))
        m.tick(at: clock.plus(60))
        #expect(m.active == [.powerHigh], "80 W against 50 W ±30 %")
        let e = m.drainEvents()
        guard case .alarm(let a) = e.first?.kind else {
            Issue.record("no event")
            return
        }
        #expect(a.code == .powerHigh && a.active && a.message.contains("80.0 W") && a.message.contains("50.0 W"))
        // Level change restarts the warm-up; then power fits 80 % and the alarm clears.
        m.handle(.reading(actualLevel: 80, powerW: 80, status: []), at: clock.plus(70))
        #expect(m.active == [.powerHigh], "not re-judged during warm-up")
        m.handle(.reading(actualLevel: 80, powerW: 80, status: []), at: clock.plus(130))
        #expect(m.active.isEmpty)
    }

    @Test func powerLowAndLampFailureByNoPower() {
        let clock = Clock()
        var m = Self.make()
        m.handle(.reading(actualLevel: 100, powerW: 100, status: []), at: clock.now)
        m.handle(.reading(actualLevel: 100, powerW: 60, status: []), at: clock.plus(61))
        #expect(m.active == [.powerLow])
        m.handle(.reading(actualLevel: 100, powerW: 2, status: []), at: clock.plus(62))
        #expect(m.active == [.lampFailure], "lit but drawing nothing is a lamp failure, not power_low")
        // Off: no power judgement, the power-based failure clears.
        m.handle(.reading(actualLevel: 0, powerW: 0, status: []), at: clock.plus(63))
        #expect(m.active.isEmpty)
    }

    @Test func hysteresisKeepsAlarmOnTheLimit() {
        let clock = Clock()
        var m = Self.make()
        m.handle(.reading(actualLevel: 100, powerW: 100, status: []), at: clock.now)
        m.handle(.reading(actualLevel: 100, powerW: 131, status: []), at: clock.plus(61))
        #expect(m.active == [.powerHigh])
        m.handle(.reading(actualLevel: 100, powerW: 127, status: []), at: clock.plus(62))
        #expect(m.active == [.powerHigh], "inside the band but above 80 % of it: still raised")
        m.handle(.reading(actualLevel: 100, powerW: 123, status: []), at: clock.plus(63))
        #expect(m.active.isEmpty)
        #expect(ControlTest.alarms(m.drainEvents()).map(\.1) == [true, false])
    }

    @Test func offlineIsNotJudgedAndRestartsWarmUp() {
        let clock = Clock()
        var m = Self.make()
        m.handle(.reading(actualLevel: 100, powerW: 100, status: []), at: clock.now)
        m.handle(.offline, at: clock.plus(30))
        #expect(m.nextDeadline == nil)
        m.handle(.reading(actualLevel: 100, powerW: 10, status: []), at: clock.plus(100))
        #expect(m.active.isEmpty, "came back: warm-up again")
        m.tick(at: clock.plus(160))
        #expect(m.active == [.powerLow])
    }

    @Test func noRatedPowerMeansNoPowerCheck() {
        let clock = Clock()
        var m = LampMonitor(lamp: "lamp-02", ratedPowerW: nil, tolerance: 0.3, warmUp: .seconds(1))
        m.handle(.reading(actualLevel: 100, powerW: 0, status: []), at: clock.now)
        m.tick(at: clock.plus(10))
        #expect(m.active.isEmpty)
        #expect(m.drainEvents().isEmpty)
    }
}
