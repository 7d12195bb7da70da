import Foundation
import Testing
@testable import Protocols
import TestSupport

@Suite("MQTT configuration and argument checks (no broker)")
struct MQTTConfigurationTests {
    @Test("broker URLs parse to host, port and TLS; defaults 1883/8883")
    func endpoints() throws {
        #expect(try MQTTEndpoint(parsing: "mqtt://127.0.0.1:1884") == MQTTEndpoint(host: "127.0.0.1", port: 1884, usesTLS: false))
        #expect(try MQTTEndpoint(parsing: "mqtt://broker.example") == MQTTEndpoint(host: "broker.example", port: 1883, usesTLS: false))
        #expect(try MQTTEndpoint(parsing: "mqtts://centre.example/") == MQTTEndpoint(host: "centre.example", port: 8883, usesTLS: true))
        #expect(try MQTTEndpoint(parsing: "mqtts://[::1]:9883") == MQTTEndpoint(host: "::1", port: 9883, usesTLS: true))
        for bad in ["tcp://host:1883", "mqtt://", "mqtt://:1883", "mqtt://host:0", "mqtt://host:70000",
                    "mqtt://host:x", "mqtt://host/path", "mqtt://user@host", "mqtt://[::1", "host:1883"] {
            #expect(throws: MQTTError.self, "\(bad)") { _ = try MQTTEndpoint(parsing: bad) }
        }
    }

    @Test("invalid configurations are refused with the field named")
    func invalidConfigurations() throws {
        func refusal(_ configure: (inout MQTTConfiguration) -> Void) -> MQTTError? {
            var config = MQTTConfiguration(broker: "mqtt://127.0.0.1:1883", clientID: "cab-0042")
            configure(&config)
            do {
                _ = try MQTTClient(configuration: config, logger: mqttTestLogger("config"))
                return nil
            } catch {
                return error
            }
        }
        #expect(refusal { _ in } == nil)
        #expect(refusal { $0.broker = "mqtts://127.0.0.1" }?.message.contains("needs tls") == true)
        #expect(refusal { $0.tls = .init(ca: "/etc/hosts", cert: "/etc/hosts", key: "/etc/hosts") }?.message.contains("mqtts") == true)
        let missing = refusal {
            $0.broker = "mqtts://127.0.0.1"
            $0.tls = .init(ca: "/nonexistent/ca.pem", cert: "/etc/hosts", key: "/etc/hosts")
        }
        #expect(missing?.kind == .invalidConfiguration)
        #expect(missing?.message.contains("tls.ca file '/nonexistent/ca.pem'") == true)
        #expect(refusal { $0.clientID = "" }?.message.contains("client id") == true)
        #expect(refusal { $0.maxInflight = 0 }?.message.contains("maxInflight") == true)
        #expect(refusal { $0.keepAlive = .seconds(3) }?.message.contains("keepAlive") == true)
        #expect(refusal { $0.reconnectDelay = .zero }?.message.contains("reconnectDelay") == true)
        #expect(refusal { $0.reconnectMaxDelay = .milliseconds(100) }?.message.contains("reconnectMaxDelay") == true)
        #expect(refusal { $0.will = MQTTMessage(topic: "edge/+/status", text: "{}") }?.message.contains("will topic") == true)
        let error = try #require(refusal { $0.maxInflight = 0 })
        #expect(error.kind == .invalidConfiguration)
        #expect(error.description.contains("broker mqtt://127.0.0.1:1883"))
        #expect(error.description.contains("client cab-0042"))
    }

    @Test("publish and subscribe arguments are checked")
    func argumentChecks() throws {
        let client = try makeMQTTClient("mqtt://127.0.0.1:1", id: "args")
        for message in [MQTTMessage(topic: "a/+/b", text: "x"), MQTTMessage(topic: "a/#", text: "x"),
                        MQTTMessage(topic: "", text: "x"), MQTTMessage(topic: "a", text: "x", qos: 3)] {
            #expect { try client.publish(message) } throws: { ($0 as? MQTTError)?.kind == .invalidArgument }
        }
        #expect { try client.subscribe("a/#/b", qos: 1) } throws: { ($0 as? MQTTError)?.kind == .invalidArgument }
        #expect { try client.subscribe("a/#", qos: -1) } throws: { ($0 as? MQTTError)?.kind == .invalidArgument }
        try client.subscribe("edge/v1/cab-0042/cmd", qos: 1)
    }

    @Test("before any connection: QoS 1 is queued (mid returned), QoS 0 is refused, the window bounds the queue")
    func publishWhileDisconnected() throws {
        let client = try makeMQTTClient("mqtt://127.0.0.1:1", id: "offline") { $0.maxInflight = 3 }
        #expect { try client.publish(MQTTMessage(topic: "t", text: "q0", qos: 0)) } throws: { ($0 as? MQTTError)?.kind == .notConnected }
        var mids: Set<Int32> = []
        for i in 0..<3 { mids.insert(try client.publish(MQTTMessage(topic: "t", text: "q1-\(i)", qos: 1))) }
        #expect(mids.count == 3)
        #expect(!mids.contains(0))
        #expect(client.inflightCount == 3)
        #expect { try client.publish(MQTTMessage(topic: "t", text: "one too many", qos: 1)) } throws: { ($0 as? MQTTError)?.kind == .windowFull }
        #expect(client.inflightCount == 3)
        client.stop()
        #expect(client.inflightCount == 0)
        #expect { try client.publish(MQTTMessage(topic: "t", text: "late", qos: 1)) } throws: { ($0 as? MQTTError)?.kind == .stopped }
    }

    @Test("stop fails a waiting publishAndWait with .stopped")
    func stopFailsWaiters() async throws {
        let client = try makeMQTTClient("mqtt://127.0.0.1:1", id: "stopper")
        client.start()
        let waiting = Task { () -> MQTTError? in
            do throws(MQTTError) { try await client.publishAndWait(MQTTMessage(topic: "t", text: "never acked", qos: 1)); return nil } catch { return error }
        }
        #expect(await eventually { client.inflightCount == 1 })
        client.stop()
        let error = await waiting.value
        #expect(error?.kind == .stopped)
    }

    @Test("a cancelled publishAndWait returns .cancelled; the message stays tracked until acknowledged")
    func cancelWaiter() async throws {
        let client = try makeMQTTClient("mqtt://127.0.0.1:1", id: "canceller") { $0.maxInflight = 1 }
        let first = Task { () -> MQTTError? in
            do throws(MQTTError) { try await client.publishAndWait(MQTTMessage(topic: "t", text: "1", qos: 1)); return nil } catch { return error }
        }
        #expect(await eventually { client.inflightCount == 1 })
        let second = Task { () -> MQTTError? in   // waits for a window slot
            do throws(MQTTError) { try await client.publishAndWait(MQTTMessage(topic: "t", text: "2", qos: 1)); return nil } catch { return error }
        }
        try await Task.sleep(for: .milliseconds(50))
        second.cancel()
        first.cancel()
        #expect(await second.value?.kind == .cancelled)
        #expect(await first.value?.kind == .cancelled)
        #expect(client.inflightCount == 1)   // message 1 is still with libmosquitto
        client.stop()
    }
}
