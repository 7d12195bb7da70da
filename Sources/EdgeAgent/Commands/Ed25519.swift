import COpenSSL

/// Ed25519 signatures (RFC 8032) through OpenSSL 3's libcrypto: the one wrapper over it (the
/// centre's command signatures, `edgectl keygen` and `edgectl sign`).
///
/// Keys and signatures are raw bytes as on the wire and in the config: a public key is 32 bytes
/// (`uplink.centre_keys`, base64), a private key the RFC's 32-byte seed (`edgectl keygen`'s file,
/// base64), a signature 64 bytes (the envelope's `sig`). Rules, checked here before libcrypto
/// sees anything, so a malformed input is refused with its reason and never reaches C:
/// - a public key is 32 bytes encoding a point of the curve canonically (RFC 8032 5.1.3: y below
///   p = 2^255 - 19, x recoverable, no "negative zero");
/// - a signature is 64 bytes whose S is canonical, 0 <= S < L (RFC 8032 5.1.7; libcrypto checks
///   it too, this names the fault);
/// - a private key is any 32 bytes.
public enum Ed25519 {
    public static let publicKeyBytes = 32
    public static let privateKeyBytes = 32
    public static let signatureBytes = 64

    /// Why a key or signature was refused, or what libcrypto reported.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
        init(_ message: String) { self.message = message }
    }

    /// A checked Ed25519 public key (32 bytes, a curve point's canonical encoding).
    public struct PublicKey: Sendable, Equatable {
        public let bytes: [UInt8]

        public init(_ bytes: [UInt8]) throws(Failure) {
            guard bytes.count == Ed25519.publicKeyBytes else {
                throw Failure("public key is \(bytes.count) bytes; an Ed25519 public key is \(Ed25519.publicKeyBytes)")
            }
            if let problem = Ed25519.pointProblem(bytes) { throw Failure("public key \(problem)") }
            self.bytes = bytes
        }

        /// Returns when `signature` is this key's signature of `message`; throws why not otherwise.
        public func verify(_ signature: [UInt8], for message: [UInt8]) throws(Failure) {
            guard signature.count == Ed25519.signatureBytes else {
                throw Failure("signature is \(signature.count) bytes; an Ed25519 signature is \(Ed25519.signatureBytes)")
            }
            guard Ed25519.isCanonicalScalar(signature[32...]) else {
                throw Failure("signature is not canonical (its S is not below the group order L)")
            }
            guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, bytes, bytes.count) else {
                throw Failure("libcrypto refused the public key: \(Ed25519.openSSLError())")
            }
            defer { EVP_PKEY_free(key) }
            guard let context = EVP_MD_CTX_new() else { throw Failure("libcrypto: out of memory") }
            defer { EVP_MD_CTX_free(context) }
            guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else {
                throw Failure("libcrypto cannot verify Ed25519: \(Ed25519.openSSLError())")
            }
            let verified = Ed25519.withMessage(message) { EVP_DigestVerify(context, signature, signature.count, $0, $1) }
            ERR_clear_error()
            guard verified == 1 else { throw Failure("signature does not verify") }
        }

        /// Whether `signature` is this key's signature of `message` (`verify` without the reason).
        public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
            (try? verify(signature, for: message)) != nil
        }
    }

    /// An Ed25519 private key (the 32-byte seed) and its public key.
    public struct PrivateKey: Sendable {
        public let bytes: [UInt8]
        public let publicKey: PublicKey

        /// A fresh key from libcrypto's random generator (the OS's). Stops the process if that
        /// generator fails: there is no safe key to return.
        public init() {
            var seed = [UInt8](repeating: 0, count: Ed25519.privateKeyBytes)
            precondition(RAND_bytes(&seed, Int32(seed.count)) == 1, "libcrypto's RAND_bytes failed: \(Ed25519.openSSLError())")
            do {
                try self.init(seed)
            } catch {
                preconditionFailure("no public key for a random seed: \(error)")
            }
        }

        public init(_ seed: [UInt8]) throws(Failure) {
            guard seed.count == Ed25519.privateKeyBytes else {
                throw Failure("private key is \(seed.count) bytes; an Ed25519 private key is \(Ed25519.privateKeyBytes)")
            }
            let key = try Ed25519.privateKey(seed)
            defer { EVP_PKEY_free(key) }
            var raw = [UInt8](repeating: 0, count: Ed25519.publicKeyBytes)
            var length = raw.count
            guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1, length == raw.count else {
                throw Failure("libcrypto gave no public key: \(Ed25519.openSSLError())")
            }
            self.bytes = seed
            self.publicKey = try PublicKey(raw)
        }

        /// The 64-byte signature of `message` (deterministic: the same message, the same signature).
        public func signature(for message: [UInt8]) throws(Failure) -> [UInt8] {
            let key = try Ed25519.privateKey(bytes)
            defer { EVP_PKEY_free(key) }
            guard let context = EVP_MD_CTX_new() else { throw Failure("libcrypto: out of memory") }
            defer { EVP_MD_CTX_free(context) }
            guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1 else {
                throw Failure("libcrypto cannot sign with Ed25519: \(Ed25519.openSSLError())")
            }
            var signature = [UInt8](repeating: 0, count: Ed25519.signatureBytes)
            var length = signature.count
            let signed = Ed25519.withMessage(message) { EVP_DigestSign(context, &signature, &length, $0, $1) }
            guard signed == 1, length == Ed25519.signatureBytes else {
                throw Failure("libcrypto failed to sign: \(Ed25519.openSSLError())")
            }
            return signature
        }
    }

    // MARK: - libcrypto

    private static func privateKey(_ seed: [UInt8]) throws(Failure) -> OpaquePointer {
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw Failure("libcrypto refused the private key: \(openSSLError())")
        }
        return key
    }

    /// Calls `body` with a pointer to `message` and its length; never a null pointer (libcrypto's
    /// one-shot EVP_DigestSign/Verify are not promised to take one for an empty message).
    private static func withMessage(_ message: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> Int32) -> Int32 {
        if message.isEmpty {
            var empty: UInt8 = 0
            return body(&empty, 0)
        }
        return message.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
    }

    /// The oldest error on libcrypto's queue for this thread, which is then emptied.
    private static func openSSLError() -> String {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return "no error reported" }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Encodings (RFC 8032)

    /// L = 2^252 + 27742317777372353535851937790883648493, little-endian.
    private static let groupOrder: [UInt8] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ]

    /// Whether the 32 little-endian bytes are below L.
    static func isCanonicalScalar(_ s: ArraySlice<UInt8>) -> Bool {
        for (byte, limit) in zip(s.reversed(), groupOrder.reversed()) where byte != limit {
            return byte < limit
        }
        return false
    }

    /// Why 32 bytes are not the canonical encoding of a curve point (RFC 8032 5.1.3), or nil.
    /// The curve arithmetic runs on libcrypto's BIGNUM (only when a key is made, not per signature).
    static func pointProblem(_ encoded: [UInt8]) -> String? {
        guard encoded.count == publicKeyBytes else { return "is \(encoded.count) bytes, not \(publicKeyBytes)" }
        var y = encoded
        let xIsOdd = y[31] >> 7 == 1
        y[31] &= 0x7f
        // y >= p = 2^255 - 19: 0x7f, then thirty 0xff, then 0xed or more in the lowest byte.
        if y[31] == 0x7f, y[1..<31].allSatisfy({ $0 == 0xff }), y[0] >= 0xed {
            return "is not canonical (its y is not below 2^255 - 19)"
        }
        guard let context = BN_CTX_new() else { return "cannot be checked (libcrypto: out of memory)" }
        defer { BN_CTX_free(context) }
        BN_CTX_start(context)
        defer { BN_CTX_end(context) }
        let numbers = (0..<9).map { _ in BN_CTX_get(context) }
        guard let p = numbers[0], let d = numbers[1], let t = numbers[2], let one = numbers[3], let yy = numbers[4],
              let u = numbers[5], let v = numbers[6], let w = numbers[7], let e = numbers[8]
        else { return "cannot be checked (libcrypto: out of memory)" }
        // p = 2^255 - 19; d = -121665 / 121666 mod p; u = y^2 - 1; v = d y^2 + 1; x^2 = u / v.
        // A point exists iff u / v is a square mod p (Euler: (u/v)^((p-1)/2) is 0 or 1).
        var ok = BN_set_word(p, 1) == 1 && BN_lshift(p, p, 255) == 1 && BN_sub_word(p, 19) == 1
            && BN_set_word(one, 1) == 1
            && BN_set_word(t, 121_666) == 1 && BN_mod_inverse(d, t, p, context) != nil
            && BN_set_word(t, 121_665) == 1 && BN_sub(t, p, t) == 1 && BN_mod_mul(d, d, t, p, context) == 1
            && BN_lebin2bn(y, Int32(y.count), t) != nil && BN_mod_sqr(yy, t, p, context) == 1
            && BN_mod_sub(u, yy, one, p, context) == 1
            && BN_mod_mul(v, d, yy, p, context) == 1 && BN_mod_add(v, v, one, p, context) == 1
        guard ok else { return "cannot be checked (libcrypto: \(openSSLError()))" }
        if BN_is_zero(u) == 1 {
            // x = 0: its sign bit must be clear.
            return xIsOdd ? "is not canonical (x = 0 with its sign bit set)" : nil
        }
        ok = BN_mod_inverse(v, v, p, context) != nil && BN_mod_mul(w, u, v, p, context) == 1
            && BN_copy(e, p) != nil && BN_sub_word(e, 1) == 1 && BN_rshift1(e, e) == 1
            && BN_mod_exp(t, w, e, p, context) == 1
        guard ok else { return "cannot be checked (libcrypto: \(openSSLError()))" }
        return BN_is_one(t) == 1 ? nil : "is not a point of the Ed25519 curve"
    }
}
