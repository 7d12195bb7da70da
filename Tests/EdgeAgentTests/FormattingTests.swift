import Foundation
import Testing
@testable import EdgeAgent

/// The formatting that replaced Foundation's `String(format:)` (FoundationEssentials has none)
/// writes what printf wrote.
@Suite struct FormattingTests {
    @Test func twoDecimalsMatchesPrintf() {
        var values: [Double] = [0, 0.125, 0.375, 1.005, 2.675, -0.5, -3.14159, 12.344999, 99.995, 1e14 + 0.25, -7.25, 0.001]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Double.random(in: -1e6...1e6, using: &rng)) }
        for _ in 0..<2000 { values.append(Double(Int.random(in: -100_000...100_000, using: &rng)) / 1000) }
        for v in values where v.rounded() != v {
            #expect(ControlValue.number(v).description == String(format: "%.2f", v), "value \(v)")
        }
    }

    @Test func rfc3339MatchesPrintf() {
        for seconds in [0.0, 1.5, 86_399.999, 1_764_806_400.123, 951_782_400.0, 4_102_444_799.5] {
            let date = Date(timeIntervalSince1970: seconds)
            var t = time_t(seconds.rounded(.down))
            let ms = Int((seconds - Double(t)) * 1000)
            var tm = tm()
            gmtime_r(&t, &tm)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), ms)
            #expect(Timestamp.rfc3339(date) == expected)
        }
    }
}
