import Foundation
import Testing
import TestSupport
@testable import EdgeAgent

@Suite struct AuditLogTests {
    private func object(_ line: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func entriesSurviveARestartInOrder() throws {
        let dir = ScratchDir("audit")
        let path = dir.file("audit.log")
        let t = RFC3339.parse("2026-11-23T06:30:00.123Z")!
        var log = try AuditLog(path: path)
        try log.record(origin: .centre(keyID: "centre-2026"), id: "c-1", target: "bollard-1", action: "emergency_lower", result: .ok, at: t)
        try log.record(origin: .local(uid: 1000), id: nil, target: "lamp-01", action: "set_level",
                       args: ["level": .number(80), "duration_s": .number(600)],
                       result: .error(code: .interlock, message: "vehicle loop \"A\" occupied\n"), at: t)
        log.close()
        #expect(throws: AuditLogError.self) { try log.record(origin: .local(uid: 0), id: nil, target: "x", action: "y", result: .ok) }

        log = try AuditLog(path: path)
        defer { log.close() }
        try log.record(origin: .centre(keyID: "centre-2026"), id: "c-2", target: "gateway", action: "ping", result: .ok, at: t)
        let lines = log.tail(10)
        #expect(lines.count == 3)
        #expect(lines[0] == #"{"ts":"2026-11-23T06:30:00.123Z","origin":"centre:centre-2026","id":"c-1","target":"bollard-1","action":"emergency_lower","args":{},"result":"ok"}"#)
        let second = try object(lines[1])
        #expect(second["origin"] as? String == "local:uid=1000")
        #expect(second["id"] is NSNull)
        #expect(second["result"] as? String == "error")
        let error = try #require(second["error"] as? [String: Any])
        #expect(error["code"] as? String == "interlock")
        #expect(error["message"] as? String == "vehicle loop \"A\" occupied\n")
        let args = try #require(second["args"] as? [String: Any])
        #expect((args["level"] as? NSNumber)?.intValue == 80)
        #expect(try object(lines[2])["id"] as? String == "c-2")
        #expect(log.tail(1) == [lines[2]])
        // One line per entry on disk.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 3)
        #expect(text.hasSuffix("\n"))
    }

    @Test func aLineTornByACrashIsTerminatedAtOpen() throws {
        let dir = ScratchDir("audit")
        let path = dir.write("audit.log", #"{"ts":"2026-11-23T06:30:00.123Z","origin":"centre:k","id":"c-1","target":"t","action":"a","args":{},"result":"ok"}"# + "\n" + #"{"ts":"2026-11-23T06:3"#)
        let log = try AuditLog(path: path)
        defer { log.close() }
        try log.record(origin: .centre(keyID: "k"), id: "c-2", target: "t", action: "a", result: .ok)
        let lines = log.tail(5)
        #expect(lines.count == 3)
        #expect(lines[1] == #"{"ts":"2026-11-23T06:3"#)
        #expect(try object(lines[2])["id"] as? String == "c-2")
    }

    @Test func tailReadsAcrossChunksOfALargeLog() throws {
        let dir = ScratchDir("audit")
        let log = try AuditLog(path: dir.file("audit.log"))
        defer { log.close() }
        let pad = String(repeating: "p", count: 1000)
        for i in 0..<150 {
            try log.record(origin: .local(uid: 1000), id: "c-\(i)", target: pad, action: "ping", result: .ok)
        }
        let last = log.tail(100)
        #expect(last.count == 100)
        #expect(try object(last.first!)["id"] as? String == "c-50")
        #expect(try object(last.last!)["id"] as? String == "c-149")
        #expect(log.tail(1000).count == 150)
    }
}
