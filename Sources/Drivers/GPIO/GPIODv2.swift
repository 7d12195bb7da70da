#if GPIOD_V2
import EdgeRuntime
import CGPIOD
#if canImport(Glibc)
import Glibc
#endif

// libgpiod 2.x (v2 API, Debian 13: 2.2): the only file that calls it. See LibGPIODBackend.swift.
//
// One line request per configured line: inputs with both-edge detection, the configured debounce
// period (the kernel debounces in hardware or in gpiolib; whether it took the period is read back
// from the line info, else the backend debounces in software) and event timestamps on
// CLOCK_MONOTONIC; outputs with their initial value. Active-low is the kernel's, so values are
// logical. A chip is used only under the backend's state lock, a request only under its input's or
// output's lock; both are freed only after the event thread is joined.

/// Events read per `gpiod_line_request_read_edge_events` call.
private let eventBatch = 16

/// An open chip (`gpiod_chip`).
struct GPIODChip: @unchecked Sendable {
    private let pointer: OpaquePointer
    /// The kernel's name (`gpiochip0`), nil if libgpiod has none.
    let kernelName: String?

    /// Opens by path (`/dev/gpiochip0`), name (`gpiochip0`), number (`0`) or label (every
    /// `/dev/gpiochip*` is opened until one has it), like libgpiod 1.6's `gpiod_chip_open_lookup`.
    static func open(_ descriptor: String) throws(GPIODFailure) -> GPIODChip {
        let path: String
        if descriptor.hasPrefix("/") {
            path = descriptor
        } else if !descriptor.isEmpty, descriptor.allSatisfy(\.isASCII), descriptor.allSatisfy(\.isNumber) {
            path = "/dev/gpiochip\(descriptor)"
        } else {
            path = "/dev/\(descriptor)"
        }
        if let p = gpiod_chip_open(path) { return GPIODChip(p) }
        let code = errno
        if code == ENOENT, !descriptor.hasPrefix("/"), let p = openByLabel(descriptor) { return GPIODChip(p) }
        throw GPIODFailure(errno: code, step: .open)
    }

    private init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        var name: String?
        if let info = gpiod_chip_get_info(pointer) {
            name = gpiod_chip_info_get_name(info).map { String(cString: $0) }
            gpiod_chip_info_free(info)
        }
        kernelName = name
    }

    private static func openByLabel(_ label: String) -> OpaquePointer? {
        guard let dir = opendir("/dev") else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix("gpiochip") { names.append(name) }
        }
        for name in names.sorted() {
            guard let p = gpiod_chip_open("/dev/\(name)") else { continue }
            if let info = gpiod_chip_get_info(p) {
                let found = gpiod_chip_info_get_label(info).map { String(cString: $0) } == label
                gpiod_chip_info_free(info)
                if found { return p }
            }
            gpiod_chip_close(p)
        }
        return nil
    }

    func close() { gpiod_chip_close(pointer) }

    /// Fails with EINVAL (as `.lineLookup`) for an offset the chip does not have.
    private func checkLine(_ offset: UInt32) throws(GPIODFailure) {
        guard let info = gpiod_chip_get_line_info(pointer, offset) else { throw GPIODFailure(errno: errno, step: .lineLookup) }
        gpiod_line_info_free(info)
    }

    /// The debounce period (µs) the kernel applies to the line now.
    private func kernelDebounceMicroseconds(_ offset: UInt32) -> UInt {
        guard let info = gpiod_chip_get_line_info(pointer, offset) else { return 0 }
        defer { gpiod_line_info_free(info) }
        return gpiod_line_info_get_debounce_period_us(info)
    }

    /// Requests one line with `configure` applied to fresh settings.
    private func request(_ offset: UInt32, consumer: String, _ configure: (OpaquePointer) -> Int32) throws(GPIODFailure) -> OpaquePointer {
        guard let settings = gpiod_line_settings_new() else { throw GPIODFailure(errno: errno, step: .request) }
        defer { gpiod_line_settings_free(settings) }
        guard let lineConfig = gpiod_line_config_new() else { throw GPIODFailure(errno: errno, step: .request) }
        defer { gpiod_line_config_free(lineConfig) }
        guard let requestConfig = gpiod_request_config_new() else { throw GPIODFailure(errno: errno, step: .request) }
        defer { gpiod_request_config_free(requestConfig) }
        if configure(settings) != 0 { throw GPIODFailure(errno: errno, step: .request) }
        var offsets = [offset]
        if gpiod_line_config_add_line_settings(lineConfig, &offsets, 1, settings) != 0 {
            throw GPIODFailure(errno: errno, step: .request)
        }
        gpiod_request_config_set_consumer(requestConfig, consumer)
        guard let request = gpiod_chip_request_lines(pointer, requestConfig, lineConfig) else {
            throw GPIODFailure(errno: errno, step: .request)
        }
        return request
    }

    /// Requests both-edge events with the kernel's debounce (`kernelDebounce` when it took the period).
    func requestInput(offset: UInt32, consumer: String, activeLow: Bool, debounce: Duration) throws(GPIODFailure) -> GPIODLineRequest {
        try checkLine(offset)
        let nanos = max(0, debounce.nanosecondsClamped)
        let micros = UInt(clamping: (nanos + 999) / 1000)
        let request = try request(offset, consumer: consumer) { settings in
            if gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_INPUT) != 0 { return -1 }
            if gpiod_line_settings_set_edge_detection(settings, GPIOD_LINE_EDGE_BOTH) != 0 { return -1 }
            if gpiod_line_settings_set_event_clock(settings, GPIOD_LINE_CLOCK_MONOTONIC) != 0 { return -1 }
            gpiod_line_settings_set_active_low(settings, activeLow)
            gpiod_line_settings_set_debounce_period_us(settings, micros)
            return 0
        }
        let level = gpiod_line_request_get_value(request, offset)
        let fd = gpiod_line_request_get_fd(request)
        guard level != GPIOD_LINE_VALUE_ERROR, fd >= 0, let buffer = gpiod_edge_event_buffer_new(eventBatch) else {
            let code = errno
            gpiod_line_request_release(request)
            throw GPIODFailure(errno: code, step: .firstRead)
        }
        let debounced = micros > 0 && kernelDebounceMicroseconds(offset) >= micros
        return GPIODLineRequest(request: request, offset: offset, buffer: buffer, eventFD: fd,
                                initial: level == GPIOD_LINE_VALUE_ACTIVE, kernelDebounce: debounced)
    }

    func requestOutput(offset: UInt32, consumer: String, activeLow: Bool, initial: Bool) throws(GPIODFailure) -> GPIODLineRequest {
        try checkLine(offset)
        let request = try request(offset, consumer: consumer) { settings in
            if gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_OUTPUT) != 0 { return -1 }
            gpiod_line_settings_set_active_low(settings, activeLow)
            return gpiod_line_settings_set_output_value(settings, initial ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE)
        }
        return GPIODLineRequest(request: request, offset: offset, buffer: nil, eventFD: -1, initial: initial, kernelDebounce: false)
    }

    /// The consumer holding the line, if any.
    func holder(offset: UInt32) -> String? {
        guard let info = gpiod_chip_get_line_info(pointer, offset) else { return nil }
        defer { gpiod_line_info_free(info) }
        return gpiod_line_info_get_consumer(info).map { String(cString: $0) }
    }
}

/// A line request for one line (`gpiod_line_request`), with its event buffer for inputs.
struct GPIODLineRequest: @unchecked Sendable {
    private let request: OpaquePointer
    private let offset: UInt32
    private let buffer: OpaquePointer?
    /// Readable when events are queued (inputs); -1 for outputs.
    let eventFD: Int32
    /// The logical level when requested.
    let initial: Bool
    /// True when the kernel debounces the line with the requested period.
    let kernelDebounce: Bool

    fileprivate init(request: OpaquePointer, offset: UInt32, buffer: OpaquePointer?, eventFD: Int32, initial: Bool, kernelDebounce: Bool) {
        self.request = request
        self.offset = offset
        self.buffer = buffer
        self.eventFD = eventFD
        self.initial = initial
        self.kernelDebounce = kernelDebounce
    }

    /// The logical level: 0, 1, or -1 with errno set.
    func value() -> Int32 {
        let v = gpiod_line_request_get_value(request, offset)
        return v == GPIOD_LINE_VALUE_ERROR ? -1 : (v == GPIOD_LINE_VALUE_ACTIVE ? 1 : 0)
    }

    /// Drives the logical level; 0 or the errno.
    func write(_ value: Bool) -> Int32 {
        gpiod_line_request_set_value(request, offset, value ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE) == 0 ? 0 : errno
    }

    /// Reads the queued events (up to a batch; call after poll() says the fd is readable); 0 or the errno.
    func readEvents(_ events: inout [GPIODEvent]) -> Int32 {
        guard let buffer else { return EINVAL }
        let n = gpiod_line_request_read_edge_events(request, buffer, eventBatch)
        if n < 0 { return errno }
        for i in 0..<Int(n) {
            guard let event = gpiod_edge_event_buffer_get_event(buffer, UInt(i)) else { continue }
            // Requested on CLOCK_MONOTONIC: the kernel's stamp is on our time base as it is.
            let at = MonotonicInstant(nanoseconds: Int64(truncatingIfNeeded: gpiod_edge_event_get_timestamp_ns(event)))
            events.append(GPIODEvent(rising: gpiod_edge_event_get_event_type(event) == GPIOD_EDGE_EVENT_RISING_EDGE, at: at))
        }
        return 0
    }

    func release() {
        gpiod_line_request_release(request)
        if let buffer { gpiod_edge_event_buffer_free(buffer) }
    }
}
#endif
