public import FoundationEssentials

/// A lighting group's schedule level from the wall clock: astronomical or fixed on/off, a
/// base level, and a lower night level between two local times. Pure: same input, same
/// answer; DST from the system's zone files (`ZoneRules`).
///
/// Rules:
/// - The lamps are on from the `on` boundary of a local day to the next `off` boundary
///   (normally dusk of day D to dawn of day D+1); `dusk`/`dawn` are sunset/sunrise
///   (`SolarCalculator`, zenith 90.833) plus the offset in minutes; `"HH:MM"` is local
///   time that day (a time skipped by a DST jump lands as far after the jump as it was after
///   its start, e.g. an hour later; a repeated one is its first occurrence: `ZoneRules.utc`).
/// - `on` or `off` absent: always on.
/// - Polar days and nights (only with a `dusk`/`dawn` boundary): on a local day the sun
///   never rises the lamps are on all day; on a day it never sets they are off all day,
///   whatever a fixed other boundary says.
/// - Level: 0 outside the on period; inside it `night.base` when the local time of day is in
///   [night.from, night.to) (the window may cross midnight), else `base`.
public struct LightingSchedule: Sendable {
    public let base: Int
    public let night: LightingGroupConfig.Night?
    public let on: DayBoundary?
    public let off: DayBoundary?
    public let latitude: Double
    public let longitude: Double
    public let timeZone: ZoneRules

    public init(config: LightingGroupConfig, latitude: Double, longitude: Double, timeZone: ZoneRules) {
        self.init(base: config.base, night: config.night, on: config.on, off: config.off, latitude: latitude, longitude: longitude, timeZone: timeZone)
    }

    public init(base: Int, night: LightingGroupConfig.Night?, on: DayBoundary?, off: DayBoundary?, latitude: Double, longitude: Double, timeZone: ZoneRules) {
        self.base = base
        self.night = night
        self.on = on
        self.off = off
        self.latitude = latitude
        self.longitude = longitude
        self.timeZone = timeZone
    }

    /// The schedule level at `wall` when the wall clock may be wrong: while it is not
    /// synchronised (`clockTrusted` false: no RTC and no NTP yet, the clock may say noon at
    /// midnight) the schedule never switches the lamps off or below `base` (presence still
    /// boosts above it); a trusted clock gives `level(at:)`.
    public func level(at wall: Date, clockTrusted: Bool) -> Int {
        let scheduled = level(at: wall)
        return clockTrusted ? scheduled : max(scheduled, base)
    }

    /// The schedule level at `wall`: 0 (off) or the base/night level.
    public func level(at wall: Date) -> Int {
        guard isOn(at: wall) else { return 0 }
        if let night, inNight(wall, night) { return night.base }
        return base
    }

    /// Whether the astronomical/fixed on period includes `wall`.
    public func isOn(at wall: Date) -> Bool {
        guard let on, let off else { return true }
        let d = localDay(of: wall)
        if let forced = polarState(day: d) { return forced }
        var best: (Date, Bool)? = nil
        for k in -2...1 {
            let day = d.adding(days: k)
            for (boundary, state) in [(on, true), (off, false)] {
                guard let t = instant(of: boundary, on: day), t <= wall else { continue }
                if best.map({ t >= $0.0 }) ?? true { best = (t, state) }
            }
        }
        if let best { return best.1 }
        return polarState(day: d.adding(days: -1)) ?? true
    }

    /// The next instant after `after` at which `level` changes, or the next local midnight if
    /// it does not change before then (the runner re-evaluates at the returned instant).
    public func nextChange(after: Date) -> Date {
        let d = localDay(of: after)
        let midnight = start(of: d.adding(days: 1)) ?? after.addingTimeInterval(86_400)
        var candidates: [Date] = [midnight]
        for k in -1...1 {
            let day = d.adding(days: k)
            for b in [on, off] {
                if let b, let t = instant(of: b, on: day) { candidates.append(t) }
            }
            if let night {
                if let t = localTime(day, night.fromHour, night.fromMinute) { candidates.append(t) }
                if let t = localTime(day, night.toHour, night.toMinute) { candidates.append(t) }
            }
        }
        let current = level(at: after)
        for t in candidates.filter({ $0 > after && $0 <= midnight }).sorted() where level(at: t) != current {
            return t
        }
        return midnight
    }

    // MARK: - internals

    struct Day: Equatable {
        var year: Int, month: Int, day: Int
        func adding(days n: Int) -> Day {
            let z = SolarCalculator.daysFromCivil(year: year, month: month, day: day) + n
            return Day.fromDays(z)
        }
        /// Civil date of days since 1970-01-01 (Hinnant).
        static func fromDays(_ days: Int) -> Day {
            let d = Civil.date(days: Int64(days))
            return Day(year: d.year, month: d.month, day: d.day)
        }
    }

    /// Whole seconds since 1970 UTC (rounded down) of `date`.
    private static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }

    private func localDay(of date: Date) -> Day {
        let t = timeZone.localTime(at: Self.seconds(date))
        return Day(year: t.year, month: t.month, day: t.day)
    }

    private func start(of day: Day) -> Date? {
        localTime(day, 0, 0)
    }

    private func localTime(_ day: Day, _ hour: Int, _ minute: Int) -> Date? {
        Date(timeIntervalSince1970: Double(timeZone.utc(year: day.year, month: day.month, day: day.day, hour: hour, minute: minute)))
    }

    private func sun(_ day: Day) -> SolarCalculator.SunDay {
        SolarCalculator.sunDay(year: day.year, month: day.month, day: day.day, latitude: latitude, longitude: longitude)
    }

    /// On/off forced by a polar day or night, when a boundary is astronomical.
    private func polarState(day: Day) -> Bool? {
        guard isAstronomical(on) || isAstronomical(off) else { return nil }
        switch sun(day) {
        case .normal: return nil
        case .polarNight: return true
        case .polarDay: return false
        }
    }

    private func isAstronomical(_ b: DayBoundary?) -> Bool {
        switch b {
        case .dusk, .dawn: true
        case .time, nil: false
        }
    }

    /// The instant of `boundary` on local day `day`; nil on a polar day.
    private func instant(of boundary: DayBoundary, on day: Day) -> Date? {
        switch boundary {
        case .time(let h, let m):
            return localTime(day, h, m)
        case .dusk(let offset):
            return sun(day).sunset.map { $0.addingTimeInterval(Double(offset) * 60) }
        case .dawn(let offset):
            return sun(day).sunrise.map { $0.addingTimeInterval(Double(offset) * 60) }
        }
    }

    private func inNight(_ wall: Date, _ n: LightingGroupConfig.Night) -> Bool {
        let t = timeZone.localTime(at: Self.seconds(wall))
        let m = t.hour * 60 + t.minute
        let from = n.fromHour * 60 + n.fromMinute
        let to = n.toHour * 60 + n.toMinute
        if from == to { return false }
        return from < to ? (m >= from && m < to) : (m >= from || m < to)
    }
}
