#if canImport(Glibc)
import Glibc
#endif
public import EdgeRuntime

/// In-process GPIO lines for tests and the simulated board: levels are injected, outputs recorded.
///
/// Lines are identified by name (chip/offset are only checked for double use, as on hardware).
/// `inject(line:value:at:)` sets the *physical* level of a line; inputs see it as a logical value
/// with active-low applied, and edges go through `GPIODebouncer` exactly as with libgpiod.
///
/// Timing:
/// - `.realTime`: time is CLOCK_MONOTONIC; edges are delivered on the backend's event thread,
///   debounce intervals run out in real time.
/// - `.manual`: time is virtual, moved only by `inject(…at:)` and `advance(to:)`; edges are
///   delivered synchronously on the calling thread. For deterministic tests.
public final class SimulatedGPIOBackend: GPIOBackend {
    public enum Timing: Sendable, Equatable {
        case realTime
        case manual
    }

    /// One `write(_:)` to an output, in order.
    public struct RecordedWrite: Sendable, Equatable {
        public var line: String
        /// The logical value written.
        public var value: Bool
        /// The physical level that results (active-low applied).
        public var level: Bool
        public var at: MonotonicInstant
    }

    public let timing: Timing
    private let wakePipe = GPIOWakePipe()
    private let state: Locked<State>

    private struct State {
        /// Physical level per line name (inputs and outputs); absent = low.
        var levels: [String: Bool] = [:]
        var lines = GPIOEdgeLines()
        /// Input name -> (index in `lines`, active-low).
        var inputs: [String: (index: Int, activeLow: Bool)] = [:]
        /// Output name -> active-low.
        var outputs: [String: Bool] = [:]
        var taken: [String: String] = [:]
        var writes: [RecordedWrite] = []
        /// Edges produced but not yet handed to the handler.
        var ready: [GPIOEdge] = []
        var handler: (@Sendable (GPIOEdge) -> Void)?
        var virtualNow: MonotonicInstant
        var thread: OSThread?
        var stopping = false
        var stopped = false
    }

    /// `start`: the initial virtual time (manual timing only).
    public init(timing: Timing = .realTime, start: MonotonicInstant = MonotonicInstant(nanoseconds: 0)) {
        self.timing = timing
        state = Locked(State(virtualNow: start))
    }

    private func now(_ s: State) -> MonotonicInstant { timing == .manual ? s.virtualNow : .now() }

    public func openInput(name: String, chip: String, offset: UInt32, activeLow: Bool, debounce: Duration) throws(GPIOError) -> any GPIOInput {
        let edges = try state.withLock { (s) throws(GPIOError) -> [GPIOEdge] in
            try claim(&s, name: name, chip: chip, offset: offset)
            let logical = (s.levels[name] ?? false) != activeLow
            let index = s.lines.add(name: name, debounce: debounce, initial: logical)
            s.inputs[name] = (index, activeLow)
            let t = now(s)
            var out: [GPIOEdge] = []
            s.lines.emitInitial(now: t) { out.append($0) }
            s.ready += out
            return takeReady(&s)
        }
        deliver(edges)
        return SimulatedInput(name: name, backend: self)
    }

    public func openOutput(name: String, chip: String, offset: UInt32, activeLow: Bool, initial: Bool) throws(GPIOError) -> any GPIOOutput {
        try state.withLock { (s) throws(GPIOError) in
            try claim(&s, name: name, chip: chip, offset: offset)
            s.outputs[name] = activeLow
            s.levels[name] = initial != activeLow
        }
        return SimulatedOutput(name: name, backend: self)
    }

    public func startEvents(_ handler: @escaping @Sendable (GPIOEdge) -> Void) throws(GPIOError) {
        let edges = try state.withLock { (s) throws(GPIOError) -> [GPIOEdge] in
            guard s.handler == nil, !s.stopped else {
                throw GPIOError(kind: .invalidRequest, chip: "simulated", message: "GPIO events already started or backend stopped")
            }
            s.handler = handler
            s.lines.delivering = true
            let t = now(s)
            var out: [GPIOEdge] = []
            s.lines.emitInitial(now: t) { out.append($0) }
            s.ready += out
            if timing == .realTime {
                s.thread = OSThread.start(name: "gpio-sim") { [self] in eventLoop() }
            }
            return takeReady(&s)
        }
        deliver(edges)
    }

    public func stop() {
        let thread = state.withLock { s -> OSThread? in
            s.stopping = true
            s.stopped = true
            defer { s.thread = nil }
            return s.thread
        }
        wakePipe.wake()
        thread?.join()
    }

    // MARK: Test controls

    /// Sets the physical level of `line` at `at` (default: now, or the current virtual time).
    /// A line not opened yet keeps the level as its initial one.
    public func inject(line: String, value: Bool, at: MonotonicInstant? = nil) {
        let edges = state.withLock { s -> [GPIOEdge] in
            let t = at ?? now(s)
            if timing == .manual, t > s.virtualNow { s.virtualNow = t }
            s.levels[line] = value
            guard let input = s.inputs[line] else { return [] }
            var out: [GPIOEdge] = []
            s.lines.settleDue(now: t) { out.append($0) }
            s.lines.observe(input.index, value: value != input.activeLow, at: t) { out.append($0) }
            s.ready += out
            return takeReady(&s)
        }
        deliver(edges)
        if timing == .realTime { wakePipe.wake() }
    }

    /// Manual timing: moves virtual time to `t`, delivering edges whose debounce ran out.
    public func advance(to t: MonotonicInstant) {
        precondition(timing == .manual, "advance(to:) is for manual timing")
        let edges = state.withLock { s -> [GPIOEdge] in
            if t > s.virtualNow { s.virtualNow = t }
            let when = s.virtualNow
            var out: [GPIOEdge] = []
            s.lines.settleDue(now: when) { out.append($0) }
            s.ready += out
            return takeReady(&s)
        }
        deliver(edges)
    }

    /// The physical level of a line (injected, or driven by an output); nil if never set.
    public func level(of line: String) -> Bool? { state.withLock { $0.levels[line] } }

    /// Every output write so far, in order.
    public var writes: [RecordedWrite] { state.withLock { $0.writes } }

    // MARK: Internals

    private func claim(_ s: inout State, name: String, chip: String, offset: UInt32) throws(GPIOError) {
        guard !s.stopped else {
            throw GPIOError(kind: .invalidRequest, chip: chip, offset: offset, line: name, message: "GPIO backend stopped: cannot open \(name)")
        }
        if s.inputs[name] != nil || s.outputs[name] != nil {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name, message: "GPIO line \(name) is already open")
        }
        if let holder = s.taken["\(chip):\(offset)"] {
            throw GPIOError(kind: .lineUnavailable, chip: chip, offset: offset, line: name,
                            message: "GPIO line \(chip):\(offset) is configured twice, for \(holder) and \(name): fix the board file")
        }
        s.taken["\(chip):\(offset)"] = name
    }

    /// Manual timing hands edges to the caller; real time leaves them for the event thread.
    private func takeReady(_ s: inout State) -> [GPIOEdge] {
        guard timing == .manual, s.handler != nil, !s.ready.isEmpty else { return [] }
        defer { s.ready.removeAll(keepingCapacity: true) }
        return s.ready
    }

    private func deliver(_ edges: [GPIOEdge]) {
        guard !edges.isEmpty, let handler = state.withLock({ $0.handler }) else { return }
        for e in edges { handler(e) }
    }

    private func eventLoop() {
        var fds = [pollfd(fd: wakePipe.readFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let (stopping, handler, edges, deadline) = state.withLock { s in
                var out: [GPIOEdge] = []
                s.lines.settleDue(now: .now()) { out.append($0) }
                let edges = s.ready + out
                s.ready.removeAll(keepingCapacity: true)
                return (s.stopping, s.handler, edges, s.lines.nextDeadline)
            }
            if stopping { return }
            if let handler { for e in edges { handler(e) } }
            if poll(&fds, 1, gpioPollTimeout(until: deadline)) > 0 { wakePipe.drain() }
        }
    }

    fileprivate func read(_ name: String) throws(GPIOError) -> Bool {
        try state.withLock { (s) throws(GPIOError) -> Bool in
            guard !s.stopped, let input = s.inputs[name] else {
                throw GPIOError.io("simulated", offset: nil, line: name, errno: nil, operation: "read (line released)")
            }
            return (s.levels[name] ?? false) != input.activeLow
        }
    }

    fileprivate func write(_ name: String, _ value: Bool) throws(GPIOError) {
        try state.withLock { (s) throws(GPIOError) in
            guard !s.stopped, let activeLow = s.outputs[name] else {
                throw GPIOError.io("simulated", offset: nil, line: name, errno: nil, operation: "write (line released)")
            }
            s.levels[name] = value != activeLow
            s.writes.append(RecordedWrite(line: name, value: value, level: value != activeLow, at: now(s)))
        }
    }
}

private final class SimulatedInput: GPIOInput {
    let name: String
    let backend: SimulatedGPIOBackend
    init(name: String, backend: SimulatedGPIOBackend) {
        self.name = name
        self.backend = backend
    }
    func read() throws(GPIOError) -> Bool { try backend.read(name) }
}

private final class SimulatedOutput: GPIOOutput {
    let name: String
    let backend: SimulatedGPIOBackend
    init(name: String, backend: SimulatedGPIOBackend) {
        self.name = name
        self.backend = backend
    }
    func write(_ value: Bool) throws(GPIOError) { try backend.write(name, value) }
}
