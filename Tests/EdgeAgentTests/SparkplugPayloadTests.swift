import Foundation
import Protocols
import Testing
import TestSupport
@testable import EdgeAgent

/// The hand-written Sparkplug B protobuf codec and the edge node's session rules (the
/// wire format against an independent decoder is in SystemTests/SparkplugTests).
struct SparkplugPayloadTests {
    @Test func knownEncodingsAndRoundTrip() throws {
        // Payload{timestamp: 1, seq: 300}: field 1 varint 1, field 3 varint 300 (0xac 0x02).
        #expect(SparkplugPayload(timestamp: 1, seq: 300).encoded() == [0x08, 0x01, 0x18, 0xac, 0x02])
        // Metric{name: "a", datatype: 11, boolean_value: true}.
        #expect(SparkplugPayload.Metric(name: "a", datatype: .boolean, value: .bool(true)).encoded() == [0x0a, 0x01, 0x61, 0x20, 0x0b, 0x70, 0x01])
        let p = SparkplugPayload(timestamp: 1_764_000_000_000, metrics: [
            .init(name: "level", alias: 7, timestamp: 5, datatype: .double, value: .double(42.5), isHistorical: true,
                  properties: [.init(key: "engUnit", type: .string, value: .string("%"))]),
            .init(alias: 8, datatype: .bytes, value: .bytes([0, 1, 255])),
            .init(name: "f", datatype: .float, value: .float(-1.5)),
            .init(name: "n", datatype: .uint64, value: .long(UInt64.max)),
            .init(name: "i", datatype: .int32, value: .int(UInt32(bitPattern: -3))),
            .init(name: "s", datatype: .string, value: .string("é/ü")),
        ], seq: 255)
        #expect(try SparkplugPayload(decoding: p.encoded()) == p)
    }

    @Test func badInputThrowsAndNeverTraps() {
        var rng = SystemRandomNumberGenerator()
        let good = SparkplugPayload(timestamp: 9, metrics: [.init(name: "x", alias: 1, datatype: .string, value: .string("hello"))], seq: 3).encoded()
        for cut in 0..<good.count { _ = try? SparkplugPayload(decoding: Array(good[0..<cut])) }
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? SparkplugPayload(decoding: bytes)
        }
        #expect(throws: SparkplugPayload.DecodeError.self) { try SparkplugPayload(decoding: [0x0a, 0x10, 0x61]) }
    }

    @Test func sessionSeqBdSeqAndCommands() throws {
        let fx = ConfigFixture()
        var config = try fx.load(fx.baseText)
        let state = ScratchDir("sparkplug-state")
        config.gateway.stateDirectory = state.path
        config.uplink.dialect = .sparkplug
        let node = SparkplugEdgeNode(config: config, version: "1.0", root: "edge/v1/cab-0042")
        #expect(node.bdSeq == 0)
        #expect(try String(contentsOfFile: state.file("sparkplug-bdseq"), encoding: .utf8) == "1\n")
        let births = node.births(outboxLastSeq: 0)
        #expect(births.first?.topic == "spBv1.0/edge/NBIRTH/cab-0042")
        #expect(births.count == 1 + config.devices.count)
        let nbirth = try SparkplugPayload(decoding: births[0].payload)
        #expect(nbirth.seq == 0 && births.allSatisfy { $0.qos == 0 && !$0.retain })
        #expect(nbirth.metrics.first { $0.name == "bdSeq" }?.value == .long(0))
        // Data: seq keeps counting and wraps at 255.
        let device = config.devices.keys.sorted()[0]
        var last: UInt64 = 0
        for i in 0..<300 {
            let m = OutboxMessage(seq: UInt64(i + 1), topic: "edge/v1/cab-0042/event/\(device)", payload: Array(#"{"seq":1,"ts":"2026-12-01T10:00:00.000Z","type":"presence","data":{}}"#.utf8),
                                  qos: 1, retain: false, priority: .event, createdAt: Date())
            for wire in node.map(m) { last = try SparkplugPayload(decoding: wire.payload).seq ?? 999 }
        }
        #expect(last == UInt64(births.count - 1 + 300) % 256)
        // The next connection: bdSeq + 1, persisted; the will says so.
        let will = node.linkDown()
        #expect(try SparkplugPayload(decoding: will.payload).metrics.first?.value == .long(1) && will.qos == 1)
        #expect(try String(contentsOfFile: state.file("sparkplug-bdseq"), encoding: .utf8) == "2\n")
        // Commands: the Command bytes metric passes through; any other write is refused.
        let cmd = SparkplugPayload(metrics: [.init(name: "Command", datatype: .bytes, value: .bytes(Array("{}".utf8))), .init(name: "setpoint", datatype: .int32, value: .int(5))])
        let actions = node.handle(MQTTMessage(topic: "spBv1.0/edge/DCMD/cab-0042/\(device)", payload: cmd.encoded()))
        #expect(actions.first == .command(Array("{}".utf8)))
        guard case .refused(let why)? = actions.last else { Issue.record("no refusal: \(actions)"); return }
        #expect(why.contains("setpoint"))
        let rebirth = SparkplugPayload(metrics: [.init(name: "Node Control/Rebirth", datatype: .boolean, value: .bool(true))])
        #expect(node.handle(MQTTMessage(topic: "spBv1.0/edge/NCMD/cab-0042", payload: rebirth.encoded())) == [.rebirth])
        #expect(node.handle(MQTTMessage(topic: "spBv1.0/edge/NCMD/cab-0042", payload: [0xff])) .count == 1)
    }
}
