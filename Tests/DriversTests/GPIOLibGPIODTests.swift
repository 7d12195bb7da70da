#if canImport(Glibc)
import EdgeRuntime
import Glibc
#endif
import Drivers
import GPIODStubs
import Logging
import Testing
import TestSupport

/// LibGPIODBackend: first against this machine's real libgpiod (no /dev/gpiochip*), then with
/// the test-only gpiod_* stubs playing the kernel so the backend's Swift code runs for real.
/// Serialized: the stubs are process-wide. The same tests run against the libgpiod v1 backend
/// (Debian 12, Tests/GPIODStubs/stubs.c) and the v2 one (Debian 13, stubs_v2.c), whichever the
/// build picked (GPIOD_V2); a few are for one API only.
@Suite(.serialized)
struct GPIOLibGPIODTests {
    static let chip = "gpiochip7"
    let logger = Logger(label: "test.gpio")

    /// Runs `body` with the stubs simulating `gpiochip7` (label "edge-test", 32 lines).
    func withStubChip(_ body: () throws -> Void) rethrows {
        edge_gpiod_stubs_reset()
        #expect(edge_gpiod_stubs_add_chip(Self.chip, "edge-test", 32) == 0)
        edge_gpiod_stubs_enable(1)
        defer {
            edge_gpiod_stubs_enable(0)
            edge_gpiod_stubs_reset()
        }
        try body()
    }

    static func monotonicNow() -> Int64 { MonotonicInstant.now().nanoseconds }

    @Test func aMissingChipIsChipNotFoundNamingTheChip() throws {
        edge_gpiod_stubs_enable(0)  // the real libgpiod
        let gpio = LibGPIODBackend(logger: logger)
        defer { gpio.stop() }
        let error = #expect(throws: GPIOError.self) {
            _ = try gpio.openInput(name: "presence-a", chip: "gpiochip-edge-missing", offset: 3, activeLow: false, debounce: .zero)
        }
        #expect(error?.kind == .chipNotFound)
        #expect(error?.chip == "gpiochip-edge-missing")
        #expect(error?.errno != nil)
        #expect(error?.description.contains("GPIO chip gpiochip-edge-missing not found") == true)
        #expect(error?.description.contains("gpiodetect") == true)
    }

    @Test func linesAreRequestedWithActiveLowAndReadAndWritten() throws {
        try withStubChip {
            let gpio = LibGPIODBackend(consumer: "edge-agent-test", logger: logger)
            defer { gpio.stop() }
            let activeLow = try gpio.openInput(name: "presence-a", chip: Self.chip, offset: 3, activeLow: true, debounce: .zero)
            let plain = try gpio.openInput(name: "loop", chip: "/dev/\(Self.chip)", offset: 4, activeLow: false, debounce: .zero)
            #expect(edge_gpiod_stubs_request_kind(Self.chip, 3) == 1)  // both-edge events
            #expect(edge_gpiod_stubs_request_flags(Self.chip, 3) == 4)  // GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW
            #expect(edge_gpiod_stubs_request_flags(Self.chip, 4) == 0)

            // Wire low: the active-low input is active, the plain one is not.
            #expect(try activeLow.read() == true)
            #expect(try plain.read() == false)
            _ = edge_gpiod_stubs_set_level(Self.chip, 3, 1, Self.monotonicNow())
            #expect(try activeLow.read() == false)

            let motor = try gpio.openOutput(name: "motor-up", chip: Self.chip, offset: 10, activeLow: false, initial: true)
            let lamp = try gpio.openOutput(name: "warning-lamp", chip: Self.chip, offset: 11, activeLow: true, initial: false)
            #expect(edge_gpiod_stubs_request_kind(Self.chip, 10) == 2)
            #expect(edge_gpiod_stubs_get_level(Self.chip, 10) == 1)
            #expect(edge_gpiod_stubs_get_level(Self.chip, 11) == 1)  // inactive, active-low: wire high
            try motor.write(false)
            try lamp.write(true)
            #expect(edge_gpiod_stubs_get_level(Self.chip, 10) == 0)
            #expect(edge_gpiod_stubs_get_level(Self.chip, 11) == 0)
            #expect(edge_gpiod_stubs_open_chips() == 1)  // one chip handle shared by all lines

            gpio.stop()
            #expect(edge_gpiod_stubs_request_kind(Self.chip, 3) == 0)
            #expect(edge_gpiod_stubs_request_kind(Self.chip, 10) == 0)
            #expect(edge_gpiod_stubs_open_chips() == 0)
            let released = #expect(throws: GPIOError.self) { _ = try activeLow.read() }
            #expect(released?.kind == .io)
        }
    }

    @Test func eventsAreReadTimestampedAndDebounced() throws {
        try withStubChip {
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            let log = GPIOEdgeLog()
            _ = try gpio.openInput(name: "presence-a", chip: Self.chip, offset: 3, activeLow: true, debounce: .zero)
            _ = try gpio.openInput(name: "stopline", chip: Self.chip, offset: 5, activeLow: false, debounce: .milliseconds(30))
            try gpio.startEvents(log.handler)
            #expect(Wait.until(timeout: .seconds(5)) { log.all.count == 2 })
            #expect(log.all.allSatisfy { $0.initial })
            #expect(log.of("presence-a").first?.value == true)
            #expect(log.of("stopline").first?.value == false)

            // A kernel event: wire high on the active-low line = logical falling edge, at the kernel's time.
            let t1 = Self.monotonicNow()
            _ = edge_gpiod_stubs_set_level(Self.chip, 3, 1, t1)
            #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.of("presence-a").count == 2 })
            #expect(log.of("presence-a").last == GPIOEdge(line: "presence-a", value: false, timestamp: MonotonicInstant(nanoseconds: t1)))

            // Chatter on the debounced line, stamped 1 ms apart, back to low: nothing is delivered.
            let t2 = Self.monotonicNow()
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 1, t2)
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 0, t2 + 1_000_000)
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 1, t2 + 2_000_000)
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 0, t2 + 3_000_000)
            Wait.until(timeout: .milliseconds(120)) { false }  // well past the 30 ms debounce
            #expect(log.of("stopline").count == 1, "chatter was delivered: \(log.of("stopline"))")

            // A clean change is delivered once it has held for 30 ms, stamped when it happened.
            let t3 = Self.monotonicNow()
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 1, t3)
            #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.of("stopline").count == 2 })
            #expect(Self.monotonicNow() - t3 >= 30_000_000)
            #expect(log.of("stopline").last == GPIOEdge(line: "stopline", value: true, timestamp: MonotonicInstant(nanoseconds: t3)))

            // A line opened after the events started reports its level at once.
            _ = edge_gpiod_stubs_set_level(Self.chip, 6, 1, 0)
            _ = try gpio.openInput(name: "late", chip: Self.chip, offset: 6, activeLow: false, debounce: .zero)
            #expect(Wait.until(timeout: .seconds(5)) { log.of("late").count == 1 })
            #expect(log.of("late").first?.value == true && log.of("late").first?.initial == true)
        }
    }

    #if !GPIOD_V2
    @Test func preLinux57RealtimeTimestampsAreMovedOntoTheMonotonicClock() throws {
        try withStubChip {
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            let log = GPIOEdgeLog()
            _ = try gpio.openInput(name: "door", chip: Self.chip, offset: 8, activeLow: false, debounce: .zero)
            try gpio.startEvents(log.handler)
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            let before = MonotonicInstant.now()
            _ = edge_gpiod_stubs_set_level(Self.chip, 8, 1, Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
            #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.of("door").count == 2 })
            let stamp = try #require(log.of("door").last?.timestamp)
            #expect(stamp - before < .milliseconds(500) && before - stamp < .milliseconds(500))
        }
    }
    #else
    @Test func inputsAskTheKernelForMonotonicTimestampsAndTheDebouncePeriod() throws {
        try withStubChip {
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            _ = try gpio.openInput(name: "stopline", chip: Self.chip, offset: 5, activeLow: false, debounce: .milliseconds(30))
            _ = try gpio.openInput(name: "loop", chip: Self.chip, offset: 6, activeLow: true, debounce: .zero)
            _ = try gpio.openOutput(name: "beacon", chip: Self.chip, offset: 12, activeLow: false, initial: false)
            #expect(edge_gpiod_stubs_request_clock(Self.chip, 5) == 1)  // GPIOD_LINE_CLOCK_MONOTONIC
            #expect(edge_gpiod_stubs_request_clock(Self.chip, 6) == 1)
            #expect(edge_gpiod_stubs_request_debounce_us(Self.chip, 5) == 30_000)
            #expect(edge_gpiod_stubs_request_debounce_us(Self.chip, 6) == 0)
            #expect(edge_gpiod_stubs_request_debounce_us(Self.chip, 12) == 0)
            #expect(edge_gpiod_stubs_request_kind(Self.chip, 12) == 2)
        }
    }

    @Test func linesTheKernelDebouncesAreNotDebouncedAgain() throws {
        try withStubChip {
            #expect(edge_gpiod_stubs_set_kernel_debounce(Self.chip, 1) == 0)
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            let log = GPIOEdgeLog()
            _ = try gpio.openInput(name: "stopline", chip: Self.chip, offset: 5, activeLow: false, debounce: .milliseconds(30))
            try gpio.startEvents(log.handler)
            #expect(Wait.until(timeout: .seconds(5)) { log.of("stopline").count == 1 })

            // The kernel delivers only settled edges: each one reaches the handler, stamped as the kernel stamped it.
            let t = Self.monotonicNow()
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 1, t)
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 0, t + 1_000_000)
            _ = edge_gpiod_stubs_set_level(Self.chip, 5, 1, t + 2_000_000)
            #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(2)) { log.of("stopline").count == 4 })
            #expect(log.of("stopline").dropFirst().map(\.value) == [true, false, true])
            #expect(log.of("stopline").dropFirst().map(\.timestamp) == [MonotonicInstant(nanoseconds: t), MonotonicInstant(nanoseconds: t + 1_000_000), MonotonicInstant(nanoseconds: t + 2_000_000)])
        }
    }

    @Test func aChipIsFoundByPathNameOrNumberAndOpenedOnce() throws {
        try withStubChip {
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            _ = try gpio.openInput(name: "a", chip: "7", offset: 1, activeLow: false, debounce: .zero)
            _ = try gpio.openInput(name: "b", chip: "/dev/\(Self.chip)", offset: 2, activeLow: false, debounce: .zero)
            _ = try gpio.openOutput(name: "c", chip: Self.chip, offset: 3, activeLow: false, initial: true)
            #expect(edge_gpiod_stubs_open_chips() == 1)
            let twice = #expect(throws: GPIOError.self) {
                _ = try gpio.openInput(name: "d", chip: "7", offset: 3, activeLow: false, debounce: .zero)
            }
            #expect(twice?.kind == .lineUnavailable)
        }
    }
    #endif

    @Test func aBusyLineIsLineUnavailableNamingTheHolder() throws {
        try withStubChip {
            _ = edge_gpiod_stubs_set_external_consumer(Self.chip, 9, "gpiomon")
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            let busy = #expect(throws: GPIOError.self) {
                _ = try gpio.openInput(name: "bus-detect-north", chip: Self.chip, offset: 9, activeLow: false, debounce: .zero)
            }
            #expect(busy?.kind == .lineUnavailable)
            #expect(busy?.errno == EBUSY)
            #expect(busy?.offset == 9)
            #expect(busy?.description.contains("gpiochip7:9 (bus-detect-north)") == true)
            #expect(busy?.description.contains("gpiomon") == true)

            _ = try gpio.openOutput(name: "beacon", chip: Self.chip, offset: 12, activeLow: false, initial: false)
            let twice = #expect(throws: GPIOError.self) {
                _ = try gpio.openInput(name: "other", chip: Self.chip, offset: 12, activeLow: false, debounce: .zero)
            }
            #expect(twice?.kind == .lineUnavailable)
        }
    }

    @Test func badOffsetsAndPermissionsAreNamed() {
        withStubChip {
            let gpio = LibGPIODBackend(logger: logger)
            defer { gpio.stop() }
            let offset = #expect(throws: GPIOError.self) {
                _ = try gpio.openInput(name: "far", chip: Self.chip, offset: 40, activeLow: false, debounce: .zero)
            }
            #expect(offset?.kind == .lineNotFound)
            #expect(offset?.description.contains("gpioinfo gpiochip7") == true)

            _ = edge_gpiod_stubs_add_chip("gpiochip8", "locked", 8)
            _ = edge_gpiod_stubs_set_open_errno("gpiochip8", EACCES)
            let denied = #expect(throws: GPIOError.self) {
                _ = try gpio.openOutput(name: "relay", chip: "gpiochip8", offset: 1, activeLow: false, initial: false)
            }
            #expect(denied?.kind == .permissionDenied)
            #expect(denied?.description.contains("/dev/gpiochip8") == true)
        }
    }
}
