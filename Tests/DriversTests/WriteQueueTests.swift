import Foundation
import Testing
@testable import Drivers

/// `WriteQueue`: coalescing per device and point for every priority, the bound, safe values
/// first whatever the register order, and what a failed request leaves written.
@Suite struct WriteQueueTests {
    final class Outcomes: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [(String, Result<Void, FieldDeviceError>)] = []
        func record(_ tag: String) -> WriteQueue.Completion { { r in self.lock.withLock { self.list.append((tag, r)) } } }
        var all: [(String, Result<Void, FieldDeviceError>)] { lock.withLock { list } }
        func of(_ tag: String) -> Result<Void, FieldDeviceError>? { all.first { $0.0 == tag }?.1 }
    }

    static func bit(_ address: UInt16) -> DeviceProfile.Point { DeviceProfile.Point(table: .coil, address: address, type: .bool) }
    /// A vendor bollard with motor_down BELOW motor_up in the register map.
    static let profile = DeviceProfile(name: "vendor-bollard", kind: .bollard, points: [
        "motor_down": bit(0), "motor_up": bit(1), "warning": bit(2), "buzzer": bit(3),
    ])

    static func points(_ values: [(String, Double, Bool)]) -> [(name: String, definition: DeviceProfile.Point, words: [UInt16], safe: Bool)] {
        values.map { ($0.0, profile.points[$0.0]!, [$0.1 != 0 ? 1 : 0], $0.2) }
    }

    static func run(_ queue: inout WriteQueue, _ outcomes: [(WriteQueue.Completion, Result<Void, FieldDeviceError>)]) {
        for (c, r) in outcomes { c(r) }
    }

    @Test func aPendingMotorOffIsReplacedNeverDuplicatedWhateverThePriority() {
        var q = WriteQueue(devices: 1)
        let o = Outcomes()
        for i in 0..<1000 {
            Self.run(&q, q.enqueue(device: 0, name: "b", points: Self.points([("motor_up", 0, true), ("motor_down", 0, true)]),
                                   priority: i % 2 == 0 ? .safety : .control, verify: true, now: Int64(i), completion: o.record("cut-\(i)")))
        }
        #expect(q.count == 2)
        #expect(q.ticketCount == 1)
        #expect(q.summary(0) == WriteSummary(safety: true, oldestQueuedAt: 0), "keeps the highest priority and the oldest time")
        #expect(o.all.count == 999)
        #expect(o.all.allSatisfy { if case .failure(let e) = $0.1 { return e.isSuperseded } else { return false } })
        let batch = q.take(0)!
        Self.run(&q, q.finish(batch, written: batch.requests.count, failure: nil))
        #expect(o.of("cut-999").map { if case .success = $0 { true } else { false } } == true)
        #expect(q.count == 0 && q.ticketCount == 0)
    }

    /// `pendingDevices` (what `BusScheduler.next` looks at) is exactly the devices with a
    /// summary, through random enqueues, empty writes, safety-only and full takes.
    @Test func pendingDevicesAreExactlyTheDevicesWithPendingWrites() {
        var q = WriteQueue(devices: 6)
        var rng = SplitMix64(seed: 7)
        let names = ["motor_down", "motor_up", "warning", "buzzer"]
        for step in 0..<3000 {
            let d = Int.random(in: 0..<6, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0, 1:
                let chosen = names.filter { _ in Int.random(in: 0..<3, using: &rng) == 0 }
                _ = q.enqueue(device: d, name: "d\(d)", points: Self.points(chosen.map { ($0, 1, false) }),
                              priority: Bool.random(using: &rng) ? .safety : .control, verify: false, now: Int64(step), completion: nil)
            case 2:
                if let b = q.take(d, onlySafety: true) { _ = q.finish(b, written: b.requests.count, failure: nil) }
            default:
                if let b = q.take(d) { _ = q.finish(b, written: b.requests.count, failure: nil) }
            }
            let expected = Set((0..<6).filter { q.summary($0) != nil })
            #expect(Set(q.pendingDevices) == expected && q.pendingDevices.count == expected.count, "step \(step)")
        }
    }

    @Test func requestOffAndOnKeepTheirOrderLatestWins() {
        var q = WriteQueue(devices: 1)
        let o = Outcomes()
        Self.run(&q, q.enqueue(device: 0, name: "j", points: Self.points([("warning", 1, false)]), priority: .control, verify: true, now: 0, completion: o.record("on")))
        Self.run(&q, q.enqueue(device: 0, name: "j", points: Self.points([("warning", 0, true)]), priority: .safety, verify: true, now: 1, completion: o.record("off")))
        let batch = q.take(0)!
        #expect(batch.requests.map(\.words) == [[0]], "only the latest value goes out")
    }

    @Test func safeValuesGoFirstWhateverTheRegisterOrder() {
        var q = WriteQueue(devices: 1)
        // A reversal: motor_up (address 1) off, motor_down (address 0) on, warning (2) on, buzzer (3) off.
        _ = q.enqueue(device: 0, name: "b", points: Self.points([("motor_down", 1, false), ("motor_up", 0, true), ("warning", 1, false), ("buzzer", 0, true)]),
                      priority: .safety, verify: true, now: 0, completion: nil)
        let batch = q.take(0)!
        #expect(batch.requests.map(\.points) == [["motor_up"], ["buzzer"], ["motor_down"], ["warning"]])
        #expect(batch.requests.map(\.safe) == [true, true, false, false])
    }

    @Test func contiguousPointsOfOneDirectionAreOneRequest() {
        var q = WriteQueue(devices: 1)
        _ = q.enqueue(device: 0, name: "b", points: Self.points([("motor_down", 0, true), ("motor_up", 0, true), ("warning", 0, true), ("buzzer", 0, true)]),
                      priority: .safety, verify: true, now: 0, completion: nil)
        let batch = q.take(0)!
        #expect(batch.requests.count == 1)
        #expect(batch.requests[0].address == 0 && batch.requests[0].words == [0, 0, 0, 0])
    }

    @Test func aFailedRequestLeavesOnlySafeValuesWritten() {
        var q = WriteQueue(devices: 1)
        let o = Outcomes()
        _ = q.enqueue(device: 0, name: "b", points: Self.points([("motor_down", 1, false), ("motor_up", 0, true)]), priority: .safety, verify: true, now: 0,
                      completion: o.record("reversal"))
        let batch = q.take(0)!
        // The safe request (motor_up off) times out: motor_down on is never sent.
        let timeout = FieldDeviceError(device: "b", message: "timeout", isCommunicationLoss: true)
        Self.run(&q, q.finish(batch, written: 0, failure: timeout))
        guard case .failure(let e) = o.of("reversal") else { Issue.record("no failure reported"); return }
        #expect(e.message == "timeout" && e.isCommunicationLoss)
        // Safe written, the on-going one fails: the write fails naming it, nothing else pending.
        _ = q.enqueue(device: 0, name: "b", points: Self.points([("motor_down", 1, false), ("motor_up", 0, true)]), priority: .safety, verify: true, now: 1,
                      completion: o.record("second"))
        let second = q.take(0)!
        Self.run(&q, q.finish(second, written: 1, failure: FieldDeviceError(device: "b", message: "exception 4")))
        guard case .failure(let e2) = o.of("second") else { Issue.record("no failure reported"); return }
        #expect(e2.message == "exception 4")
        #expect(q.count == 0)
    }

    @Test func onlySafetyTakesTheSafetyPointsAndLeavesTheRest() {
        var q = WriteQueue(devices: 2)
        _ = q.enqueue(device: 1, name: "b", points: Self.points([("warning", 1, false)]), priority: .control, verify: true, now: 0, completion: nil)
        _ = q.enqueue(device: 1, name: "b", points: Self.points([("motor_up", 0, true)]), priority: .safety, verify: true, now: 0, completion: nil)
        #expect(q.take(0) == nil)
        #expect(q.take(1, onlySafety: true)?.requests.map(\.points) == [["motor_up"]])
        #expect(q.count == 1)
    }

    /// Property: whatever sequence of writes, the queue never holds more than one entry per
    /// device-point, every ticket completes exactly once, and a batch lists safe points first.
    @Test func propertyBoundedAndEveryWriteCompletesOnce() {
        var rng = SplitMix64(seed: 7)
        let names = ["motor_down", "motor_up", "warning", "buzzer"]
        var q = WriteQueue(devices: 3)
        let o = Outcomes()
        var issued = 0
        for step in 0..<5000 {
            if Int.random(in: 0..<4, using: &rng) == 0 {
                let d = Int.random(in: 0..<3, using: &rng)
                if let batch = q.take(d) {
                    let safeCount = batch.requests.prefix { $0.safe }.count
                    #expect(batch.requests.dropFirst(safeCount).allSatisfy { !$0.safe })
                    let fail = Int.random(in: 0..<3, using: &rng) == 0
                    let written = fail ? Int.random(in: 0..<batch.requests.count, using: &rng) : batch.requests.count
                    Self.run(&q, q.finish(batch, written: written, failure: fail ? FieldDeviceError(device: "", message: "x", isCommunicationLoss: true) : nil))
                }
            } else {
                let picked = names.filter { _ in Bool.random(using: &rng) }
                let pts = picked.map { ($0, Double(Int.random(in: 0...1, using: &rng)), Bool.random(using: &rng)) }
                issued += 1
                Self.run(&q, q.enqueue(device: Int.random(in: 0..<3, using: &rng), name: "d", points: Self.points(pts),
                                       priority: Bool.random(using: &rng) ? .safety : .control, verify: true, now: Int64(step), completion: o.record("w\(step)")))
            }
            #expect(q.count <= 3 * names.count)
            #expect(q.ticketCount <= q.count)
        }
        for d in 0..<3 { if let b = q.take(d) { Self.run(&q, q.finish(b, written: b.requests.count, failure: nil)) } }
        let tags = o.all.map(\.0)
        #expect(tags.count == issued, "completed \(tags.count) of \(issued)")
        #expect(Set(tags).count == tags.count, "a completion ran twice")
    }
}
