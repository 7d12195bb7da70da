// outbox-driver: drives the real Outbox in one small process for the power-cut test
// (Tests/SystemTests/UplinkPowerCutTests.swift). Test-only; not shipped.
//
//   outbox-driver <folder> <run> busy     producers append, a drainer "publishes", until killed
//   outbox-driver <folder> <run> finish   publishes everything left, then exits 0
//
// Lines on stdout (written with write(2), so they are out before the next step):
//   O <lastSeq> <skipped from>-<to> | none     at open
//   A <seq> <payload>                          an append returned: the message is durable
//   P <seq> <payload>                          published to the centre (printed before remove)
//   D                                          finish: the outbox is empty
#if canImport(Glibc)
import Glibc
#endif
import EdgeAgent
import Foundation
import Logging

/// One driver run over one outbox.
struct Driver: Sendable {
    let outbox: Outbox
    let run: String

    static func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
            if n <= 0 { exit(3) }
            off += n
        }
    }

    func payload(_ seq: UInt64, _ tag: String) -> [UInt8] { Array("{\"seq\":\(seq),\"run\":\"\(run)\",\"m\":\"\(tag)\"}".utf8) }

    /// Publishes what is durable, by lane, printing each message before removing it.
    func drainOnce() -> Int {
        var sent = 0
        for lane in OutboxLane.allCases {
            guard let batch = try? outbox.peek(lane: lane, after: nil, limit: 20) else { continue }
            for m in batch {
                Self.say("P \(m.seq) " + String(decoding: m.payload, as: UTF8.self))
                try? outbox.remove(seq: m.seq)
                sent += 1
            }
        }
        return sent
    }

    func finish() -> Never {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if drainOnce() == 0 {
                try? outbox.flush()
                if outbox.count == 0 { break }
            }
        }
        let left = outbox.count
        Self.say(left == 0 ? "D" : "X \(left) left")
        outbox.close()
        exit(left == 0 ? 0 : 1)
    }

    /// A durable producer (all lanes), a buffered telemetry producer, and this thread draining.
    func busy() -> Never {
        let durable = Thread {
            var k = 0
            while true {
                k += 1
                let lane = OutboxLane.allCases[k % 3]
                var body: [UInt8] = []
                guard let seq = try? outbox.append(topic: "t/\(lane)", qos: 1, retain: false, priority: lane == .telemetry ? .telemetry : .event, lane: lane, makePayload: { s in
                    body = payload(s, "a\(k)")
                    return body
                }) else { continue }
                Self.say("A \(seq) " + String(decoding: body, as: UTF8.self))
            }
        }
        durable.start()
        let buffered = Thread {
            var k = 0
            while true {
                k += 1
                _ = try? outbox.appendBuffered(topic: "t/buffered", qos: 1, retain: false, priority: .telemetry) { s in payload(s, "b\(k)") }
                usleep(200)
            }
        }
        buffered.start()
        let stop = Date().addingTimeInterval(30)
        while Date() < stop {
            if drainOnce() == 0 { usleep(1000) }
        }
        exit(0)
    }
}

let args = CommandLine.arguments
// fill: `outbox-driver <folder> <topic> fill <n>` queues n telemetry messages and exits.
if args.count == 5, args[3] == "fill", let n = Int(args[4]) {
    var logger = Logger(label: "outbox-driver")
    logger.logLevel = .critical
    do {
        let box = try Outbox(path: args[1] + "/outbox.db", maxMessages: 10_000_000, maxAge: .zero, logger: logger)
        let body = #","ts":"2026-12-04T10:00:00.000Z","time_quality":"synchronised","values":{"level":30,"power_w":18.2,"status":"ok"}}"#
        for _ in 0..<n {
            try box.appendBuffered(topic: args[2], qos: 1, retain: false, priority: .telemetry) { s in Array("{\"seq\":\(s)\(body)".utf8) }
        }
        try box.flush()
        box.close()
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("fill failed: \(error)\n".utf8))
        exit(1)
    }
}
guard args.count == 4, ["busy", "finish"].contains(args[3]) else {
    FileHandle.standardError.write(Data("usage: outbox-driver <folder> <run> busy|finish\n".utf8))
    exit(2)
}
var logger = Logger(label: "outbox-driver")
logger.logLevel = .critical
let outbox: Outbox
do {
    outbox = try Outbox(path: args[1] + "/outbox.db", maxMessages: 10_000_000, maxAge: .zero, logger: logger, batchWindow: .milliseconds(5), batchLimit: 50)
} catch {
    FileHandle.standardError.write(Data("cannot open the outbox: \(error)\n".utf8))
    exit(1)
}
Driver.say("O \(outbox.lastSeq) " + (outbox.skippedSeqs.map { "\($0.lowerBound)-\($0.upperBound)" } ?? "none"))
let driver = Driver(outbox: outbox, run: args[2])
if args[3] == "finish" { driver.finish() } else { driver.busy() }
