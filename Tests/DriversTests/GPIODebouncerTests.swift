import EdgeRuntime
import Drivers
import Testing

/// The software debounce every GPIO backend uses, driven by a virtual clock.
struct GPIODebouncerTests {
    @Test func withoutDebounceEveryChangeIsAcceptedAtOnce() {
        var d = GPIODebouncer(debounce: .zero, initial: false)
        #expect(d.observe(false, at: .ms(1)) == nil)
        #expect(d.observe(true, at: .ms(2)) == .init(value: true, at: .ms(2)))
        #expect(d.observe(true, at: .ms(3)) == nil)
        #expect(d.observe(false, at: .ms(4)) == .init(value: false, at: .ms(4)))
        #expect(d.deadline == nil)
    }

    @Test func aLevelIsAcceptedOnlyAfterHoldingForTheDebounceWithTheTimeItChanged() {
        var d = GPIODebouncer(debounce: .milliseconds(20), initial: false)
        #expect(d.observe(true, at: .ms(100)) == nil)
        #expect(d.deadline == .ms(120))
        #expect(d.settle(now: .ms(119)) == nil)
        #expect(d.stable == false)
        #expect(d.settle(now: .ms(120)) == .init(value: true, at: .ms(100)))
        #expect(d.stable == true)
        #expect(d.deadline == nil)
        #expect(d.settle(now: .ms(500)) == nil)
    }

    @Test func chatterShorterThanTheDebounceDeliversNothing() {
        var d = GPIODebouncer(debounce: .milliseconds(20), initial: false)
        var accepted: [GPIODebouncer.Settled] = []
        // A bouncing contact: 1-0-1-0 within 15 ms, ending at the old level.
        for (t, v) in [(0, true), (4, false), (9, true), (15, false)] as [(Int64, Bool)] {
            if let s = d.observe(v, at: .ms(1000 + t)) { accepted.append(s) }
        }
        if let s = d.settle(now: .ms(5000)) { accepted.append(s) }
        #expect(accepted.isEmpty)
        #expect(d.stable == false)
    }

    @Test func theDebounceRestartsAtTheLastTransition() {
        var d = GPIODebouncer(debounce: .milliseconds(20), initial: false)
        _ = d.observe(true, at: .ms(0))
        _ = d.observe(false, at: .ms(5))  // back: pending cancelled
        _ = d.observe(true, at: .ms(8))   // pending again, from 8 ms
        #expect(d.settle(now: .ms(27)) == nil)
        #expect(d.settle(now: .ms(28)) == .init(value: true, at: .ms(8)))
    }

    @Test func repeatedSameLevelKeepsTheFirstTime() {
        var d = GPIODebouncer(debounce: .milliseconds(10), initial: false)
        _ = d.observe(true, at: .ms(0))
        _ = d.observe(true, at: .ms(6))
        #expect(d.settle(now: .ms(10)) == .init(value: true, at: .ms(0)))
    }

    @Test func anObservationAfterTheDeadlineFirstAcceptsThePendingLevel() {
        var d = GPIODebouncer(debounce: .milliseconds(10), initial: false)
        _ = d.observe(true, at: .ms(0))
        // Nobody called settle; the next observation proves the level held long enough.
        #expect(d.observe(false, at: .ms(50)) == .init(value: true, at: .ms(0)))
        #expect(d.stable == true)
        #expect(d.deadline == .ms(60))
    }

    @Test func anUnknownLevelIsLearnedFromTheFirstObservation() {
        var d = GPIODebouncer(debounce: .milliseconds(10), initial: nil)
        #expect(d.stable == nil)
        #expect(d.observe(true, at: .ms(3)) == .init(value: true, at: .ms(3)))
        #expect(d.stable == true)
    }
}
