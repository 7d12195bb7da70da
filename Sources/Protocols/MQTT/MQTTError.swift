/// The one error type of the MQTT layer.
///
/// `code` is the libmosquitto `MOSQ_ERR_*` number when the error came from libmosquitto
/// (0 when it did not); for a refused connection it is the CONNACK return code.
/// `broker`, `clientID` and `topic` carry the field context a technician needs.
public struct MQTTError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, by the action it calls for.
    public enum Kind: String, Sendable, Equatable {
        /// The configuration cannot work (URL, missing TLS file, bounds); fix the config.
        case invalidConfiguration
        /// A publish or subscribe argument is invalid (topic, QoS, payload size).
        case invalidArgument
        /// TLS setup or handshake failed (certificate not trusted, hostname mismatch, bad key).
        case tls
        /// No connection to the broker at the moment.
        case notConnected
        /// The broker answered CONNACK with a refusal (`code` is the CONNACK return code).
        case connectionRefused
        /// The peer violated MQTT (malformed packet, unexpected packet).
        case protocolError
        /// Network or system failure (connection refused or lost, DNS, errno).
        case io
        /// The bounded in-flight window is full; publish again after a PUBACK.
        case windowFull
        /// The client was stopped before the operation completed.
        case stopped
        /// The waiting task was cancelled (the message may still be delivered).
        case cancelled
        /// Anything else libmosquitto reported.
        case unknown
    }

    public var kind: Kind
    /// `MOSQ_ERR_*` (or CONNACK code for `.connectionRefused`); 0 when not from libmosquitto.
    public var code: Int32
    /// Human-readable detail, e.g. libmosquitto's text plus the OpenSSL reason.
    public var message: String
    /// The broker URL, when known.
    public var broker: String?
    /// The MQTT client id, when known.
    public var clientID: String?
    /// The topic or topic filter involved, when any.
    public var topic: String?

    public init(kind: Kind, code: Int32 = 0, message: String, broker: String? = nil, clientID: String? = nil, topic: String? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.broker = broker
        self.clientID = clientID
        self.topic = topic
    }

    public var description: String {
        var text = "MQTT \(kind.rawValue)"
        if code != 0 { text += " (code \(code))" }
        text += ": \(message)"
        var context: [String] = []
        if let broker { context.append("broker \(broker)") }
        if let clientID { context.append("client \(clientID)") }
        if let topic { context.append("topic \(topic)") }
        if !context.isEmpty { text += " [\(context.joined(separator: ", "))]" }
        return text
    }
}
