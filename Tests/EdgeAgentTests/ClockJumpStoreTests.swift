import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import EdgeAgent

/// A wall clock and a monotonic clock that tests move separately (a wall-clock jump moves only the first).
private final class TwoClocks: Sendable {
    private let state = Mutex((wall: Date(timeIntervalSince1970: 1_800_000_000), elapsed: Duration.zero))
    var wall: Date { state.withLock { $0.wall } }
    var elapsed: Duration { state.withLock { $0.elapsed } }
    /// Real time passes: both clocks move.
    func pass(_ seconds: Double) { state.withLock { $0.wall += seconds; $0.elapsed += .milliseconds(Int64(seconds * 1000)) } }
    /// The wall clock jumps (RTC reset, NTP step); the monotonic clock does not move.
    func jump(_ seconds: Double) { state.withLock { $0.wall += seconds } }
}

/// The stores under the state folder measure ages on a steady wall clock, so wall-clock jumps
/// neither lose queued uplink messages nor forget executed command ids (system test:
/// UplinkFaultTests.wallClockJumpsLeaveTimersOnMonotonicTimeAndScheduleOnWallTime).
@Suite struct ClockJumpStoreTests {
    @Test func steadyClockIgnoresJumpsAndFollowsTheInjectedWallClockWithoutMonotonic() {
        let clocks = TwoClocks()
        let steady = SteadyWallClock(wall: { clocks.wall }, monotonic: { clocks.elapsed })
        let start = clocks.wall
        clocks.pass(10)
        clocks.jump(86_400)
        #expect(steady.wallNow() == start + 86_410)
        #expect(steady.steadyNow() == start + 10)
        let wallOnly = SteadyWallClock(wall: { clocks.wall }, monotonic: nil)
        clocks.jump(-3600)
        #expect(wallOnly.steadyNow() == clocks.wall)
    }

    @Test func aWallClockJumpForwardAgesNoQueuedMessage() throws {
        let dir = ScratchDir("outbox-jump")
        let clocks = TwoClocks()
        let outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 1000, maxAge: .seconds(60), logger: Logger(label: "test.outbox"),
                                now: { clocks.wall }, monotonic: { clocks.elapsed })
        defer { outbox.close() }
        let first = try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { Array("{\"seq\":\($0)}".utf8) }
        clocks.pass(1)
        clocks.jump(2 * 86_400)
        let second = try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { Array("{\"seq\":\($0)}".utf8) }
        try outbox.flush()
        #expect(try outbox.peek(after: nil, limit: 10).map(\.seq) == [first, second])
        #expect(outbox.droppedCount.event == 0)
        // Real time passes beyond max_age: the first (61 s old) goes, the second (60 s old) stays.
        clocks.pass(60)
        try outbox.flush()
        #expect(try outbox.peek(after: nil, limit: 10).map(\.seq) == [second])
        #expect(outbox.droppedCount.event == 1)
    }

    @Test func aWallClockJumpForwardForgetsNoLiveCommandID() throws {
        let dir = ScratchDir("replay-jump")
        let clocks = TwoClocks()
        let store = try ReplayStore(path: dir.file("replay.db"), skew: .seconds(30), now: { clocks.wall }, monotonic: { clocks.elapsed })
        defer { store.close() }
        try store.record("c0", expires: clocks.wall.addingTimeInterval(600))
        clocks.jump(86_400)
        try store.record("c1", expires: clocks.wall.addingTimeInterval(60))   // prunes what has expired
        #expect(store.hasSeen("c0"), "a jump forward made the store forget a command that is valid again once the clock is set back")
        clocks.jump(-86_400)
        clocks.pass(631)
        try store.record("c2", expires: clocks.wall.addingTimeInterval(60))
        #expect(!store.hasSeen("c0"))   // expired (600 s + 30 s skew) on both clocks
    }
}
