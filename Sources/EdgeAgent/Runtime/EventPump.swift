import EdgeRuntime
import Logging

/// Carries batches from the control loop to a slower consumer (logging, the outbox's disk
/// writes) on a thread of its own, so the loop never waits on a disk, a log pipe or SQLite.
///
/// `post` never blocks for long and never allocates more than the bound: past `capacity`
/// queued items, new batches are dropped and counted (`dropped`), and the consumer is told
/// how many at its next call. Items are delivered in the order posted. `stop()` delivers
/// what is queued, then ends the thread.
final class EventPump<Item: Sendable>: Sendable {
    private struct State {
        var queue: [[Item]] = []
        var queuedItems = 0
        var droppedSinceLast = 0
        var droppedTotal = 0
        var running = false
        var finished = false
    }
    private let state = Locked(State())
    private let capacity: Int
    let name: String
    private let consume: @Sendable (_ batch: [Item], _ droppedBefore: Int) -> Void

    init(name: String, capacity: Int, consume: @escaping @Sendable (_ batch: [Item], _ droppedBefore: Int) -> Void) {
        precondition(capacity > 0)
        self.name = name
        self.capacity = capacity
        self.consume = consume
    }

    /// Items dropped so far because the consumer fell `capacity` behind.
    var dropped: Int { state.withLock { $0.droppedTotal } }

    func start() {
        state.withLock { $0.running = true }
        OSThread.detached(name: name) { [self] in run() }
    }

    /// Queues a batch (from the loop thread); drops it when the queue is full.
    func post(_ batch: [Item]) {
        guard !batch.isEmpty else { return }
        let capacity = self.capacity
        let queued = state.withLock { s -> Bool in
            guard s.running else { return false }
            if s.queuedItems + batch.count > capacity {
                s.droppedSinceLast += batch.count
                s.droppedTotal += batch.count
                return false
            }
            s.queue.append(batch)
            s.queuedItems += batch.count
            return true
        }
        if queued { state.signal() }
    }

    /// Delivers what is queued, then stops the thread (waits at most `timeout`).
    func stop(timeout: Duration = .seconds(5)) {
        state.withLock { $0.running = false }
        state.broadcast()
        _ = state.wait(until: MonotonicInstant.now() + timeout) { $0.finished ? true : nil }
    }

    private func run() {
        while true {
            // nil batches: nothing queued and stopping.
            let (batches, droppedBefore) = state.wait { s -> ([[Item]]?, Int)? in
                if s.queue.isEmpty {
                    guard !s.running else { return nil }
                    s.finished = true
                    return (nil, 0)
                }
                let batches = s.queue
                s.queue.removeAll(keepingCapacity: true)
                s.queuedItems = 0
                defer { s.droppedSinceLast = 0 }
                return (batches, s.droppedSinceLast)
            } ?? (nil, 0)
            guard let batches else {
                state.broadcast()
                return
            }
            var dropped = droppedBefore
            for batch in batches {
                consume(batch, dropped)
                dropped = 0
            }
        }
    }
}
