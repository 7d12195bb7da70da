import EdgeAgent
import Foundation
import Testing
import TestSupport

/// Our NOAA sunrise/sunset against an independent implementation: the `astral` Python
/// package (3.2), every day of 2026, at Dijon, Quito, Helsinki, Cape Town, and Tromsø for
/// the polar cases.
@Suite struct AstroTests {
    static let sites: [(name: String, lat: Double, lon: Double, tz: String)] = [
        ("dijon", 47.3220, 5.0415, "Europe/Paris"),
        ("quito", -0.18, -78.47, "America/Guayaquil"),
        ("helsinki", 60.17, 24.94, "Europe/Helsinki"),
        ("capetown", -33.9, 18.4, "Africa/Johannesburg"),
        ("tromso", 69.65, 18.96, "Europe/Oslo"),
    ]

    static let script = """
    import sys, datetime
    try:
        from zoneinfo import ZoneInfo
        from astral import Observer
        from astral.sun import sunrise, sunset
    except ImportError as e:
        print("IMPORT-ERROR", e)
        sys.exit(3)
    for arg in sys.argv[1:]:
        name, lat, lon, tz = arg.split(",")
        obs = Observer(latitude=float(lat), longitude=float(lon))
        zone = ZoneInfo(tz)
        d = datetime.date(2026, 1, 1)
        while d.year == 2026:
            out = []
            for f in (sunrise, sunset):
                try:
                    out.append("%.3f" % f(obs, d, tzinfo=zone).timestamp())
                except ValueError as e:
                    m = str(e)
                    out.append("below" if "below" in m else ("above" if "above" in m else "none"))
            print(name, d.isoformat(), out[0], out[1])
            d += datetime.timedelta(days=1)
    """

    @Test func sunriseSunsetWithinTwoMinutesOfAstral() throws {
        let python = try #require(which("python3"), "python3 not found on PATH: needed to run the astral reference (scripts/setup.sh installs it)")
        let args = Self.sites.map { "\($0.name),\($0.lat),\($0.lon),\($0.tz)" }
        let r = try runCommand(python, ["-c", Self.script] + args, timeout: .seconds(60))
        try #require(r.status == 0, "astral reference failed (status \(r.status)); install it with `pip install 'astral>=3.2,<4'`:\n\(r.stdout)\(r.stderr)")

        var compared = 0, polarAgreed = 0, transitionSkipped = 0
        var worst: (delta: Double, what: String) = (0, "")
        var failures: [String] = []
        var polarDays: [String: [Int]] = [:]  // site -> day indexes astral calls polar
        let lines = r.stdout.split(separator: "\n")
        try #require(lines.count == Self.sites.count * 365, "expected \(Self.sites.count * 365) lines from astral, got \(lines.count)")
        // First pass: which days astral reports as polar (to know the transitions).
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: " ")
            if Double(f[2]) == nil || Double(f[3]) == nil { polarDays[String(f[0]), default: []].append(i % 365) }
        }
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: " ").map(String.init)
            let site = Self.sites.first { $0.name == f[0] }!
            let ymd = f[1].split(separator: "-").map { Int($0)! }
            let ours = SolarCalculator.sunDay(year: ymd[0], month: ymd[1], day: ymd[2], latitude: site.lat, longitude: site.lon)
            let nearTransition = (polarDays[site.name] ?? []).contains { abs($0 - i % 365) <= 2 }
            if let rise = Double(f[2]), let set = Double(f[3]) {
                guard case .normal(let ourRise, let ourSet) = ours else {
                    if nearTransition { transitionSkipped += 1; continue }
                    failures.append("\(site.name) \(f[1]): astral has sunrise/sunset, ours says \(ours)")
                    continue
                }
                for (label, ref, mine) in [("sunrise", rise, ourRise), ("sunset", set, ourSet)] {
                    let delta = abs(mine.timeIntervalSince1970 - ref)
                    compared += 1
                    if delta > worst.delta, !nearTransition { worst = (delta, "\(site.name) \(f[1]) \(label)") }
                    // Near a polar transition the event time moves fast; allow more there.
                    if delta > (nearTransition ? 600 : 120) {
                        failures.append("\(site.name) \(f[1]) \(label): ours \(mine), astral \(Date(timeIntervalSince1970: ref)), off by \(Int(delta)) s")
                    }
                }
            } else if f[2] == "below" || f[3] == "below" || f[2] == "above" || f[3] == "above" {
                let below = f[2] == "below" || f[3] == "below"
                switch ours {
                case .polarNight where below, .polarDay where !below:
                    polarAgreed += 1
                default:
                    if nearTransition { transitionSkipped += 1 } else {
                        failures.append("\(site.name) \(f[1]): astral says always \(below ? "below" : "above"), ours \(ours)")
                    }
                }
            } else {
                transitionSkipped += 1  // astral found no event on that date (transition day)
            }
        }
        print("astro: \(compared) events compared, worst \(String(format: "%.1f", worst.delta)) s (\(worst.what)), \(polarAgreed) polar days agreed, \(transitionSkipped) transition days skipped")
        #expect(failures.isEmpty, "\(failures.count) mismatches, first: \(failures.prefix(5).joined(separator: "; "))")
        #expect(compared > 3000)
        #expect(polarAgreed > 80, "Tromsø has about two months of polar day and of polar night")
    }
}
