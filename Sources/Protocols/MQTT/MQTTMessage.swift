/// One MQTT application message, as published or as received.
///
/// Invariants (checked when published, not here): `qos` is 0, 1 or 2; `topic` has no
/// wildcards. A received message's `qos` is the QoS it was delivered with.
public struct MQTTMessage: Sendable, Equatable {
    /// The topic name, e.g. `edge/v1/cab-0042/status`.
    public var topic: String
    /// The payload bytes (the contract's payloads are UTF-8 JSON, but any bytes are carried).
    public var payload: [UInt8]
    /// Quality of service: 0 at most once, 1 at least once, 2 exactly once.
    public var qos: Int
    /// Whether the broker keeps the message as the topic's last known value.
    public var retain: Bool

    public init(topic: String, payload: [UInt8], qos: Int = 1, retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
    }

    /// A message whose payload is `text` encoded as UTF-8.
    public init(topic: String, text: String, qos: Int = 1, retain: Bool = false) {
        self.init(topic: topic, payload: Array(text.utf8), qos: qos, retain: retain)
    }

    /// The payload decoded as UTF-8 (invalid sequences replaced).
    public var text: String { String(decoding: payload, as: UTF8.self) }
}
