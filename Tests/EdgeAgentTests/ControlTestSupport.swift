import EdgeRuntime
import EdgeAgent

/// Helpers for the control-machine tests: a virtual clock and a seeded PRNG.
enum ControlTest {
    /// A virtual monotonic clock starting at an arbitrary instant.
    struct Clock {
        var now = MonotonicInstant(nanoseconds: 5_000_000_000_000)
        mutating func advance(_ d: Duration) { now = now + d }
        mutating func set(_ t: MonotonicInstant) { now = t }
        /// `now` plus `s` seconds, without moving the clock.
        func plus(_ s: Double) -> MonotonicInstant { now + .milliseconds(Int64((s * 1000).rounded())) }
    }

    /// SplitMix64 (Steele, Lea, Flood 2014): small, fast, good enough for test inputs.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// True with probability `p`.
        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
        mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &self) }
    }

    /// Alarm events (code, active) in order.
    static func alarms(_ events: [ControlEvent]) -> [(String, Bool)] {
        events.compactMap { e in
            if case .alarm(let a) = e.kind { return (a.code.rawValue, a.active) }
            return nil
        }
    }

    static func types(_ events: [ControlEvent]) -> [String] { events.map(\.type) }
}
