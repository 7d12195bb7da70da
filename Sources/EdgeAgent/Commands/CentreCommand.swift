import EdgeRuntime
public import FoundationEssentials

/// A command from the centre whose signature has been verified (CONTRACT.md 1, Commands).
///
/// The wire form is the JSON object `{"id","gw","target","action","args":{...},"issued","expires"}`
/// (times RFC 3339); `keyID` is the envelope's `kid` that signed it. A value produced by
/// `CommandVerifier` is addressed to this gateway and within its validity window at `now`;
/// replay, target, action and arguments are checked by the caller (`ReplayStore`, `CommandAction.parse`).
public struct CentreCommand: Sendable, Equatable {
    public var id: String
    public var gateway: String
    public var target: String
    public var action: String
    public var args: [String: ControlValue]
    public var issued: Date
    public var expires: Date
    public var keyID: String

    public init(id: String, gateway: String, target: String, action: String, args: [String: ControlValue] = [:], issued: Date, expires: Date, keyID: String) {
        self.id = id
        self.gateway = gateway
        self.target = target
        self.action = action
        self.args = args
        self.issued = issued
        self.expires = expires
        self.keyID = keyID
    }

    /// The command bytes as the centre signs them (compact JSON, sorted keys, RFC 3339 with milliseconds).
    public func jsonBytes() -> [UInt8] {
        let wire = WireCommand(
            id: id, gw: gateway, target: target, action: action, args: args,
            issued: RFC3339.format(issued), expires: RFC3339.format(expires))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings and ControlValues cannot fail.
        return (try? [UInt8](encoder.encode(wire))) ?? []
    }
}

/// The JSON shape of the command bytes.
struct WireCommand: Codable {
    var id: String
    var gw: String
    var target: String
    var action: String
    var args: [String: ControlValue]?
    var issued: String
    var expires: String
}

/// The JSON shape of the signed envelope published on `ROOT/cmd`.
struct WireEnvelope: Codable {
    var kid: String
    var cmd: String
    var sig: String
}

/// Verifies signed centre commands against the configured centre keys.
///
/// Checks, in this order, stopping at the first failure: envelope JSON and base64
/// (`malformed`); key id known and Ed25519 signature valid over the exact command bytes
/// (`bad_signature`); command JSON shape (`malformed`); `gw` is this gateway
/// (`wrong_gateway`); not expired at `now` (`expired`); not issued after `now + maxSkew`
/// (`expired`, "issued in the future"); lifetime `expires - issued` at most `maxLifetime`
/// (`malformed`: a command valid for longer is a standing order the centre never meant to
/// sign). Replay, target, action and arguments are left to the caller.
public struct CommandVerifier: Sendable {
    /// Envelopes larger than this are refused as malformed before parsing.
    public static let maxEnvelopeBytes = 65_536

    public let gatewayID: String
    public let maxSkew: Duration
    /// The longest lifetime (`expires - issued`) accepted; default 1 h.
    public let maxLifetime: Duration
    /// Key id -> the checked key, or why the configured bytes are not one.
    private let centreKeys: [String: Result<Ed25519.PublicKey, Ed25519.Failure>]

    /// - Parameter centreKeys: key id -> raw 32-byte Ed25519 public key. A key that is not one
    ///   (wrong length, not a curve point) never verifies anything: its commands get
    ///   `bad_signature` with the key's fault in the message.
    public init(gatewayID: String, centreKeys: [String: [UInt8]], maxSkew: Duration = .seconds(30), maxLifetime: Duration = .seconds(3600)) {
        self.gatewayID = gatewayID
        self.centreKeys = centreKeys.mapValues { raw in Result { () throws(Ed25519.Failure) in try Ed25519.PublicKey(raw) } }
        self.maxSkew = maxSkew
        self.maxLifetime = maxLifetime
    }

    public func verify(envelope: [UInt8], now: Date) -> Result<CentreCommand, CommandError> {
        guard envelope.count <= Self.maxEnvelopeBytes else {
            return .failure(CommandError(code: .malformed, message: "envelope is \(envelope.count) bytes, more than \(Self.maxEnvelopeBytes)"))
        }
        let wire: WireEnvelope
        do {
            wire = try JSONDecoder().decode(WireEnvelope.self, from: Data(envelope))
        } catch {
            return .failure(CommandError(code: .malformed, message: "envelope is not a JSON object with string fields kid, cmd, sig: \(Self.describe(error))"))
        }
        guard let commandData = Data(base64Encoded: wire.cmd), !commandData.isEmpty else {
            return .failure(CommandError(code: .malformed, message: "envelope field cmd is not valid base64"))
        }
        guard let signature = Data(base64Encoded: wire.sig) else {
            return .failure(CommandError(code: .malformed, message: "envelope field sig is not valid base64"))
        }
        let unverifiedID = Self.peekID(commandData)
        guard let configuredKey = centreKeys[wire.kid] else {
            return .failure(CommandError(code: .badSignature, message: "unknown key id '\(Self.printable(wire.kid))'", id: unverifiedID))
        }
        do {
            try configuredKey.get().verify([UInt8](signature), for: [UInt8](commandData))
        } catch {
            let reason = error.message == "signature does not verify" ? "" : ": \(error.message)"
            return .failure(CommandError(code: .badSignature, message: "signature does not verify with key '\(wire.kid)'\(reason)", id: unverifiedID))
        }

        let command: WireCommand
        do {
            command = try JSONDecoder().decode(WireCommand.self, from: commandData)
        } catch {
            return .failure(CommandError(code: .malformed, message: "command is not valid: \(Self.describe(error))", id: unverifiedID))
        }
        guard !command.id.isEmpty, command.id.count <= 128, !command.id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return .failure(CommandError(code: .malformed, message: "command id must be 1-128 printable characters"))
        }
        guard let issued = RFC3339.parse(command.issued) else {
            return .failure(CommandError(code: .malformed, message: "issued '\(Self.printable(command.issued))' is not an RFC 3339 time", id: command.id))
        }
        guard let expires = RFC3339.parse(command.expires) else {
            return .failure(CommandError(code: .malformed, message: "expires '\(Self.printable(command.expires))' is not an RFC 3339 time", id: command.id))
        }
        guard command.gw == gatewayID else {
            return .failure(CommandError(code: .wrongGateway, message: "command is for gateway '\(Self.printable(command.gw))', this is '\(gatewayID)'", id: command.id))
        }
        guard expires > now else {
            return .failure(CommandError(code: .expired, message: "command expired at \(RFC3339.format(expires)) (now \(RFC3339.format(now)))", id: command.id))
        }
        let lifetime = Double(maxLifetime.components.seconds) + Double(maxLifetime.components.attoseconds) / 1e18
        guard expires.timeIntervalSince(issued) <= lifetime else {
            return .failure(CommandError(
                code: .malformed,
                message: "command lifetime \(RFC3339.format(issued)) to \(RFC3339.format(expires)) is longer than the maximum \(maxLifetime)",
                id: command.id))
        }
        let skew = Double(maxSkew.components.seconds) + Double(maxSkew.components.attoseconds) / 1e18
        guard issued <= now.addingTimeInterval(skew) else {
            return .failure(CommandError(
                code: .expired,
                message: "command issued in the future at \(RFC3339.format(issued)) (now \(RFC3339.format(now)), allowed skew \(maxSkew))",
                id: command.id))
        }
        return .success(CentreCommand(
            id: command.id, gateway: command.gw, target: command.target, action: command.action,
            args: command.args ?? [:], issued: issued, expires: expires, keyID: wire.kid))
    }

    /// The `id` of unverified command bytes, for correlating the reply only.
    private static func peekID(_ data: Data) -> String? {
        struct IDOnly: Decodable { var id: String }
        guard let id = try? JSONDecoder().decode(IDOnly.self, from: data).id, id.count <= 128 else { return nil }
        return printable(id)
    }

    /// Text from the wire, shortened and without control characters, for messages.
    static func printable(_ s: String) -> String {
        let cleaned = String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.properties.generalCategory != .control }))
        return cleaned.count > 64 ? String(cleaned.prefix(64)) + "..." : cleaned
    }

    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: return "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let ctx)?, .valueNotFound(_, let ctx)?:
            let path = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            return "field '\(path)' has the wrong type"
        case .dataCorrupted?: return "not valid JSON"
        default: return "\(error)"
        }
    }
}

/// Makes Ed25519 keys and signed command envelopes (`edgectl keygen` / `edgectl sign`, tests).
public enum CommandSigner {
    /// A signing failure: the private key is not a raw 32-byte Ed25519 key.
    public struct SigningError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// A fresh key pair, each raw 32 bytes (the public key goes into `uplink.centre_keys`, base64).
    public static func generateKey() -> (privateKey: [UInt8], publicKey: [UInt8]) {
        let key = Ed25519.PrivateKey()
        return (key.bytes, key.publicKey.bytes)
    }

    /// The raw public key of a raw private key.
    public static func publicKey(of privateKey: [UInt8]) throws(SigningError) -> [UInt8] {
        try signingKey(privateKey).publicKey.bytes
    }

    /// Signs `command` (its `jsonBytes()`) with `privateKey` under `command.keyID`; returns the envelope JSON.
    public static func sign(command: CentreCommand, privateKey: [UInt8]) throws(SigningError) -> [UInt8] {
        try sign(commandBytes: command.jsonBytes(), keyID: command.keyID, privateKey: privateKey)
    }

    /// Signs the exact `commandBytes`; returns the envelope `{"cmd","kid","sig"}` as JSON bytes.
    public static func sign(commandBytes: [UInt8], keyID: String, privateKey: [UInt8]) throws(SigningError) -> [UInt8] {
        let key = try signingKey(privateKey)
        let signature: [UInt8]
        do {
            signature = try key.signature(for: commandBytes)
        } catch {
            throw SigningError(message: "signing failed: \(error)")
        }
        let envelope = WireEnvelope(kid: keyID, cmd: Data(commandBytes).base64EncodedString(), sig: Data(signature).base64EncodedString())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? [UInt8](encoder.encode(envelope))) ?? []
    }

    private static func signingKey(_ raw: [UInt8]) throws(SigningError) -> Ed25519.PrivateKey {
        guard raw.count == Ed25519.privateKeyBytes else {
            throw SigningError(message: "private key must be 32 raw bytes (Ed25519), got \(raw.count)")
        }
        do {
            return try Ed25519.PrivateKey(raw)
        } catch {
            throw SigningError(message: "private key refused: \(error)")
        }
    }
}
