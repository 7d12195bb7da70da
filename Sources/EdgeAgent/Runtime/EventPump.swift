import EdgeRuntime
import Logging

/// Carries batches from the control loop to a slower consumer (logging, the outbox's disk
/// writes) on a thread of its own, so the loop never waits on a disk, a log pipe or SQLite.
///
/// `post` never blocks for long and never allocates more than the bound: past `capacity`
/// queued items, new batches are dropped and counted (`dropped`), and the consumer is told
/// how many at its next call. Items are delivered in the order posted. `stop()` delivers
/// what is queued, then ends the thread.
final class EventPump<Item: Sendable>: @unchecked Sendable {
    private let cond = Lock()
    private var queue: [[Item]] = []
    private var queuedItems = 0
    private var droppedSinceLast = 0
    private var droppedTotal = 0
    private var running = false
    private var finished = false
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
    var dropped: Int { cond.withLock { droppedTotal } }

    func start() {
        cond.withLock { running = true }
        OSThread.detached(name: name) { [self] in run() }
    }

    /// Queues a batch (from the loop thread); drops it when the queue is full.
    func post(_ batch: [Item]) {
        guard !batch.isEmpty else { return }
        cond.lock()
        defer { cond.unlock() }
        guard running else { return }
        if queuedItems + batch.count > capacity {
            droppedSinceLast += batch.count
            droppedTotal += batch.count
            return
        }
        queue.append(batch)
        queuedItems += batch.count
        cond.signal()
    }

    /// Delivers what is queued, then stops the thread (waits at most `timeout`).
    func stop(timeout: Duration = .seconds(5)) {
        cond.lock()
        running = false
        cond.broadcast()
        let deadline = MonotonicInstant.now() + timeout
        while !finished, cond.wait(until: deadline) {}
        cond.unlock()
    }

    private func run() {
        while true {
            cond.lock()
            while queue.isEmpty && running { cond.wait() }
            if queue.isEmpty && !running {
                finished = true
                cond.broadcast()
                cond.unlock()
                return
            }
            let batches = queue
            queue.removeAll(keepingCapacity: true)
            queuedItems = 0
            var dropped = droppedSinceLast
            droppedSinceLast = 0
            cond.unlock()
            for batch in batches {
                consume(batch, dropped)
                dropped = 0
            }
        }
    }
}
