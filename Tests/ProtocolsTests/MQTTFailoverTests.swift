import Foundation
import Testing
import Protocols
import TestSupport

/// Broker fail-over in the client: a list of URLs, round robin on a failed attempt or a
/// lost link, QoS 1 messages kept across the switch; the list's rules.
@Suite("MQTT broker fail-over")
struct MQTTFailoverTests {
    @Test("a broker list of one scheme is accepted; mixed schemes and a bad jitter are refused")
    func listRules() throws {
        _ = try makeMQTTClient("mqtt://127.0.0.1:1", id: "fo-ok") { $0.fallbackBrokers = ["mqtt://127.0.0.1:2"]; $0.reconnectJitter = 1 }
        #expect(throws: MQTTError.self) { try makeMQTTClient("mqtt://127.0.0.1:1", id: "fo-mixed") { $0.fallbackBrokers = ["mqtts://127.0.0.1:2"] } }
        #expect(throws: MQTTError.self) { try makeMQTTClient("mqtt://127.0.0.1:1", id: "fo-bad") { $0.fallbackBrokers = ["tcp://x"] } }
        #expect(throws: MQTTError.self) { try makeMQTTClient("mqtt://127.0.0.1:1", id: "fo-jitter") { $0.reconnectJitter = 1.5 } }
    }

    @Test("the first broker down: the client connects to the next; that one killed: back to the first, nothing lost")
    func failsOverBothWays() async throws {
        let a = try MosquittoBroker(start: false)
        let b = try MosquittoBroker()
        let client = try makeMQTTClient(a.url, id: "fo-client") {
            $0.fallbackBrokers = [b.url]
            $0.reconnectDelay = .milliseconds(100)
            $0.reconnectMaxDelay = .milliseconds(400)
            $0.reconnectJitter = 1
        }
        let acked = MQTTRecorder<Int32>()
        client.onPublished(acked.append)
        client.start()
        defer { client.stop() }
        #expect(await eventually(.seconds(10)) { client.isConnected })
        #expect(client.currentBroker == b.url)
        // Published while connected to B; B dies; A comes up: everything acknowledged (by B or, resent, by A).
        try a.start()
        for i in 0..<5 { try client.publish(MQTTMessage(topic: "fo/t", text: "\(i)", qos: 1)) }
        b.kill()
        for i in 5..<10 { try client.publish(MQTTMessage(topic: "fo/t", text: "\(i)", qos: 1)) }
        #expect(await eventually(.seconds(15)) { client.isConnected && client.currentBroker == a.url })
        #expect(await eventually(.seconds(10)) { Set(acked.all).count == 10 }, "acknowledged: \(acked.all.count)")
    }
}
