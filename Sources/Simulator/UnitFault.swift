/// A fault injected into one simulated unit's Modbus answers, for fault-injection tests
/// (control verb `fault <device> none|exception <code>|slow <ms>|silent-after <n>`).
///
/// Invariants: a unit has one fault mode at a time (setting one replaces the last); `set <device>
/// offline 1` outranks every mode (the unit is silent); `.silentAfter` counts down only on
/// requests that reach the unit and, at 0, keeps the unit silent until another mode is set.
enum UnitFault: Equatable, CustomStringConvertible {
    /// Answers normally.
    case none
    /// Every request is answered with this Modbus exception code (4 = server device failure).
    case exception(UInt8)
    /// Every answer is sent this late. The server thread waits (outside the simulator's lock, so
    /// physics and the control socket go on): requests to other units of the same server queue
    /// behind it, as behind a real serial gateway.
    case slow(Duration)
    /// The next `n` requests are answered, then none: a unit that dies mid-transaction.
    case silentAfter(Int)

    var description: String {
        switch self {
        case .none: "none"
        case let .exception(code): "exception \(code)"
        case let .slow(delay): "slow \(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)ms"
        case let .silentAfter(n): "silent-after \(n)"
        }
    }

    static let usage = "fault <device> none | exception <code 1-255> | slow <ms 1-60000> | silent-after <n>"

    /// Parses the words after the device name.
    static func parse(_ words: [String]) throws(ControlError) -> UnitFault {
        func number(_ text: String, _ range: ClosedRange<Int>, _ what: String) throws(ControlError) -> Int {
            guard let n = Int(text), range.contains(n) else {
                throw ControlError("\(what) takes \(range.lowerBound)...\(range.upperBound), got \"\(text)\" (usage: \(usage))")
            }
            return n
        }
        switch (words.first, words.count) {
        case ("none", 1): return .none
        case ("exception", 2): return .exception(UInt8(try number(words[1], 1...255, "exception")))
        case ("slow", 2): return .slow(.milliseconds(try number(words[1], 1...60000, "slow")))
        case ("silent-after", 2): return .silentAfter(try number(words[1], 0...1_000_000, "silent-after"))
        default: throw ControlError("usage: \(usage)")
        }
    }
}

/// One unit's fault mode and how many requests it has affected since it was set.
struct UnitFaultState {
    var mode: UnitFault = .none
    /// Requests answered with an exception, delayed, or left unanswered by `mode`.
    var hits = 0
}
