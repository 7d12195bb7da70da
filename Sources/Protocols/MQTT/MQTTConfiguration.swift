import FoundationEssentials

/// How an `MQTTClient` reaches and talks to its broker.
///
/// Invariants, checked by `MQTTClient.init` (which throws `.invalidConfiguration`):
/// `broker` is `mqtt://host[:port]` (default 1883) or `mqtts://host[:port]` (default 8883);
/// `mqtts` requires `tls` and `mqtt` forbids it; TLS files exist and are readable;
/// `clientID` is 1...65535 bytes; `keepAlive` is 0 or 5 s...65535 s; `maxInflight` is
/// 1...65535; `0 < reconnectDelay <= reconnectMaxDelay`.
public struct MQTTConfiguration: Sendable {
    /// Broker address: `mqtt://host:port` or `mqtts://host:port`.
    public var broker: String
    /// The MQTT client id (the gateway id in this project).
    public var clientID: String
    /// Keep-alive interval; the broker drops the link after 1.5x without traffic.
    public var keepAlive: Duration = .seconds(30)
    /// MQTT 3.1.1 clean session flag.
    public var cleanSession: Bool = true
    /// Required for `mqtts`: CA, client certificate and key. The broker's certificate is
    /// always verified against `ca`, including its host name; there is no insecure mode.
    public var tls: TLS?
    /// Published by the broker if the link dies without a DISCONNECT (not after `stop()`).
    public var will: MQTTMessage?
    /// Bounded in-flight window: at most this many QoS 1/2 messages unacknowledged at once.
    public var maxInflight: Int = 20
    /// First reconnect delay; doubles per failed attempt up to `reconnectMaxDelay`.
    public var reconnectDelay: Duration = .milliseconds(500)
    /// Cap of the reconnect delay.
    public var reconnectMaxDelay: Duration = .seconds(30)
    /// More brokers to fail over to, after `broker` (same scheme). On every failed attempt
    /// or lost link the client moves to the next URL, round robin; the backoff delay grows
    /// per full round through the list. Empty: one broker.
    public var fallbackBrokers: [String] = []
    /// Each reconnect wait is shortened by a random fraction of up to `reconnectJitter`
    /// (0...1): 0 waits exactly the backoff delay, 1 anywhere from 0 to it ("full jitter").
    public var reconnectJitter: Double = 0.25

    /// `broker` followed by `fallbackBrokers`.
    public var brokers: [String] { [broker] + fallbackBrokers }

    /// PEM files for mutual TLS. Paths are checked for readability when the client is made.
    public struct TLS: Sendable, Equatable {
        /// CA certificate(s) that must have signed the broker's certificate.
        public var ca: String
        /// This gateway's client certificate.
        public var cert: String
        /// The private key of `cert` (unencrypted PEM).
        public var key: String

        public init(ca: String, cert: String, key: String) {
            self.ca = ca
            self.cert = cert
            self.key = key
        }
    }

    public init(
        broker: String,
        clientID: String,
        keepAlive: Duration = .seconds(30),
        cleanSession: Bool = true,
        tls: TLS? = nil,
        will: MQTTMessage? = nil,
        maxInflight: Int = 20,
        reconnectDelay: Duration = .milliseconds(500),
        reconnectMaxDelay: Duration = .seconds(30)
    ) {
        self.broker = broker
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.cleanSession = cleanSession
        self.tls = tls
        self.will = will
        self.maxInflight = maxInflight
        self.reconnectDelay = reconnectDelay
        self.reconnectMaxDelay = reconnectMaxDelay
    }
}

/// Where to connect, parsed from `MQTTConfiguration.broker`.
struct MQTTEndpoint: Equatable {
    var host: String
    var port: Int
    var usesTLS: Bool

    init(host: String, port: Int, usesTLS: Bool) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
    }

    /// Parses `mqtt://host[:port]` / `mqtts://host[:port]`; IPv6 hosts in brackets.
    init(parsing url: String) throws(MQTTError) {
        func bad(_ why: String) -> MQTTError {
            MQTTError(kind: .invalidConfiguration, message: "broker URL '\(url)': \(why)", broker: url)
        }
        let rest: Substring
        if url.hasPrefix("mqtt://") {
            usesTLS = false
            rest = url.dropFirst("mqtt://".count)
        } else if url.hasPrefix("mqtts://") {
            usesTLS = true
            rest = url.dropFirst("mqtts://".count)
        } else {
            throw bad("scheme must be mqtt:// or mqtts://")
        }
        var authority = rest
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.isEmpty else { throw bad("no host") }
        guard !authority.contains("/"), !authority.contains("@"), !authority.contains("?") else {
            throw bad("only host and port are allowed (no path, user or query)")
        }
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw bad("unclosed '[' in IPv6 host") }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("expected ':port' after ']'") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            portText = authority[authority.index(after: colon)...]
        } else {
            host = String(authority)
        }
        guard !host.isEmpty else { throw bad("no host") }
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else { throw bad("port must be 1...65535") }
            port = value
        } else {
            port = usesTLS ? 8883 : 1883
        }
    }
}

extension MQTTConfiguration {
    /// Checks every invariant stated on the type; returns the parsed endpoints (`brokers`).
    func validatedEndpoints() throws(MQTTError) -> [MQTTEndpoint] {
        let first = try validated()
        var endpoints = [first]
        for url in fallbackBrokers {
            let e = try MQTTEndpoint(parsing: url)
            guard e.usesTLS == first.usesTLS else {
                throw MQTTError(kind: .invalidConfiguration, message: "broker '\(url)': every broker in the list must use the scheme of the first (\(broker))",
                                broker: url, clientID: clientID)
            }
            endpoints.append(e)
        }
        guard (0...1).contains(reconnectJitter) else {
            throw MQTTError(kind: .invalidConfiguration, message: "reconnectJitter must be 0...1 (got \(reconnectJitter))", broker: broker, clientID: clientID)
        }
        return endpoints
    }

    /// Checks every invariant stated on the type; returns the parsed endpoint.
    func validated() throws(MQTTError) -> MQTTEndpoint {
        func bad(_ why: String) -> MQTTError {
            MQTTError(kind: .invalidConfiguration, message: why, broker: broker, clientID: clientID)
        }
        let endpoint = try MQTTEndpoint(parsing: broker)
        if clientID.isEmpty || clientID.utf8.count > 65535 { throw bad("client id must be 1...65535 bytes") }
        if endpoint.usesTLS {
            guard let tls else { throw bad("mqtts:// needs tls (ca, cert, key)") }
            for (name, path) in [("ca", tls.ca), ("cert", tls.cert), ("key", tls.key)] {
                if path.isEmpty { throw bad("tls.\(name) is empty") }
                if !FileManager.default.isReadableFile(atPath: path) {
                    throw bad("tls.\(name) file '\(path)' does not exist or is not readable")
                }
            }
        } else if tls != nil {
            throw bad("tls is set but the broker URL is mqtt:// (use mqtts://)")
        }
        let keepAliveSeconds = keepAlive.components.seconds
        if keepAlive != .zero && (keepAlive < .seconds(5) || keepAlive > .seconds(65535)) {
            throw bad("keepAlive must be 0 or 5s...65535s (got \(keepAliveSeconds)s)")
        }
        if !(1...65535).contains(maxInflight) { throw bad("maxInflight must be 1...65535 (got \(maxInflight))") }
        if reconnectDelay <= .zero { throw bad("reconnectDelay must be positive") }
        if reconnectMaxDelay < reconnectDelay { throw bad("reconnectMaxDelay must be >= reconnectDelay") }
        if let will {
            if !(0...2).contains(will.qos) { throw bad("will QoS must be 0, 1 or 2 (got \(will.qos))") }
            if will.topic.isEmpty || will.topic.contains("+") || will.topic.contains("#") {
                throw bad("will topic '\(will.topic)' must be a topic name without wildcards")
            }
        }
        return endpoint
    }
}
