#if !GPIOD_V2
import CGPIOD
#if canImport(Glibc)
import Glibc
#endif

// libgpiod 1.6 (v1 API, Debian 12): the only file that calls it. See LibGPIODBackend.swift.
//
// A chip is used only under the backend's state lock; a line only under its input's or output's
// lock (or on the event thread, reading events under that lock); both are freed only after that
// thread is joined.

/// An open chip (`gpiod_chip`).
struct GPIODChip: @unchecked Sendable {
    private let pointer: OpaquePointer
    /// The kernel's name (`gpiochip0`), nil if libgpiod has none.
    let kernelName: String?

    /// Opens by name, path, number or label (`gpiod_chip_open_lookup`).
    static func open(_ descriptor: String) throws(GPIODFailure) -> GPIODChip {
        guard let p = gpiod_chip_open_lookup(descriptor) else { throw GPIODFailure(errno: errno, step: .open) }
        return GPIODChip(pointer: p, kernelName: gpiod_chip_name(p).map { String(cString: $0) })
    }

    func close() { gpiod_chip_close(pointer) }

    private func line(_ offset: UInt32) throws(GPIODFailure) -> OpaquePointer {
        guard let line = gpiod_chip_get_line(pointer, offset) else { throw GPIODFailure(errno: errno, step: .lineLookup) }
        return line
    }

    /// Requests both-edge events (the v1 uAPI has no debounce: `kernelDebounce` is false).
    func requestInput(offset: UInt32, consumer: String, activeLow: Bool, debounce: Duration) throws(GPIODFailure) -> GPIODLineRequest {
        let line = try line(offset)
        let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        if gpiod_line_request_both_edges_events_flags(line, consumer, flags) != 0 {
            throw GPIODFailure(errno: errno, step: .request)
        }
        let level = gpiod_line_get_value(line)
        let fd = gpiod_line_event_get_fd(line)
        if level < 0 || fd < 0 {
            let code = errno
            gpiod_line_release(line)
            throw GPIODFailure(errno: code, step: .firstRead)
        }
        return GPIODLineRequest(line: line, eventFD: fd, initial: level == 1, kernelDebounce: false)
    }

    func requestOutput(offset: UInt32, consumer: String, activeLow: Bool, initial: Bool) throws(GPIODFailure) -> GPIODLineRequest {
        let line = try line(offset)
        let flags = activeLow ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        if gpiod_line_request_output_flags(line, consumer, flags, initial ? 1 : 0) != 0 {
            throw GPIODFailure(errno: errno, step: .request)
        }
        return GPIODLineRequest(line: line, eventFD: -1, initial: initial, kernelDebounce: false)
    }

    /// The consumer holding the line (as libgpiod saw it at lookup), if any.
    func holder(offset: UInt32) -> String? {
        guard let line = gpiod_chip_get_line(pointer, offset) else { return nil }
        return gpiod_line_consumer(line).map { String(cString: $0) }
    }
}

/// A requested line (`gpiod_line`, owned by its chip).
struct GPIODLineRequest: @unchecked Sendable {
    private let line: OpaquePointer
    /// Readable when events are queued (inputs); -1 for outputs.
    let eventFD: Int32
    /// The logical level when requested.
    let initial: Bool
    /// True when the kernel debounces the line (never with the v1 uAPI).
    let kernelDebounce: Bool

    fileprivate init(line: OpaquePointer, eventFD: Int32, initial: Bool, kernelDebounce: Bool) {
        self.line = line
        self.eventFD = eventFD
        self.initial = initial
        self.kernelDebounce = kernelDebounce
    }

    /// The logical level: 0, 1, or -1 with errno set.
    func value() -> Int32 { gpiod_line_get_value(line) }

    /// Drives the logical level; 0 or the errno.
    func write(_ value: Bool) -> Int32 { gpiod_line_set_value(line, value ? 1 : 0) == 0 ? 0 : errno }

    /// Reads one queued event (the v1 call reads one at a time); 0 or the errno.
    func readEvents(_ events: inout [GPIODEvent]) -> Int32 {
        var event = gpiod_line_event()
        guard gpiod_line_event_read(line, &event) == 0 else { return errno }
        events.append(GPIODEvent(rising: event.event_type == Int32(GPIOD_LINE_EVENT_RISING_EDGE),
                                 at: LibGPIODBackend.monotonicTimestamp(event.ts)))
        return 0
    }

    func release() { gpiod_line_release(line) }
}
#endif
