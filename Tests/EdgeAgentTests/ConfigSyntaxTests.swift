import EdgeAgent
import Testing

@Suite struct ConfigSyntaxTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("10s", .seconds(10)), ("5m", .seconds(300)), ("2h", .seconds(7200)),
        ("7d", .seconds(7 * 86400)), ("1.5s", .milliseconds(1500)), ("0s", .zero), ("0.5ms", .microseconds(500)),
    ])
    func durationsParse(_ text: String, _ expected: Duration) {
        #expect(ConfigSyntax.duration(text) == expected)
    }

    @Test(arguments: ["", "10", "10 s", "s", "-1s", "1.s", ".5s", "1..5s", "10S", "10sec", "1w", "1e3s", "ms", "99999999999d", "+1s"])
    func badDurationsAreRefused(_ text: String) {
        #expect(ConfigSyntax.duration(text) == nil)
    }

    @Test func durationsFormatShortest() {
        #expect(ConfigSyntax.format(.milliseconds(500)) == "500ms")
        #expect(ConfigSyntax.format(.milliseconds(1500)) == "1500ms")
        #expect(ConfigSyntax.format(.seconds(10)) == "10s")
        #expect(ConfigSyntax.format(.seconds(300)) == "5m")
        #expect(ConfigSyntax.format(.seconds(7200)) == "2h")
        #expect(ConfigSyntax.format(.seconds(7 * 86400)) == "7d")
        #expect(ConfigSyntax.format(.zero) == "0ms")
        for text in ["500ms", "10s", "5m", "2h", "7d", "1500ms"] {
            #expect(ConfigSyntax.format(ConfigSyntax.duration(text)!) == text)
        }
    }

    @Test func timesOfDay() {
        #expect(ConfigSyntax.timeOfDay("23:00")! == (23, 0))
        #expect(ConfigSyntax.timeOfDay("5:30")! == (5, 30))
        #expect(ConfigSyntax.timeOfDay("00:00")! == (0, 0))
        for bad in ["24:00", "23:60", "2300", "23:0", "a:00", "23:00:00", "", ":30", "-1:00"] {
            #expect(ConfigSyntax.timeOfDay(bad) == nil, "\(bad)")
        }
    }

    @Test func dayBoundaries() {
        #expect(ConfigSyntax.dayBoundary("dusk") == .dusk(offsetMinutes: 0))
        #expect(ConfigSyntax.dayBoundary("dawn") == .dawn(offsetMinutes: 0))
        #expect(ConfigSyntax.dayBoundary("dusk+15m") == .dusk(offsetMinutes: 15))
        #expect(ConfigSyntax.dayBoundary("dawn-10m") == .dawn(offsetMinutes: -10))
        #expect(ConfigSyntax.dayBoundary("dusk+1h") == .dusk(offsetMinutes: 60))
        #expect(ConfigSyntax.dayBoundary("22:30") == .time(hour: 22, minute: 30))
        for bad in ["sunset", "dusk+15", "dusk*15m", "dawn-30s", "dusk+7h", "Dusk", "dusk 15m", "dusk+", "25:00"] {
            #expect(ConfigSyntax.dayBoundary(bad) == nil, "\(bad)")
        }
    }

    @Test func ids() {
        for good in ["cab-0042", "sim-0001", "a", "rue-liberte"] { #expect(ConfigSyntax.isID(good)) }
        for bad in ["", "Cab", "cab_1", "cab 1", "café", "a.b", String(repeating: "a", count: 65)] { #expect(!ConfigSyntax.isID(bad), "\(bad)") }
    }
}
