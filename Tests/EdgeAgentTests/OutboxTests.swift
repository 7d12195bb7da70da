#if canImport(Glibc)
import EdgeRuntime
import Glibc
#endif
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport
@testable import EdgeAgent

/// A settable wall clock for the outbox's age bound.
final class OutboxTestClock: Sendable {
    private let value: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { value = Mutex(start) }
    var now: Date { value.withLock { $0 } }
    func advance(_ seconds: Double) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

private let logger = Logger(label: "test.outbox")

private func payload(_ seq: UInt64, _ text: String = "") -> [UInt8] {
    Array("{\"seq\":\(seq)\(text)}".utf8)
}

private func openOutbox(_ dir: ScratchDir, max: Int = 1_000_000, maxAge: Duration = .seconds(7 * 86_400), clock: OutboxTestClock? = nil) throws -> Outbox {
    if let clock {
        return try Outbox(path: dir.file("outbox.db"), maxMessages: max, maxAge: maxAge, logger: logger, now: { clock.now })
    }
    return try Outbox(path: dir.file("outbox.db"), maxMessages: max, maxAge: maxAge, logger: logger)
}

@Suite struct OutboxTests {
    @Test func messagesAndSeqPersistAcrossCloseAndReopen() throws {
        let dir = ScratchDir("outbox")
        var outbox = try openOutbox(dir)
        let a = try outbox.append(topic: "edge/v1/gw/event/lamp-01", qos: 1, retain: false, priority: .event) { payload($0, ",\"type\":\"presence\"") }
        let b = try outbox.appendBuffered(topic: "edge/v1/gw/telemetry/lamp-01", qos: 1, retain: false, priority: .telemetry) { payload($0) }
        let c = try outbox.append(topic: "edge/v1/gw/status", qos: 1, retain: true, priority: .event) { payload($0) }
        #expect([a, b, c] == [1, 2, 3])
        outbox.close()
        #expect(throws: OutboxError.self) { try outbox.append(topic: "x", qos: 1, retain: false, priority: .event) { payload($0) } }

        outbox = try openOutbox(dir)
        defer { outbox.close() }
        let held = try outbox.peek(after: nil, limit: 10)
        #expect(held.map(\.seq) == [1, 2, 3])
        #expect(held[0].topic == "edge/v1/gw/event/lamp-01")
        #expect(held[0].payload == payload(1, ",\"type\":\"presence\""))
        #expect(held[0].priority == .event)
        #expect(held[1].priority == .telemetry)
        #expect(held[2].retain && held[2].qos == 1)
        #expect(outbox.lastSeq == 3)
        let d = try outbox.append(topic: "t", qos: 0, retain: false, priority: .telemetry) { payload($0) }
        #expect(d == 4)
        #expect(outbox.count == 4)
    }

    @Test func seqIsNeverReusedAfterEverythingWasRemoved() throws {
        let dir = ScratchDir("outbox")
        var outbox = try openOutbox(dir)
        for _ in 0..<5 { try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) } }
        for seq in 1...5 { try outbox.remove(seq: UInt64(seq)) }
        #expect(outbox.count == 0)
        outbox.close()
        outbox = try openOutbox(dir)
        defer { outbox.close() }
        #expect(try outbox.peek(after: nil, limit: 10).isEmpty)
        let next = try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) }
        #expect(next == 6)
    }

    @Test func seqIsNeverReusedWhenTheDatabaseFileIsLost() throws {
        let dir = ScratchDir("outbox")
        var outbox = try openOutbox(dir)
        for _ in 0..<5 { try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) } }
        outbox.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("outbox.db" + suffix)) }
        #expect(FileManager.default.fileExists(atPath: dir.file("seq")))

        outbox = try openOutbox(dir)
        defer { outbox.close() }
        #expect(outbox.recoveredFromCorruption == nil)
        #expect(outbox.count == 0)
        let next = try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) }
        #expect(next > 5)
        #expect(try outbox.peek(after: nil, limit: 1).first?.payload == payload(next))
    }

    @Test func peekIsInSeqOrderAndSkipsRemovedMessages() throws {
        let dir = ScratchDir("outbox")
        let outbox = try openOutbox(dir)
        defer { outbox.close() }
        for i in 0..<10 {
            try outbox.appendBuffered(topic: "t", qos: 1, retain: false, priority: i % 3 == 0 ? .event : .telemetry) { payload($0) }
        }
        try outbox.flush()
        #expect(try outbox.peek(after: nil, limit: 4).map(\.seq) == [1, 2, 3, 4])
        #expect(try outbox.peek(after: 4, limit: 100).map(\.seq) == [5, 6, 7, 8, 9, 10])
        try outbox.remove(seq: 5)
        try outbox.remove(seq: 6)
        // Pending (not yet committed) removals are already left out.
        #expect(try outbox.peek(after: 4, limit: 2).map(\.seq) == [7, 8])
        try outbox.flush()
        #expect(try outbox.peek(after: 4, limit: 2).map(\.seq) == [7, 8])
        #expect(outbox.count == 8)
        try outbox.remove(seq: 999)  // unknown: nothing happens
        #expect(outbox.count == 8)
    }

    @Test func bufferedAppendsBecomeDurableWithinTheBatchWindow() throws {
        let dir = ScratchDir("outbox")
        let outbox = try openOutbox(dir)
        defer { outbox.close() }
        let committed = Mutex<UInt64>(0)
        outbox.setCommitHandler { seq in committed.withLock { $0 = max($0, seq) } }
        let seq = try outbox.appendBuffered(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) }
        // The background thread commits it without any further call (bounded wait).
        #expect(Wait.until(timeout: .seconds(5), interval: .milliseconds(5)) { committed.withLock { $0 } >= seq })
        #expect(try outbox.peek(after: nil, limit: 10).map(\.seq) == [seq])
    }

    @Test func concurrentDurableAppendsShareCommitsAndKeepUniqueSeqs() async throws {
        let dir = ScratchDir("outbox")
        let outbox = try openOutbox(dir)
        defer { outbox.close() }
        let seqs = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mine: [UInt64] = []
                    for _ in 0..<200 {
                        mine.append(try outbox.append(topic: "w\(worker)", qos: 1, retain: false, priority: .event) { payload($0) })
                    }
                    return mine
                }
            }
            var all: [UInt64] = []
            for try await part in group {
                #expect(part == part.sorted())
                all += part
            }
            return all
        }
        #expect(Set(seqs).count == 800)
        #expect(seqs.sorted() == Array(1...800))
        #expect(try outbox.peek(after: nil, limit: 1000).map(\.seq) == Array(1...800))
    }

    @Test func whenFullTelemetryIsDroppedFirstAndEventsAreKept() throws {
        let dir = ScratchDir("outbox")
        var outbox = try openOutbox(dir, max: 100)
        var events: [UInt64] = []
        for i in 0..<150 {
            try outbox.appendBuffered(topic: "tele", qos: 0, retain: false, priority: .telemetry) { payload($0) }
            if i % 5 == 0 {
                events.append(try outbox.append(topic: "event", qos: 1, retain: false, priority: .event) { payload($0) })
            }
        }
        try outbox.flush()
        #expect(events.count == 30)
        #expect(outbox.count == 100)
        let held = try outbox.peek(after: nil, limit: 1000)
        #expect(held.count == 100)
        #expect(held.filter { $0.priority == .event }.map(\.seq) == events)
        #expect(outbox.droppedCount.telemetry == 80)
        #expect(outbox.droppedCount.event == 0)
        // The telemetry kept is the newest.
        let keptTelemetry = held.filter { $0.priority == .telemetry }.map(\.seq)
        let allTelemetry = (UInt64(1)...180).filter { !events.contains($0) }
        #expect(keptTelemetry == Array(allTelemetry.suffix(70)))
        outbox.close()

        // Counters persist.
        outbox = try openOutbox(dir, max: 100)
        #expect(outbox.droppedCount.telemetry == 80)
        #expect(outbox.droppedCount.event == 0)
        outbox.close()
    }

    @Test func eventsAreDroppedOnlyWhenNoTelemetryIsLeft() throws {
        let dir = ScratchDir("outbox")
        let outbox = try openOutbox(dir, max: 10)
        defer { outbox.close() }
        try outbox.append(topic: "tele", qos: 0, retain: false, priority: .telemetry) { payload($0) }
        for _ in 0..<14 { try outbox.append(topic: "event", qos: 1, retain: false, priority: .event) { payload($0) } }
        #expect(outbox.count == 10)
        let held = try outbox.peek(after: nil, limit: 100)
        #expect(held.allSatisfy { $0.priority == .event })
        #expect(held.map(\.seq) == Array(6...15))
        #expect(outbox.droppedCount.telemetry == 1)
        #expect(outbox.droppedCount.event == 4)
    }

    @Test func messagesOlderThanMaxAgeArePrunedAndCounted() throws {
        let dir = ScratchDir("outbox")
        let clock = OutboxTestClock()
        let outbox = try openOutbox(dir, maxAge: .seconds(60), clock: clock)
        defer { outbox.close() }
        for i in 0..<5 { try outbox.append(topic: "t", qos: 1, retain: false, priority: i < 3 ? .telemetry : .event) { payload($0) } }
        clock.advance(30)
        for _ in 0..<3 { try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { payload($0) } }
        try outbox.flush()
        #expect(outbox.count == 8)
        clock.advance(40)  // the first five are now 70 s old, the last three 40 s
        try outbox.flush()
        #expect(try outbox.peek(after: nil, limit: 100).map(\.seq) == [6, 7, 8])
        #expect(outbox.droppedCount.telemetry == 3)
        #expect(outbox.droppedCount.event == 2)
        #expect(outbox.count == 3)
    }

    @Test func aCorruptFileIsMovedAsideAndSeqKeepsGoingUp() throws {
        let dir = ScratchDir("outbox")
        var outbox = try openOutbox(dir)
        for _ in 0..<3 { try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { payload($0) } }
        outbox.close()
        var garbage = [UInt8](repeating: 0, count: 8192)
        for i in garbage.indices { garbage[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
        try Data(garbage).write(to: URL(fileURLWithPath: dir.file("outbox.db")))

        outbox = try openOutbox(dir)
        defer { outbox.close() }
        let aside = try #require(outbox.recoveredFromCorruption)
        #expect(aside.hasPrefix(dir.file("outbox.db.corrupt-")))
        #expect(FileManager.default.contents(atPath: aside) == Data(garbage))
        #expect(outbox.count == 0)
        let next = try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { payload($0) }
        #expect(next > 3)
        #expect(try outbox.peek(after: nil, limit: 10).map(\.seq) == [next])
    }

    @Test func errorsNameTheFileAndTheReason() throws {
        let error = OutboxError(SQLiteError(code: 13, extendedCode: 13, message: "database or disk is full", path: "/var/lib/edge-agent/outbox.db"), store: "outbox")
        #expect(error.code == .diskFull)
        #expect(error.description == "outbox /var/lib/edge-agent/outbox.db: disk full (SQLITE_FULL)")
        // A folder that cannot be created is a cannot-open error naming it.
        let dir = ScratchDir("outbox")
        _ = dir.write("file", "not a folder")
        let cannotOpen = #expect(throws: OutboxError.self) {
            try Outbox(path: dir.file("file") + "/sub/outbox.db", maxMessages: 10, maxAge: .zero, logger: logger)
        }
        #expect(cannotOpen?.code == .cannotOpen)
        #expect(cannotOpen?.description.contains(dir.file("file")) == true)
        #expect(throws: OutboxError.self) { try Outbox(path: dir.file("o.db"), maxMessages: 0, maxAge: .zero, logger: logger) }
    }

    @Test(.enabled(if: TinyFileSystem.permitted, "needs root to mount a 512 KiB tmpfs"))
    func diskFullIsReportedAndTheOutboxRecoversWhenSpaceIsBack() throws {
        let fs = try #require(TinyFileSystem(sizeKiB: 512))
        defer { fs.unmount() }
        let outbox = try Outbox(path: fs.path + "/outbox.db", maxMessages: 100_000, maxAge: .zero, logger: logger)
        defer { outbox.close() }
        let first = try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { payload($0) }
        fs.fill()

        let big = String(repeating: "x", count: 16_384)
        var failure: OutboxError?
        var stored: [UInt64] = [first]
        for _ in 0..<200 {
            do {
                stored.append(try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { payload($0, ",\"pad\":\"\(big)\"") })
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure, "append never failed on a full file system")
        #expect(error.code == .diskFull)
        #expect(error.description.hasPrefix("outbox \(fs.path)/"))
        #expect(error.description.contains("disk full"))
        #expect(outbox.lastError?.code == .diskFull)

        fs.freeFiller()
        let after = try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { payload($0) }
        #expect(after > stored.last!)
        #expect(outbox.lastError == nil)
        let held = try outbox.peek(after: nil, limit: 1000).map(\.seq)
        #expect(held == stored + [after])
    }

    @Test func throughputOfBatchedAppendsAndRemoves() throws {
        let dir = ScratchDir("outbox")
        let outbox = try openOutbox(dir)
        defer { outbox.close() }
        // EDGE_OUTBOX_BENCH_N=1000000 measures the design's full million.
        let n = ProcessInfo.processInfo.environment["EDGE_OUTBOX_BENCH_N"].flatMap { Int($0) } ?? 100_000
        let clock = ContinuousClock()
        let topic = "edge/v1/cab-0042/telemetry/lamp-01"
        let appendTime = try clock.measure {
            for _ in 0..<n {
                try outbox.appendBuffered(topic: topic, qos: 1, retain: false, priority: .telemetry) { seq in
                    Array("{\"seq\":\(seq),\"ts\":\"2026-11-23T06:30:00.123Z\",\"values\":{\"level\":80,\"power_w\":41.5}}".utf8)
                }
            }
            try outbox.flush()
        }
        #expect(outbox.count == n)
        var removed = 0
        var cursor: UInt64?
        let removeTime = try clock.measure {
            while true {
                let page = try outbox.peek(after: cursor, limit: 500)
                if page.isEmpty { break }
                for m in page { try outbox.remove(seq: m.seq) }
                removed += page.count
                cursor = page.last?.seq
            }
            try outbox.flush()
        }
        #expect(removed == n)
        #expect(outbox.count == 0)
        let durableN = 2_000
        let durableTime = try clock.measure {
            for _ in 0..<durableN { try outbox.append(topic: topic, qos: 1, retain: false, priority: .event) { payload($0) } }
        }
        func rate(_ count: Int, _ d: Duration) -> Int { Int(Double(count) / (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)) }
        print("outbox throughput: \(n) buffered appends in \(appendTime) (\(rate(n, appendTime))/s), \(n) peek+removes in \(removeTime) (\(rate(n, removeTime))/s), \(durableN) durable appends one at a time in \(durableTime) (\(rate(durableN, durableTime))/s)")
    }
}

/// A tmpfs of a few hundred KiB mounted in a scratch folder (needs root), with a filler file
/// that takes all free space.
final class TinyFileSystem {
    static var permitted: Bool { getuid() == 0 && which("mount") != nil && which("umount") != nil }

    let dir: ScratchDir
    let path: String
    private var mounted = false

    init?(sizeKiB: Int) {
        dir = ScratchDir("tinyfs")
        path = dir.file("mnt")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard let mount = which("mount"),
              let result = try? runCommand(mount, ["-t", "tmpfs", "-o", "size=\(sizeKiB)k", "edge-test-tmpfs", path], timeout: .seconds(10)),
              result.status == 0
        else { return nil }
        mounted = true
    }

    /// Writes a filler file until the file system is full.
    func fill() {
        let fd = open(path + "/filler", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        let block = [UInt8](repeating: 0xAA, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
    }

    func freeFiller() { unlink(path + "/filler") }

    func unmount() {
        guard mounted, let umount = which("umount") else { return }
        _ = try? runCommand(umount, ["-l", path], timeout: .seconds(10))
        mounted = false
    }

    deinit { unmount() }
}
