#if canImport(Glibc)
import Glibc
#endif
public import FoundationEssentials

/// Sunrise and sunset by the NOAA solar calculator's algorithm (Meeus-based series for the
/// sun's declination and the equation of time, zenith 90.833 deg = refraction + the sun's
/// radius). Accurate to about a minute between +-72 deg latitude.
///
/// A "day" is a calendar date at the site's longitude: the events returned are those around
/// that date's local solar noon (so at longitude -78 the sunset of 1 June may be at 00:10
/// UTC on 2 June). Longitude is positive east, latitude positive north.
///
/// Polar days and nights do not crash and have a result of their own: `.polarDay` (the sun
/// stays above the zenith angle all day) or `.polarNight` (it stays below), each with the
/// solar noon of that day.
public enum SolarCalculator {
    /// Official sunrise/sunset zenith, degrees.
    public static let officialZenith = 90.833

    /// The sun's course on one date at one place.
    public enum SunDay: Sendable, Equatable {
        case normal(sunrise: Date, sunset: Date)
        /// The sun does not set (it never goes below the zenith angle).
        case polarDay(solarNoon: Date)
        /// The sun does not rise (it never reaches the zenith angle).
        case polarNight(solarNoon: Date)

        public var sunrise: Date? { if case .normal(let r, _) = self { r } else { nil } }
        public var sunset: Date? { if case .normal(_, let s) = self { s } else { nil } }
    }

    /// Sunrise and sunset (UTC instants) of the date `year-month-day` (proleptic Gregorian).
    public static func sunDay(year: Int, month: Int, day: Int, latitude: Double, longitude: Double, zenith: Double = officialZenith) -> SunDay {
        let days = daysFromCivil(year: year, month: month, day: day)
        let midnightUTC = Date(timeIntervalSince1970: Double(days) * 86_400)
        let jd0 = Double(days) + 2_440_587.5
        let lat = min(max(latitude, -89.8), 89.8)

        let noon = solarNoonMinutes(jd0: jd0, longitude: longitude)
        let noonDate = midnightUTC.addingTimeInterval(noon * 60)
        guard let rise = eventMinutes(jd0: jd0, latitude: lat, longitude: longitude, zenith: zenith, rising: true, start: noon),
              let set = eventMinutes(jd0: jd0, latitude: lat, longitude: longitude, zenith: zenith, rising: false, start: noon)
        else {
            // Which polar case: the sun's altitude at noon decides.
            let t = julianCentury(jd0 + noon / 1440)
            let decl = declination(t)
            let noonZenith = abs(lat - decl)
            return noonZenith < zenith ? .polarDay(solarNoon: noonDate) : .polarNight(solarNoon: noonDate)
        }
        return .normal(sunrise: midnightUTC.addingTimeInterval(rise * 60), sunset: midnightUTC.addingTimeInterval(set * 60))
    }

    /// Solar noon (UTC instant) of the date at `longitude`.
    public static func solarNoon(year: Int, month: Int, day: Int, longitude: Double) -> Date {
        let days = daysFromCivil(year: year, month: month, day: day)
        let jd0 = Double(days) + 2_440_587.5
        return Date(timeIntervalSince1970: Double(days) * 86_400 + solarNoonMinutes(jd0: jd0, longitude: longitude) * 60)
    }

    // MARK: - NOAA series

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        Int(Civil.days(year: year, month: month, day: day))
    }

    /// Minutes after 0h UTC of the date, refined twice with the time found.
    private static func solarNoonMinutes(jd0: Double, longitude: Double) -> Double {
        var minutes = 720 - 4 * longitude
        for _ in 0..<2 {
            let t = julianCentury(jd0 + minutes / 1440)
            minutes = 720 - 4 * longitude - equationOfTime(t)
        }
        return minutes
    }

    /// Sunrise or sunset in minutes after 0h UTC of the date; nil when the sun does not cross
    /// the zenith angle that day.
    private static func eventMinutes(jd0: Double, latitude: Double, longitude: Double, zenith: Double, rising: Bool, start: Double) -> Double? {
        var minutes = start + (rising ? -360 : 360)
        for _ in 0..<3 {
            let t = julianCentury(jd0 + minutes / 1440)
            let decl = declination(t)
            let latR = radians(latitude), declR = radians(decl)
            let cosHA = cos(radians(zenith)) / (cos(latR) * cos(declR)) - tan(latR) * tan(declR)
            guard cosHA >= -1, cosHA <= 1 else { return nil }
            let ha = degrees(acos(cosHA))
            minutes = 720 - 4 * (longitude + (rising ? ha : -ha)) - equationOfTime(t)
        }
        return minutes
    }

    private static func julianCentury(_ jd: Double) -> Double { (jd - 2_451_545) / 36_525 }
    private static func radians(_ d: Double) -> Double { d * .pi / 180 }
    private static func degrees(_ r: Double) -> Double { r * 180 / .pi }

    private static func geomMeanLongitude(_ t: Double) -> Double {
        var l = (280.46646 + t * (36_000.76983 + t * 0.0003032)).truncatingRemainder(dividingBy: 360)
        if l < 0 { l += 360 }
        return l
    }

    private static func geomMeanAnomaly(_ t: Double) -> Double { 357.52911 + t * (35_999.05029 - 0.0001537 * t) }

    private static func eccentricity(_ t: Double) -> Double { 0.016708634 - t * (0.000042037 + 0.0000001267 * t) }

    private static func equationOfCentre(_ t: Double) -> Double {
        let m = radians(geomMeanAnomaly(t))
        return sin(m) * (1.914602 - t * (0.004817 + 0.000014 * t)) + sin(2 * m) * (0.019993 - 0.000101 * t) + sin(3 * m) * 0.000289
    }

    private static func apparentLongitude(_ t: Double) -> Double {
        let trueLong = geomMeanLongitude(t) + equationOfCentre(t)
        let omega = 125.04 - 1934.136 * t
        return trueLong - 0.00569 - 0.00478 * sin(radians(omega))
    }

    private static func obliquityCorrected(_ t: Double) -> Double {
        let seconds = 21.448 - t * (46.8150 + t * (0.00059 - t * 0.001813))
        let mean = 23 + (26 + seconds / 60) / 60
        let omega = 125.04 - 1934.136 * t
        return mean + 0.00256 * cos(radians(omega))
    }

    /// Sun's declination, degrees.
    private static func declination(_ t: Double) -> Double {
        degrees(asin(sin(radians(obliquityCorrected(t))) * sin(radians(apparentLongitude(t)))))
    }

    /// Equation of time, minutes.
    private static func equationOfTime(_ t: Double) -> Double {
        let eps = radians(obliquityCorrected(t))
        let l0 = radians(geomMeanLongitude(t))
        let e = eccentricity(t)
        let m = radians(geomMeanAnomaly(t))
        var y = tan(eps / 2)
        y *= y
        let eq = y * sin(2 * l0) - 2 * e * sin(m) + 4 * e * y * sin(m) * cos(2 * l0)
            - 0.5 * y * y * sin(4 * l0) - 1.25 * e * e * sin(2 * m)
        return degrees(eq) * 4
    }
}
