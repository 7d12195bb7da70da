import EdgeRuntime
import Drivers
import Synchronization

/// Collects the edges a GPIO backend delivers (from its event thread or the caller's).
final class GPIOEdgeLog: Sendable {
    private let edges = Mutex<[GPIOEdge]>([])

    var handler: @Sendable (GPIOEdge) -> Void { { [self] e in edges.withLock { $0.append(e) } } }
    var all: [GPIOEdge] { edges.withLock { $0 } }
    func of(_ line: String) -> [GPIOEdge] { all.filter { $0.line == line } }
    /// (value, initial) pairs of one line, for compact expectations.
    func values(_ line: String) -> [Bool] { of(line).map(\.value) }
}

extension MonotonicInstant {
    static func ms(_ m: Int64) -> MonotonicInstant { MonotonicInstant(nanoseconds: m * 1_000_000) }
}
