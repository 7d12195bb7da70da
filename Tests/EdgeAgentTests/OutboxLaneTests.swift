import Foundation
import Logging
import Testing
import TestSupport
@testable import EdgeAgent

/// Issue 14: lanes, the byte bound and the seq file's database identity.
@Suite struct OutboxLaneTests {
    let logger = Logger(label: "test.outbox-lanes")

    @Test func eachLaneIsInSeqOrderAndAStatusOvertakesTheBacklog() throws {
        let dir = ScratchDir("outbox-lanes")
        let outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 100_000, maxAge: .zero, logger: logger)
        defer { outbox.close() }
        for i in 0..<300 {
            try outbox.appendBuffered(topic: "tele", qos: 1, retain: false, priority: .telemetry) { Array("t\(i) \($0)".utf8) }
        }
        let event = try outbox.append(topic: "event", qos: 1, retain: false, priority: .event) { Array("e \($0)".utf8) }
        let status = try outbox.append(topic: "status", qos: 1, retain: true, priority: .event, lane: .status) { Array("s \($0)".utf8) }
        #expect(status > event)
        // The drainer's view: highest lane first.
        #expect(try outbox.peek(lane: .status, after: nil, limit: 20).map(\.seq) == [status])
        #expect(try outbox.peek(lane: .event, after: nil, limit: 20).map(\.seq) == [event])
        let tele = try outbox.peek(lane: .telemetry, after: nil, limit: 500)
        #expect(tele.count == 300 && tele.map(\.seq) == tele.map(\.seq).sorted())
        #expect(tele.allSatisfy { $0.lane == .telemetry })
        // The all-lanes view stays in seq order.
        #expect(try outbox.peek(after: nil, limit: 1000).map(\.seq).last == status)
    }

    @Test func theByteBoundDropsTheOldestTelemetryFirst() throws {
        let dir = ScratchDir("outbox-bytes")
        let big = [UInt8](repeating: 0x41, count: 1000)
        let outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 1_000_000, maxAge: .zero, logger: logger, maxBytes: 20_000)
        defer { outbox.close() }
        let events = try (0..<5).map { _ in try outbox.append(topic: "e", qos: 1, retain: false, priority: .event) { _ in big } }
        let tele = try (0..<30).map { _ in try outbox.append(topic: "t", qos: 1, retain: false, priority: .telemetry) { _ in big } }
        #expect(outbox.byteCount <= 20_000, "\(outbox.byteCount) bytes held")
        let held = Set(try outbox.peek(after: nil, limit: 100).map(\.seq))
        #expect(events.allSatisfy(held.contains), "an event was dropped while telemetry was left")
        let keptTele = tele.filter(held.contains)
        #expect(!keptTele.isEmpty && keptTele == Array(tele.suffix(keptTele.count)), "not the oldest telemetry dropped: kept \(keptTele)")
        #expect(outbox.droppedCount.telemetry == tele.count - keptTele.count)
        #expect(outbox.droppedCount.event == 0)
    }

    @Test func aReplacedDatabaseSkipsPastTheReservationAndSaysSo() throws {
        let dir = ScratchDir("outbox-skip")
        var outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 1000, maxAge: .zero, logger: logger)
        for _ in 0..<5 { try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { Array("\($0)".utf8) } }
        #expect(outbox.skippedSeqs == nil)
        outbox.close()
        // Same database: numbering continues, nothing skipped.
        outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 1000, maxAge: .zero, logger: logger)
        #expect(outbox.skippedSeqs == nil)
        #expect(try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { Array("\($0)".utf8) } == 6)
        outbox.close()
        // The database lost: jump past the reservation, and say which seqs were skipped.
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("outbox.db") + suffix) }
        outbox = try Outbox(path: dir.file("outbox.db"), maxMessages: 1000, maxAge: .zero, logger: logger)
        defer { outbox.close() }
        let skipped = try #require(outbox.skippedSeqs)
        #expect(skipped.lowerBound == 1 && skipped.upperBound >= 6)
        #expect(try outbox.append(topic: "t", qos: 1, retain: false, priority: .event) { Array("\($0)".utf8) } == skipped.upperBound + 1)
    }
}
