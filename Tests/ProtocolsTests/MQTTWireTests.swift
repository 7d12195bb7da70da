import Foundation
import Testing
import Protocols
import TestSupport

/// The client against a scripted fake broker: what actually goes on the wire.
@Suite("MQTT wire behaviour (scripted broker)")
struct MQTTWireTests {
    @Test("CONNECT is MQTT 3.1.1 with client id, keep-alive, clean session and the will")
    func connectPacket() async throws {
        let broker = try MQTTScriptedBroker()
        let client = try makeMQTTClient("mqtt://127.0.0.1:\(broker.port)", id: "cab-0042") {
            $0.keepAlive = .seconds(17)
            $0.will = MQTTMessage(topic: "edge/v1/cab-0042/status", text: #"{"state":"offline"}"#, qos: 1, retain: true)
        }
        client.start()
        defer { client.stop() }
        #expect(await broker.accept())
        let connect = try #require(await broker.read())
        #expect(connect.type == 1)
        let b = connect.body
        #expect(Array(b[0..<6]) == [0, 4] + Array("MQTT".utf8))
        #expect(b[6] == 4)                                  // protocol level 4 = 3.1.1
        let flags = b[7]
        #expect(flags & 0x02 != 0)                          // clean session
        #expect(flags & 0x04 != 0)                          // will flag
        #expect((flags >> 3) & 3 == 1)                      // will QoS 1
        #expect(flags & 0x20 != 0)                          // will retain
        #expect(Int(b[8]) << 8 | Int(b[9]) == 17)           // keep-alive seconds
        let idLength = Int(b[10]) << 8 | Int(b[11])
        #expect(String(decoding: b[12..<(12 + idLength)], as: UTF8.self) == "cab-0042")
    }

    @Test("at most maxInflight QoS 1 PUBLISH packets are unacknowledged on the wire; each PUBACK releases one")
    func inflightWindowOnTheWire() async throws {
        let broker = try MQTTScriptedBroker()
        let window = 5, total = 23
        let client = try makeMQTTClient("mqtt://127.0.0.1:\(broker.port)", id: "window") { $0.maxInflight = window }
        let maxSeen = MQTTRecorder<Int>()
        client.onPublished { _ in maxSeen.append(client.inflightCount) }
        client.start()
        defer { client.stop() }
        #expect(await broker.accept())
        #expect(await broker.read()?.type == 1)
        broker.sendConnack()
        #expect(await eventually { client.isConnected })

        let done = MQTTRecorder<Int>()
        let publishers = Task {
            await withTaskGroup(of: Void.self) { group in
                for i in 0..<total {
                    group.addTask {
                        do {
                            try await client.publishAndWait(MQTTMessage(topic: "w/\(i)", text: "\(i)", qos: 1))
                            done.append(i)
                        } catch {}
                    }
                }
            }
        }
        var received: [MQTTScriptedBroker.Packet] = []
        var rounds = 0
        while received.count < total && rounds < 20 {
            rounds += 1
            // Once the client has handed a full window to libmosquitto, the wire must carry
            // exactly that many PUBLISH packets and then nothing more until a PUBACK.
            let expected = min(window, total - received.count)
            #expect(await eventually { client.inflightCount == expected }, "round \(rounds)")
            let batch = await broker.readAll().filter { $0.type == 3 }
            #expect(batch.count == expected, "round \(rounds): \(batch.count) PUBLISH packets unacknowledged")
            #expect(batch.count <= window)
            received += batch
            for p in batch { broker.sendPuback(try #require(p.publishID)) }
        }
        // Never wait forever on publishers if the broker side failed: stopping fails them.
        if received.count < total { client.stop() }
        await publishers.value
        #expect(received.count == total)
        #expect(Set(received.map { String(decoding: $0.publishPayload, as: UTF8.self) }).count == total)
        #expect(done.count == total)
        #expect(maxSeen.all.allSatisfy { $0 <= window })
        #expect(client.inflightCount == 0)
    }
}
