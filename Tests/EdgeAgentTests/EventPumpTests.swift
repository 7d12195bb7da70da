import EdgeRuntime
import Testing
@testable import EdgeAgent

@Suite struct EventPumpTests {
    @Test func deliversInOrderCountsDropsAndDrainsAtStop() {
        let got = Locked<[Int]>([])
        let droppedSeen = Locked(0)
        let gate = Event()
        let pump = EventPump<Int>(name: "pump-test", capacity: 4) { batch, dropped in
            gate.wait()  // hold the consumer so the queue fills
            got.withLock { $0 += batch }
            droppedSeen.withLock { $0 += dropped }
        }
        pump.post([0])  // not started: ignored
        pump.start()
        pump.post([1, 2])
        pump.post([3, 4])
        pump.post([5, 6, 7, 8, 9])  // over capacity unless the consumer took the first ones
        gate.set()
        pump.stop()
        let delivered = got.withLock { $0 }
        #expect(delivered.first == 1 && delivered == delivered.sorted(), "in order: \(delivered)")
        #expect(delivered.count + pump.dropped == 9)
        #expect(droppedSeen.withLock { $0 } == pump.dropped)
        pump.post([10])  // stopped: ignored
        #expect(got.withLock { $0 }.count == delivered.count)
    }
}
