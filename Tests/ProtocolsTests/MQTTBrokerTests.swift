import Foundation
import Testing
import Protocols
import TestSupport

/// The client against a real mosquitto 2.0 broker on a free loopback port.
@Suite("MQTT against a real mosquitto")
struct MQTTBrokerTests {
    @Test("publish/subscribe round trip at QoS 0 and QoS 1, binary and empty payloads")
    func roundTrip() async throws {
        let broker = try MosquittoBroker()
        let inbox = MQTTRecorder<MQTTMessage>()
        let sub = try makeMQTTClient(broker.url, id: "rt-sub")
        sub.onMessage(inbox.append)
        try sub.subscribe("rt/#", qos: 1)
        sub.start()
        defer { sub.stop() }
        let pub = try makeMQTTClient(broker.url, id: "rt-pub")
        pub.start()
        defer { pub.stop() }
        #expect(await eventually { sub.isConnected && pub.isConnected })
        #expect(await awaitSubscribed(inbox: inbox, topic: "rt/probe", prober: pub))

        try pub.publish(MQTTMessage(topic: "rt/q0", text: "zero", qos: 0))
        try pub.publish(MQTTMessage(topic: "rt/q1", text: #"{"seq":1}"#, qos: 1))
        try pub.publish(MQTTMessage(topic: "rt/bin", payload: [0, 255, 10, 0], qos: 1))
        try pub.publish(MQTTMessage(topic: "rt/empty", payload: [], qos: 1))
        #expect(await eventually { ["rt/q0", "rt/q1", "rt/bin", "rt/empty"].allSatisfy { t in inbox.all.contains { $0.topic == t } } })
        let got = Dictionary(inbox.all.filter { $0.topic != "rt/probe" }.map { ($0.topic, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(got["rt/q0"] == MQTTMessage(topic: "rt/q0", text: "zero", qos: 0, retain: false))
        #expect(got["rt/q1"] == MQTTMessage(topic: "rt/q1", text: #"{"seq":1}"#, qos: 1, retain: false))
        #expect(got["rt/bin"]?.payload == [0, 255, 10, 0])
        #expect(got["rt/empty"]?.payload == [])
    }

    @Test("QoS 1 completes on PUBACK: not while the broker is frozen, at once when it resumes")
    func qos1CompletesOnPuback() async throws {
        let broker = try MosquittoBroker()
        let pub = try makeMQTTClient(broker.url, id: "ack-pub") { $0.maxInflight = 4 }
        let completed = MQTTRecorder<Int32>()
        pub.onPublished(completed.append)
        pub.start()
        defer { pub.stop() }
        #expect(await eventually { pub.isConnected })

        let mid = try pub.publish(MQTTMessage(topic: "ack/a", text: "a", qos: 1))
        #expect(await eventually { completed.all.contains(mid) })
        try await pub.publishAndWait(MQTTMessage(topic: "ack/b", text: "b", qos: 1))
        #expect(pub.inflightCount == 0)

        broker.pause()   // SIGSTOP: the TCP link stays up, no PUBACK comes
        let waiting = Task { () -> MQTTError? in
            do throws(MQTTError) { try await pub.publishAndWait(MQTTMessage(topic: "ack/c", text: "c", qos: 1)); return nil } catch { return error }
        }
        #expect(await eventually { pub.inflightCount == 1 })
        // QoS 0 completes when written, broker or not.
        try await pub.publishAndWait(MQTTMessage(topic: "ack/q0", text: "q0", qos: 0))
        // Fill the window: 1 (c) + 3 more; the next synchronous publish is refused.
        var mids: [Int32] = []
        for i in 0..<3 { mids.append(try pub.publish(MQTTMessage(topic: "ack/fill", text: "\(i)", qos: 1))) }
        #expect(pub.inflightCount == 4)
        #expect { try pub.publish(MQTTMessage(topic: "ack/over", text: "x", qos: 1)) } throws: { ($0 as? MQTTError)?.kind == .windowFull }
        try await Task.sleep(for: .milliseconds(300))
        #expect(pub.inflightCount == 4, "nothing may complete without PUBACK")
        #expect(mids.allSatisfy { !completed.all.contains($0) })

        broker.resume()
        #expect(await waiting.value == nil)
        #expect(await eventually { mids.allSatisfy(completed.all.contains) })
        #expect(await eventually { pub.inflightCount == 0 })
    }

    @Test("the will is published when the link dies without DISCONNECT, and not after stop()")
    func will() async throws {
        let broker = try MosquittoBroker()
        let status = "edge/v1/cab-w/status"
        let offline = #"{"state":"offline"}"#
        let inbox = MQTTRecorder<MQTTMessage>()
        let watcher = try makeMQTTClient(broker.url, id: "watcher")
        watcher.onMessage(inbox.append)
        try watcher.subscribe("edge/v1/#", qos: 1)
        watcher.start()
        defer { watcher.stop() }
        #expect(await eventually { watcher.isConnected })
        #expect(await awaitSubscribed(inbox: inbox, topic: "edge/v1/probe", prober: watcher))

        // 1. Link cut under the client (relay killed): the broker publishes the will.
        let relay = try TCPRelay(to: broker.port)
        let gateway = try makeMQTTClient("mqtt://127.0.0.1:\(relay.port)", id: "cab-w") {
            $0.will = MQTTMessage(topic: status, text: offline, qos: 1, retain: true)
        }
        gateway.start()
        defer { gateway.stop() }
        #expect(await eventually { gateway.isConnected })
        try await gateway.publishAndWait(MQTTMessage(topic: status, text: #"{"state":"online"}"#, qos: 1, retain: true))
        #expect(await eventually { inbox.contains(topic: status, text: #"{"state":"online"}"#) })
        #expect(!inbox.contains(topic: status, text: offline))
        relay.kill()
        #expect(await eventually { inbox.contains(topic: status, text: offline) }, "will not delivered; broker log:\n\(broker.log)")
        #expect(await eventually { !gateway.isConnected })

        // 2. stop() sends DISCONNECT: no will.
        let status2 = "edge/v1/cab-s/status"
        let polite = try makeMQTTClient(broker.url, id: "cab-s") {
            $0.will = MQTTMessage(topic: status2, text: offline, qos: 1, retain: false)
        }
        polite.start()
        #expect(await eventually { polite.isConnected })
        polite.stop()
        #expect(!polite.isConnected)
        #expect(await eventually { broker.log.contains("Client cab-s disconnected.") }, "broker log:\n\(broker.log)")
        // Anything the broker published for cab-s's disconnect reached the watcher before this marker.
        try watcher.publish(MQTTMessage(topic: status2, text: "marker", qos: 1))
        #expect(await eventually { inbox.contains(topic: status2, text: "marker") })
        #expect(inbox.texts(topic: status2) == ["marker"])
    }

    @Test("after the broker is killed and restarted the client reconnects; QoS 1 published during the outage arrives exactly once")
    func reconnectAfterBrokerRestart() async throws {
        let broker = try MosquittoBroker()
        let relay = try TCPRelay(to: broker.port)   // lets the test decide when the publisher may come back
        let inbox = MQTTRecorder<MQTTMessage>()
        let sub = try makeMQTTClient(broker.url, id: "rc-sub")
        sub.onMessage(inbox.append)
        try sub.subscribe("rc/#", qos: 1)
        let subLinks = MQTTRecorder<Bool>()
        sub.onConnectionChange(subLinks.append)
        sub.start()
        defer { sub.stop() }
        let pub = try makeMQTTClient("mqtt://127.0.0.1:\(relay.port)", id: "rc-pub") { $0.maxInflight = 20 }
        let pubLinks = MQTTRecorder<Bool>()
        pub.onConnectionChange(pubLinks.append)
        pub.start()
        defer { pub.stop() }
        #expect(await eventually { sub.isConnected && pub.isConnected })
        #expect(await awaitSubscribed(inbox: inbox, topic: "rc/probe", prober: pub))
        try await pub.publishAndWait(MQTTMessage(topic: "rc/before", text: "before", qos: 1))
        #expect(await eventually { inbox.contains(topic: "rc/before", text: "before") })

        broker.kill()
        relay.kill()
        #expect(await eventually { !sub.isConnected && !pub.isConnected })
        var mids: Set<Int32> = []
        for i in 0..<10 {
            mids.insert(try pub.publish(MQTTMessage(topic: "rc/during", text: "during-\(i)", qos: 1)))   // queued, not refused
        }
        #expect(mids.count == 10)
        #expect(pub.inflightCount == 10)

        try broker.restart()
        #expect(await eventually { sub.isConnected })
        #expect(await awaitSubscribed(inbox: inbox, topic: "rc/probe2", prober: sub))   // re-subscribed on reconnect
        try relay.start()
        #expect(await eventually(.seconds(5)) { pub.isConnected })
        #expect(await eventually { inbox.texts(topic: "rc/during").count >= 10 }, "got \(inbox.texts(topic: "rc/during"))")
        #expect(await eventually { pub.inflightCount == 0 })
        // A marker after everything was acknowledged: any duplicate would have come before it.
        try await pub.publishAndWait(MQTTMessage(topic: "rc/end", text: "end", qos: 1))
        #expect(await eventually { inbox.contains(topic: "rc/end", text: "end") })
        #expect(inbox.texts(topic: "rc/during").sorted() == (0..<10).map { "during-\($0)" }.sorted())
        #expect(inbox.texts(topic: "rc/before") == ["before"])
        #expect(pubLinks.all == [true, false, true])
        #expect(subLinks.all == [true, false, true])
    }

    @Test("first connect with the broker down keeps retrying and connects when the broker starts")
    func firstConnectRetried() async throws {
        let broker = try MosquittoBroker(start: false)
        let links = MQTTRecorder<Bool>()
        let client = try makeMQTTClient(broker.url, id: "late") {
            $0.reconnectDelay = .milliseconds(50)
            $0.reconnectMaxDelay = .milliseconds(200)
        }
        client.onConnectionChange(links.append)
        let inbox = MQTTRecorder<MQTTMessage>()
        client.onMessage(inbox.append)
        try client.subscribe("late/#", qos: 1)
        client.start()
        defer { client.stop() }
        #expect(await eventually { client.lastError != nil })
        let error = try #require(client.lastError)
        #expect(error.kind == .io)
        #expect(error.description.contains(broker.url))
        try await Task.sleep(for: .milliseconds(400))   // several failed attempts
        #expect(!client.isConnected)
        #expect(links.all.isEmpty)

        try broker.start()
        #expect(await eventually { client.isConnected })
        #expect(client.lastError == nil)
        #expect(await awaitSubscribed(inbox: inbox, topic: "late/probe", prober: client))
        #expect(links.all == [true])
    }

    @Test("a burst of publishAndWait never exceeds the window and every message arrives once")
    func burstHonoursWindow() async throws {
        let broker = try MosquittoBroker()
        let window = 8, total = 300
        let inbox = MQTTRecorder<MQTTMessage>()
        let sub = try makeMQTTClient(broker.url, id: "burst-sub")
        sub.onMessage(inbox.append)
        try sub.subscribe("burst/#", qos: 1)
        sub.start()
        defer { sub.stop() }
        let pub = try makeMQTTClient(broker.url, id: "burst-pub") { $0.maxInflight = window }
        let samples = MQTTRecorder<Int>()
        pub.onPublished { _ in samples.append(pub.inflightCount) }
        pub.start()
        defer { pub.stop() }
        #expect(await eventually { sub.isConnected && pub.isConnected })
        #expect(await awaitSubscribed(inbox: inbox, topic: "burst/probe", prober: pub))

        let clock = ContinuousClock()
        let started = clock.now
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<total {
                group.addTask {
                    do throws(MQTTError) { try await pub.publishAndWait(MQTTMessage(topic: "burst/m", text: "\(i)", qos: 1)) } catch {
                        Issue.record("publish \(i) failed: \(error)")
                    }
                    samples.append(pub.inflightCount)
                }
            }
        }
        let elapsed = clock.now - started
        #expect(await eventually { inbox.texts(topic: "burst/m").count >= total })
        #expect(Set(inbox.texts(topic: "burst/m")).count == total)
        #expect(samples.all.max() ?? 0 <= window)
        #expect(pub.inflightCount == 0)
        print("MQTT burst: \(total) QoS 1 messages, window \(window): \(elapsed), max in flight seen \(samples.all.max() ?? 0)")
    }
}

/// TLS with the generated test PKI; the broker requires a client certificate.
@Suite("MQTT over TLS")
struct MQTTTLSTests {
    @Test("mutual TLS with the test CA and client certificate connects and carries messages")
    func tlsWorks() async throws {
        let pki = try TestCA()
        let broker = try MosquittoBroker(tls: .init(ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey))
        let client = try makeMQTTClient(try #require(broker.tlsURL), id: "cab-tls") {
            $0.tls = .init(ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey)
        }
        let inbox = MQTTRecorder<MQTTMessage>()
        client.onMessage(inbox.append)
        try client.subscribe("tls/#", qos: 1)
        client.start()
        defer { client.stop() }
        #expect(await eventually { client.isConnected }, "last error: \(String(describing: client.lastError)); broker log:\n\(broker.log)")
        #expect(await awaitSubscribed(inbox: inbox, topic: "tls/probe", prober: client))
        try await client.publishAndWait(MQTTMessage(topic: "tls/x", text: "secret", qos: 1))
        #expect(await eventually { inbox.contains(topic: "tls/x", text: "secret") })
    }

    @Test("a broker certificate from an unrelated CA is refused: never connects, .tls surfaced")
    func wrongCARefused() async throws {
        let pki = try TestCA()
        let broker = try MosquittoBroker(tls: .init(ca: pki.caCert, cert: pki.serverCert, key: pki.serverKey))
        let client = try makeMQTTClient(try #require(broker.tlsURL), id: "cab-wrong-ca") {
            $0.tls = .init(ca: pki.otherCACert, cert: pki.clientCert, key: pki.clientKey)
        }
        let links = MQTTRecorder<Bool>()
        client.onConnectionChange(links.append)
        client.start()
        defer { client.stop() }
        #expect(await eventually { client.lastError != nil })
        try await Task.sleep(for: .milliseconds(500))   // several attempts, all refused
        let error = try #require(client.lastError)
        #expect(error.kind == .tls, "\(error)")
        #expect(error.message.contains("certificate verify failed"), "\(error)")
        #expect(!client.isConnected)
        #expect(links.all.isEmpty)
        #expect(!broker.log.contains("New client connected from 127.0.0.1:"), "\(broker.log)")
    }

    @Test("a broker certificate for another host name is refused even though its CA is trusted")
    func hostnameVerified() async throws {
        let pki = try TestCA()
        let broker = try MosquittoBroker(tls: .init(ca: pki.caCert, cert: pki.wrongHostCert, key: pki.wrongHostKey))
        let client = try makeMQTTClient(try #require(broker.tlsURL), id: "cab-wrong-host") {
            $0.tls = .init(ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey)
        }
        let links = MQTTRecorder<Bool>()
        client.onConnectionChange(links.append)
        client.start()
        defer { client.stop() }
        #expect(await eventually { client.lastError != nil })
        try await Task.sleep(for: .milliseconds(300))
        let error = try #require(client.lastError)
        #expect(error.kind == .tls, "\(error)")
        #expect(!client.isConnected)
        #expect(links.all.isEmpty)
    }

    @Test("TLS files that are not PEM fail the connection as .tls, naming the cause")
    func tlsFilesNotPEM() async throws {
        let dir = ScratchDir("mqtt-junk")
        let junk = dir.write("junk.pem", "not a certificate\n")
        let endpoint = try MQTTScriptedBroker()   // any TCP listener: the TLS setup fails before a byte is read
        let client = try makeMQTTClient("mqtts://127.0.0.1:\(endpoint.port)", id: "cab-junk") {
            $0.tls = .init(ca: junk, cert: junk, key: junk)
        }
        client.start()
        defer { client.stop() }
        #expect(await eventually { client.lastError != nil })
        let error = try #require(client.lastError)
        #expect(error.kind == .tls, "\(error)")
        #expect(!client.isConnected)
    }
}
