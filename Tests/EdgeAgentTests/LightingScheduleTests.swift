import EdgeAgent
import Foundation
import Testing

@Suite struct LightingScheduleTests {
    static let paris = TimeZone(identifier: "Europe/Paris")!
    static let dijon = (lat: 47.3220, lon: 5.0415)

    /// A local wall-clock instant in `tz`.
    static func local(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int = 0, tz: TimeZone = paris) -> Date {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = tz
        return cal.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s))!
    }

    static func config(on: DayBoundary? = .dusk(offsetMinutes: 0), off: DayBoundary? = .dawn(offsetMinutes: 0),
                       night: LightingGroupConfig.Night? = .init(base: 20, fromHour: 23, fromMinute: 0, toHour: 5, toMinute: 0)) -> LightingGroupConfig {
        LightingGroupConfig(name: "rue-liberte", lamps: ["lamp-01"], presence: [], base: 30, boost: 100, hold: .seconds(60),
                            fadeUp: .milliseconds(500), fadeDown: .seconds(10), night: night, on: on, off: off)
    }

    /// The schedule reads the zone's rules from the system's zone file (`ZoneRules`); `local`
    /// above stays on Foundation's `TimeZone`, an independent reading of the same zone.
    static func schedule(_ c: LightingGroupConfig = config(), lat: Double = dijon.lat, lon: Double = dijon.lon, tz: TimeZone = paris) -> LightingSchedule {
        let rules: ZoneRules
        do {
            rules = try ZoneRules.load(tz.identifier)
        } catch {
            Issue.record("\(error)")
            rules = .utc
        }
        return LightingSchedule(config: c, latitude: lat, longitude: lon, timeZone: rules)
    }

    @Test func solarCalculatorMatchesKnownDijonTimes() throws {
        // Reference: astral 3.2 (05:43:37 / 21:39:42 CEST on 2026-06-21).
        let day = SolarCalculator.sunDay(year: 2026, month: 6, day: 21, latitude: Self.dijon.lat, longitude: Self.dijon.lon)
        let rise = try #require(day.sunrise)
        let set = try #require(day.sunset)
        #expect(abs(rise.timeIntervalSince(Self.local(2026, 6, 21, 5, 43, 37))) < 60)
        #expect(abs(set.timeIntervalSince(Self.local(2026, 6, 21, 21, 39, 42))) < 60)
    }

    @Test func polarDaysAreReportedNotCrashed() {
        let winter = SolarCalculator.sunDay(year: 2026, month: 12, day: 15, latitude: 69.65, longitude: 18.96)
        let summer = SolarCalculator.sunDay(year: 2026, month: 6, day: 21, latitude: 69.65, longitude: 18.96)
        guard case .polarNight = winter, case .polarDay = summer else {
            Issue.record("Tromsø: expected polar night in December and polar day in June, got \(winter), \(summer)")
            return
        }
        // Extreme latitudes do not crash either.
        _ = SolarCalculator.sunDay(year: 2026, month: 3, day: 20, latitude: 90, longitude: 0)
        _ = SolarCalculator.sunDay(year: 2026, month: 3, day: 20, latitude: -90, longitude: 180)
    }

    @Test func levelsThroughASummerNight() {
        let s = Self.schedule()
        // Sunset 21:39:42, sunrise next day about 05:44 CEST.
        #expect(s.level(at: Self.local(2026, 6, 21, 12, 0)) == 0, "daylight: off")
        #expect(s.level(at: Self.local(2026, 6, 21, 21, 38)) == 0)
        #expect(s.level(at: Self.local(2026, 6, 21, 21, 41)) == 30, "after dusk: base")
        #expect(s.level(at: Self.local(2026, 6, 21, 23, 0)) == 20, "night window from 23:00")
        #expect(s.level(at: Self.local(2026, 6, 22, 2, 0)) == 20, "night crosses midnight")
        #expect(s.level(at: Self.local(2026, 6, 22, 5, 0)) == 30, "night window ends 05:00")
        #expect(s.level(at: Self.local(2026, 6, 22, 5, 50)) == 0, "after dawn: off")
    }

    @Test func offsetsAndFixedTimes() {
        let offset = Self.schedule(Self.config(on: .dusk(offsetMinutes: 15), off: .dawn(offsetMinutes: -10)))
        #expect(offset.level(at: Self.local(2026, 6, 21, 21, 50)) == 0, "dusk+15m not reached")
        #expect(offset.level(at: Self.local(2026, 6, 21, 21, 56)) == 30)
        #expect(offset.level(at: Self.local(2026, 6, 22, 5, 30)) == 30)
        #expect(offset.level(at: Self.local(2026, 6, 22, 5, 36)) == 0, "dawn-10m passed")

        let fixed = Self.schedule(Self.config(on: .time(hour: 18, minute: 0), off: .time(hour: 7, minute: 0), night: nil))
        #expect(fixed.level(at: Self.local(2026, 6, 21, 17, 59)) == 0)
        #expect(fixed.level(at: Self.local(2026, 6, 21, 18, 0)) == 30)
        #expect(fixed.level(at: Self.local(2026, 6, 22, 6, 59)) == 30)
        #expect(fixed.level(at: Self.local(2026, 6, 22, 7, 0)) == 0)
    }

    @Test func absentBoundariesMeanAlwaysOn() {
        let s = Self.schedule(Self.config(on: nil, off: nil, night: nil))
        #expect(s.level(at: Self.local(2026, 6, 21, 12, 0)) == 30)
        #expect(s.level(at: Self.local(2026, 12, 21, 3, 0)) == 30)
    }

    @Test func nextChangeFindsDuskNightAndDawn() throws {
        let s = Self.schedule()
        let sunset = try #require(SolarCalculator.sunDay(year: 2026, month: 6, day: 21, latitude: Self.dijon.lat, longitude: Self.dijon.lon).sunset)
        let sunrise = try #require(SolarCalculator.sunDay(year: 2026, month: 6, day: 22, latitude: Self.dijon.lat, longitude: Self.dijon.lon).sunrise)
        let t1 = s.nextChange(after: Self.local(2026, 6, 21, 12, 0))
        #expect(t1 == sunset)
        let t2 = s.nextChange(after: t1)
        #expect(t2 == Self.local(2026, 6, 21, 23, 0))
        let t3 = s.nextChange(after: t2)
        #expect(t3 == Self.local(2026, 6, 22, 0, 0), "nothing changes before midnight: re-evaluate then")
        let t4 = s.nextChange(after: t3)
        #expect(t4 == Self.local(2026, 6, 22, 5, 0))
        let t5 = s.nextChange(after: t4)
        #expect(t5 == sunrise)
    }

    /// 2026-03-29 02:00 CET -> 03:00 CEST: the night window still ends at 05:00 local.
    @Test func daylightSavingSpringForward() {
        let s = Self.schedule()
        let t = s.nextChange(after: Self.local(2026, 3, 29, 0, 30))
        #expect(t == Self.local(2026, 3, 29, 5, 0))
        #expect(t.timeIntervalSince1970 == Date(timeIntervalSince1970: 1_774_753_200).timeIntervalSince1970, "05:00 CEST = 03:00 UTC")
        #expect(s.level(at: Self.local(2026, 3, 29, 3, 30)) == 20)
        #expect(s.level(at: Self.local(2026, 3, 29, 5, 30)) == 30)
        // Sunset on the DST day is about 20:05 CEST (astral: 20:04:47).
        #expect(s.level(at: Self.local(2026, 3, 29, 20, 2)) == 0)
        #expect(s.level(at: Self.local(2026, 3, 29, 20, 7)) == 30)
    }

    /// 2026-10-25 03:00 CEST -> 02:00 CET: the night window ends at 05:00 CET = 04:00 UTC.
    @Test func daylightSavingFallBack() {
        let s = Self.schedule()
        let t = s.nextChange(after: Self.local(2026, 10, 25, 1, 0))
        #expect(t.timeIntervalSince1970 == 1_792_900_800, "05:00 CET = 04:00 UTC")
    }

    @Test func polarNightOnAllDayPolarDayOffAllDay() {
        let oslo = TimeZone(identifier: "Europe/Oslo")!
        let s = Self.schedule(Self.config(night: nil), lat: 69.65, lon: 18.96, tz: oslo)
        #expect(s.level(at: Self.local(2026, 12, 15, 12, 0, tz: oslo)) == 30)
        #expect(s.level(at: Self.local(2026, 6, 21, 0, 30, tz: oslo)) == 0)
        #expect(s.level(at: Self.local(2026, 6, 21, 12, 0, tz: oslo)) == 0)
        // nextChange always returns something in the future, at most the next local midnight.
        let after = Self.local(2026, 12, 15, 12, 0, tz: oslo)
        #expect(s.nextChange(after: after) == Self.local(2026, 12, 16, 0, 0, tz: oslo))
    }

    @Test func winterOffsetsAreConsistentAllYear() {
        // Every day of 2026 at Dijon: off at local noon, on at local midnight (dusk..dawn).
        let s = Self.schedule(Self.config(night: nil))
        var failures = 0
        for d in 0..<365 {
            let noon = Self.local(2026, 1, 1, 12, 0).addingTimeInterval(Double(d) * 86_400)
            if s.level(at: noon) != 0 || s.level(at: noon.addingTimeInterval(12 * 3600)) != 30 { failures += 1 }
        }
        #expect(failures == 0)
    }
}
