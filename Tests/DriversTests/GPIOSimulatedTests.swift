import EdgeRuntime
import Drivers
import Testing
import TestSupport

/// SimulatedGPIOBackend: edges, debounce, active-low, outputs (manual virtual time unless noted).
struct GPIOSimulatedTests {
    @Test func activeLowInputReadsAndEdgesAreLogical() throws {
        let gpio = SimulatedGPIOBackend(timing: .manual, start: .ms(0))
        let log = GPIOEdgeLog()
        gpio.inject(line: "presence-a", value: false)  // wire low = active for an active-low input
        let input = try gpio.openInput(name: "presence-a", chip: "gpiochip0", offset: 4, activeLow: true, debounce: .zero)
        #expect(try input.read() == true)

        try gpio.startEvents(log.handler)
        #expect(log.all == [GPIOEdge(line: "presence-a", value: true, timestamp: .ms(0), initial: true)])

        gpio.inject(line: "presence-a", value: true, at: .ms(1000))
        #expect(try input.read() == false)
        #expect(log.all.last == GPIOEdge(line: "presence-a", value: false, timestamp: .ms(1000)))
        gpio.inject(line: "presence-a", value: true, at: .ms(1100))  // no change, no edge
        #expect(log.all.count == 2)
    }

    @Test func chatterShorterThanDebounceDeliversNothingAndAStableChangeIsDelivered() throws {
        let gpio = SimulatedGPIOBackend(timing: .manual, start: .ms(0))
        let log = GPIOEdgeLog()
        _ = try gpio.openInput(name: "stopline-north", chip: "gpiochip0", offset: 7, activeLow: false, debounce: .milliseconds(20))
        try gpio.startEvents(log.handler)
        #expect(log.values("stopline-north") == [false])  // the initial level

        for (t, v) in [(1000, true), (1004, false), (1009, true), (1013, false)] as [(Int64, Bool)] {
            gpio.inject(line: "stopline-north", value: v, at: .ms(t))
        }
        gpio.advance(to: .ms(3000))
        #expect(log.all.count == 1, "chatter must not produce edges: \(log.all)")

        gpio.inject(line: "stopline-north", value: true, at: .ms(4000))
        gpio.advance(to: .ms(4019))
        #expect(log.all.count == 1)
        gpio.advance(to: .ms(4020))
        #expect(log.all.last == GPIOEdge(line: "stopline-north", value: true, timestamp: .ms(4000)))
    }

    @Test func outputsApplyActiveLowAndAreRecorded() throws {
        let gpio = SimulatedGPIOBackend(timing: .manual, start: .ms(5))
        let beacon = try gpio.openOutput(name: "beacon", chip: "gpiochip1", offset: 2, activeLow: true, initial: false)
        #expect(gpio.level(of: "beacon") == true)  // inactive = wire high when active-low
        try beacon.write(true)
        #expect(gpio.level(of: "beacon") == false)
        try beacon.write(false)
        #expect(gpio.writes.map(\.value) == [true, false])
        #expect(gpio.writes.map(\.level) == [false, true])
        #expect(gpio.writes.first?.line == "beacon")
    }

    @Test func aLineCannotBeOpenedTwice() throws {
        let gpio = SimulatedGPIOBackend(timing: .manual)
        _ = try gpio.openInput(name: "a", chip: "gpiochip0", offset: 1, activeLow: false, debounce: .zero)
        let byName = #expect(throws: GPIOError.self) {
            _ = try gpio.openOutput(name: "a", chip: "gpiochip0", offset: 2, activeLow: false, initial: false)
        }
        #expect(byName?.kind == .lineUnavailable)
        let byOffset = #expect(throws: GPIOError.self) {
            _ = try gpio.openInput(name: "b", chip: "gpiochip0", offset: 1, activeLow: false, debounce: .zero)
        }
        #expect(byOffset?.kind == .lineUnavailable)
        #expect(byOffset?.description.contains("gpiochip0:1") == true)
    }

    @Test func realTimeEdgesArriveOnTheEventThreadAfterTheDebounce() throws {
        let gpio = SimulatedGPIOBackend(timing: .realTime)
        defer { gpio.stop() }
        let log = GPIOEdgeLog()
        _ = try gpio.openInput(name: "bus-detect-north", chip: "gpiochip0", offset: 3, activeLow: false, debounce: .milliseconds(10))
        try gpio.startEvents(log.handler)
        #expect(Wait.until(timeout: .seconds(5)) { log.all.count == 1 })

        let injectedAt = MonotonicInstant.now()
        gpio.inject(line: "bus-detect-north", value: true, at: injectedAt)
        #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.all.count == 2 })
        let edge = try #require(log.all.last)
        #expect(edge.value == true && edge.timestamp == injectedAt && !edge.initial)
        #expect(MonotonicInstant.now() - injectedAt >= .milliseconds(10))

        gpio.stop()
        #expect(throws: GPIOError.self) { try gpio.startEvents(log.handler) }
    }
}
