import Foundation
import Logging
import Protocols
import TestSupport

/// Thread-safe list of things handlers saw (handlers run on the client's network thread).
final class MQTTRecorder<Element: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Element] = []

    func append(_ item: Element) { lock.withLock { items.append(item) } }
    var all: [Element] { lock.withLock { items } }
    var count: Int { lock.withLock { items.count } }
}

extension MQTTRecorder where Element == MQTTMessage {
    func texts(topic: String) -> [String] { all.filter { $0.topic == topic }.map(\.text) }
    func contains(topic: String, text: String) -> Bool { all.contains { $0.topic == topic && $0.text == text } }
}

/// A logger that drops everything below `.warning` (set MQTT_TEST_LOG=trace to see all).
func mqttTestLogger(_ label: String) -> Logger {
    var logger = Logger(label: "test.mqtt.\(label)")
    let level = ProcessInfo.processInfo.environment["MQTT_TEST_LOG"].flatMap(Logger.Level.init(rawValue:))
    logger.logLevel = level ?? .warning
    return logger
}

/// A client with test-friendly reconnect timing.
func makeMQTTClient(_ broker: String, id: String, _ configure: (inout MQTTConfiguration) -> Void = { _ in }) throws -> MQTTClient {
    var config = MQTTConfiguration(broker: broker, clientID: id)
    config.reconnectDelay = .milliseconds(50)
    config.reconnectMaxDelay = .milliseconds(400)
    configure(&config)
    return try MQTTClient(configuration: config, logger: mqttTestLogger(id))
}

/// Polls `condition` every 10 ms (without blocking a cooperative thread) until it holds or
/// `timeout` passes; returns whether it held.
func eventually(_ timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// Waits until `subscriber` (recording into `inbox`) really receives on `topic`: `prober`
/// publishes a probe there every 50 ms until one arrives. Bridges the gap between CONNACK
/// and the broker processing SUBSCRIBE.
func awaitSubscribed(inbox: MQTTRecorder<MQTTMessage>, topic: String, prober: MQTTClient, timeout: Duration = .seconds(5)) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    let probe = "probe-\(UUID().uuidString.prefix(8))"
    while clock.now < deadline {
        if prober.isConnected { _ = try? prober.publish(MQTTMessage(topic: topic, text: probe, qos: 0)) }
        if await eventually(.milliseconds(50), { inbox.contains(topic: topic, text: probe) }) { return true }
    }
    return false
}
