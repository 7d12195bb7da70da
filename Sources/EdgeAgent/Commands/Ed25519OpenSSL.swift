#if EDGE_OPENSSL_ED25519
import CEd25519
public import Foundation

// The subset of swift-crypto's `Curve25519.Signing` that CentreCommand uses, over OpenSSL's
// libcrypto (Sources/CEd25519), for toolchains that cannot build swift-crypto (Swift < 6.2, e.g.
// Debian 13's swiftlang 6.0.3: its swift-asn1 dependency needs tools 6.1; see Package.swift).
// Same algorithm (Ed25519, RFC 8032), same raw 32-byte keys and 64-byte signatures.

/// Stand-in for swift-crypto's `Curve25519` namespace (Ed25519 only).
public enum Curve25519 {
    public enum Signing {
        public struct KeyError: Error, Sendable {}

        public struct PublicKey: Sendable {
            public let rawRepresentation: Data

            public init<D: ContiguousBytes>(rawRepresentation: D) throws {
                let raw = rawRepresentation.withUnsafeBytes { Data($0) }
                guard raw.count == 32 else { throw KeyError() }
                self.rawRepresentation = raw
            }

            public func isValidSignature<S: DataProtocol, D: DataProtocol>(_ signature: S, for data: D) -> Bool {
                let signature = [UInt8](signature)
                let message = [UInt8](data)
                guard signature.count == 64 else { return false }
                let key = [UInt8](rawRepresentation)
                return edge_ed25519_verify(key, message, message.count, signature) == 0
            }
        }

        public struct PrivateKey: Sendable {
            public let rawRepresentation: Data
            public let publicKey: PublicKey

            public init() {
                var raw = [UInt8](repeating: 0, count: 32)
                precondition(edge_ed25519_generate(&raw) == 0, "OpenSSL RAND_bytes failed")
                // A random 32-byte seed is always a valid Ed25519 private key.
                self = try! PrivateKey(rawRepresentation: raw)
            }

            public init<D: ContiguousBytes>(rawRepresentation: D) throws {
                let raw = rawRepresentation.withUnsafeBytes { [UInt8]($0) }
                guard raw.count == 32 else { throw KeyError() }
                var pub = [UInt8](repeating: 0, count: 32)
                guard edge_ed25519_public_key(raw, &pub) == 0 else { throw KeyError() }
                self.rawRepresentation = Data(raw)
                self.publicKey = try PublicKey(rawRepresentation: pub)
            }

            public func signature<D: DataProtocol>(for data: D) throws -> Data {
                let message = [UInt8](data)
                var signature = [UInt8](repeating: 0, count: 64)
                guard edge_ed25519_sign([UInt8](rawRepresentation), message, message.count, &signature) == 0 else { throw KeyError() }
                return Data(signature)
            }
        }
    }
}
#endif
