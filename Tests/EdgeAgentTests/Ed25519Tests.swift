import Foundation
import Testing
import TestSupport
@testable import EdgeAgent

/// Ed25519 over libcrypto (Sources/EdgeAgent/Commands/Ed25519.swift): RFC 8032's test vectors,
/// malformed keys and signatures, and cross-checks with Python's `cryptography` both ways.
@Suite struct Ed25519Tests {
    /// RFC 8032 section 7.1: secret key, public key, message, signature (hex).
    struct Vector: Sendable, CustomStringConvertible {
        let name: String, secret: String, publicKey: String, message: String, signature: String
        var description: String { name }
    }

    static let rfc8032: [Vector] = [
        Vector(name: "TEST 1",
               secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
               publicKey: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
               message: "",
               signature: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        Vector(name: "TEST 2",
               secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
               publicKey: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
               message: "72",
               signature: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        Vector(name: "TEST 3",
               secret: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
               publicKey: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
               message: "af82",
               signature: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
        Vector(name: "TEST 1024",
               secret: "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
               publicKey: "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
               message: """
               08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1\
               e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d\
               658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a\
               7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e\
               06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10\
               3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1\
               85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d\
               502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270\
               88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b\
               eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba\
               b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b\
               e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7\
               51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d\
               cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df\
               f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7\
               984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4\
               88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09\
               43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f\
               b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161\
               0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d\
               b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca\
               c60c905c15fc910840b94c00a0b9d0
               """,
               signature: "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"),
        Vector(name: "TEST SHA(abc)",
               secret: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
               publicKey: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
               message: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
               signature: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"),
    ]

    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        precondition(digits.count % 2 == 0, "odd hex length")
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(decoding: digits[$0..<$0 + 2], as: UTF8.self), radix: 16)! }
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// SplitMix64: the same "random" bytes on every run.
    struct SeededBytes: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// The message of the `Ed25519.Failure` that `body` throws, nil if it returns.
    static func failure(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as Ed25519.Failure {
            return error.message
        } catch {
            return "not an Ed25519.Failure: \(error)"
        }
    }

    @Test(arguments: rfc8032)
    func rfc8032VectorSignsAndVerifies(_ v: Vector) throws {
        let message = Self.bytes(v.message)
        let key = try Ed25519.PrivateKey(Self.bytes(v.secret))
        #expect(Self.hex(key.publicKey.bytes) == v.publicKey)
        #expect(Self.hex(try key.signature(for: message)) == v.signature)

        let publicKey = try Ed25519.PublicKey(Self.bytes(v.publicKey))
        let signature = Self.bytes(v.signature)
        try publicKey.verify(signature, for: message)
        #expect(try CommandSigner.publicKey(of: Self.bytes(v.secret)) == Self.bytes(v.publicKey))

        // One bit off anywhere in the signature or the message, or another message: refused.
        for bit in [0, 7, 255, 256, 511] {
            var bad = signature
            bad[bit / 8] ^= UInt8(1) << (bit % 8)
            #expect(!publicKey.isValidSignature(bad, for: message), "bit \(bit) of the signature flipped")
        }
        if !message.isEmpty {
            var bad = message
            bad[bad.count / 2] ^= 0x01
            #expect(Self.failure { try publicKey.verify(signature, for: bad) } == "signature does not verify")
        }
        #expect(!publicKey.isValidSignature(signature, for: message + [0]))
        // Another vector's key does not verify this signature.
        let other = try Ed25519.PublicKey(Self.bytes(Self.rfc8032.first { $0.name != v.name }!.publicKey))
        #expect(!other.isValidSignature(signature, for: message))
    }

    @Test func malformedPublicKeysAreRefusedWithTheirFault() {
        for length in [0, 1, 31, 33, 64] {
            #expect(Self.failure { _ = try Ed25519.PublicKey([UInt8](repeating: 9, count: length)) }
                == "public key is \(length) bytes; an Ed25519 public key is 32")
        }
        // y = p = 2^255 - 19 (and p + 1, and 2^255 - 1): not canonical.
        for low: UInt8 in [0xed, 0xee, 0xff] {
            let encoded = [low] + [UInt8](repeating: 0xff, count: 30) + [0x7f]
            #expect(Self.failure { _ = try Ed25519.PublicKey(encoded) } == "public key is not canonical (its y is not below 2^255 - 19)")
        }
        // y = 1 with the sign bit set: x = 0 cannot be negative.
        #expect(Self.failure { _ = try Ed25519.PublicKey([1] + [UInt8](repeating: 0, count: 30) + [0x80]) }
            == "public key is not canonical (x = 0 with its sign bit set)")
        // y = 2, 7, 8: no x on the curve.
        for y: UInt8 in [2, 7, 8] {
            #expect(Self.failure { _ = try Ed25519.PublicKey([y] + [UInt8](repeating: 0, count: 31)) } == "public key is not a point of the Ed25519 curve")
        }
        // y = 0, 1 (the neutral point), 3 and p - 1: points.
        for encoded in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31), [3] + [UInt8](repeating: 0, count: 31),
                        [0xec] + [UInt8](repeating: 0xff, count: 30) + [0x7f]] {
            #expect(Self.failure { _ = try Ed25519.PublicKey(encoded) } == nil, "\(Self.hex(encoded))")
        }
    }

    @Test func malformedSignaturesAreRefusedWithTheirFault() throws {
        let v = Self.rfc8032[1]
        let key = try Ed25519.PublicKey(Self.bytes(v.publicKey))
        let message = Self.bytes(v.message)
        let signature = Self.bytes(v.signature)
        for length in [0, 1, 32, 63, 65, 128] {
            let cut = Array((signature + signature).prefix(length))
            #expect(Self.failure { try key.verify(cut, for: message) } == "signature is \(length) bytes; an Ed25519 signature is 64")
        }
        // S + L: the same S modulo L, so it verifies in a lenient implementation; RFC 8032 refuses it.
        let order = Self.bytes("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
        var sPlusL = Array(signature[32...])
        var carry = 0
        for i in 0..<32 {
            let sum = Int(sPlusL[i]) + Int(order[i]) + carry
            sPlusL[i] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        #expect(carry == 0)
        let nonCanonical = Array(signature[..<32]) + sPlusL
        let expected = "signature is not canonical (its S is not below the group order L)"
        #expect(Self.failure { try key.verify(nonCanonical, for: message) } == expected)
        #expect(Self.failure { try key.verify(Array(signature[..<32]) + order, for: message) } == expected)
        #expect(Self.failure { try key.verify([UInt8](repeating: 0xff, count: 64), for: message) } == expected)
        // L - 1 is canonical (then simply wrong).
        var orderMinusOne = order
        orderMinusOne[0] -= 1
        #expect(Self.failure { try key.verify(Array(signature[..<32]) + orderMinusOne, for: message) } == "signature does not verify")
    }

    @Test func malformedPrivateKeysAreRefused() {
        for length in [0, 16, 31, 33, 64] {
            #expect(Self.failure { _ = try Ed25519.PrivateKey([UInt8](repeating: 1, count: length)) }
                == "private key is \(length) bytes; an Ed25519 private key is 32")
            #expect(throws: CommandSigner.SigningError(message: "private key must be 32 raw bytes (Ed25519), got \(length)")) {
                _ = try CommandSigner.publicKey(of: [UInt8](repeating: 1, count: length))
            }
        }
    }

    /// Garbage keys and signatures of every length up to 70: refused or not, never a crash.
    @Test func randomGarbageIsRefusedWithoutCrashing() throws {
        var generator = SeededBytes(state: 8032)
        let key = try Ed25519.PublicKey(Self.bytes(Self.rfc8032[0].publicKey))
        var points = 0
        for length in 0...70 {
            for _ in 0..<20 {
                let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                #expect(!key.isValidSignature(garbage, for: garbage))
                if let other = try? Ed25519.PublicKey(garbage) {
                    points += 1
                    #expect(!other.isValidSignature(Self.bytes(Self.rfc8032[0].signature), for: []))
                }
            }
        }
        // About half of random 32-byte strings encode a point.
        #expect((2...19).contains(points))
    }

    /// A configured key that is not one: every command under it is refused, with the key's fault.
    @Test func aCentreKeyThatIsNotAPointIsReportedByTheVerifier() throws {
        let (privateKey, _) = CommandSigner.generateKey()
        let verifier = CommandVerifier(gatewayID: "cab-0042", centreKeys: ["bad": [2] + [UInt8](repeating: 0, count: 31), "short": [1, 2, 3]])
        let command = #"{"id":"c-1","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#
        let now = RFC3339.parse("2026-11-23T06:30:00Z")!
        for (kid, fault) in [("bad", "public key is not a point of the Ed25519 curve"), ("short", "public key is 3 bytes; an Ed25519 public key is 32")] {
            let envelope = try CommandSigner.sign(commandBytes: Array(command.utf8), keyID: kid, privateKey: privateKey)
            guard case .failure(let rejection) = verifier.verify(envelope: envelope, now: now) else {
                Issue.record("accepted under key \(kid)")
                continue
            }
            #expect(rejection.code == .badSignature)
            #expect(rejection.message == "signature does not verify with key '\(kid)': \(fault)")
        }
    }

    // MARK: - Python

    /// Runs python3 (from PATH, through env so pyenv shims count) with a script.
    static func python(_ script: String, _ args: [String] = []) throws -> String {
        let r = try runCommand("/usr/bin/env", ["python3", "-c", script] + args, timeout: .seconds(60))
        try #require(r.status != 127, "python3 not found on PATH (scripts/setup.sh installs it)")
        try #require(r.status == 0, "python3 failed (status \(r.status)); it needs `cryptography` (scripts/setup.sh: python3-cryptography):\n\(r.stdout)\(r.stderr)")
        return r.stdout
    }

    /// RFC 8032 5.1.3's decoding in plain Python integers, against our check over libcrypto's
    /// BIGNUM: the same verdict for random strings and the edges.
    @Test func pointCheckAgreesWithRFC8032sDecodingInPython() throws {
        let out = try Self.python("""
        import os
        p = 2**255 - 19
        d = -121665 * pow(121666, p - 2, p) % p
        def decodes(s):
            y = int.from_bytes(s, 'little'); sign = y >> 255; y &= (1 << 255) - 1
            if y >= p: return False
            x2 = (y * y - 1) * pow(d * y * y + 1, p - 2, p) % p
            if x2 == 0: return sign == 0
            x = pow(x2, (p + 3) // 8, p)
            if (x * x - x2) % p != 0: x = x * pow(2, (p - 1) // 4, p) % p
            return (x * x - x2) % p == 0
        edges = [(p - 1).to_bytes(32, 'little'), p.to_bytes(32, 'little'), (p + 5).to_bytes(32, 'little'),
                 ((1 << 255) | 1).to_bytes(32, 'little'), ((1 << 255) | (p - 1)).to_bytes(32, 'little')]
        for s in edges + [bytes([i]) + bytes(31) for i in range(16)] + [os.urandom(32) for _ in range(300)]:
            print(s.hex(), 'point' if decodes(s) else 'none')
        """)
        let lines = out.split(separator: "\n")
        #expect(lines.count == 321)
        var points = 0
        for line in lines {
            let fields = line.split(separator: " ")
            let encoded = Self.bytes(String(fields[0]))
            let ours = Ed25519.pointProblem(encoded) == nil
            #expect(ours == (fields[1] == "point"), "\(fields[0]): python says \(fields[1]), ours \(Ed25519.pointProblem(encoded) ?? "point")")
            points += ours ? 1 : 0
        }
        #expect(points > 100 && points < 220)
    }

    /// A key and signatures made by Python's `cryptography` verify here (also as a signed centre
    /// command through the verifier); tampered ones do not.
    @Test func pythonSignaturesVerifyHere() throws {
        let out = try Self.python("""
        import os, sys, base64
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives import serialization as s
        key = Ed25519PrivateKey.generate()
        print('key', key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw).hex())
        for n in [0, 1, 2, 63, 64, 65, 1000, 4096]:
            m = os.urandom(n)
            print('sig', m.hex() or '-', key.sign(m).hex())
        cmd = sys.argv[1].encode()
        print('cmd', base64.b64encode(key.sign(cmd)).decode())
        """, [#"{"id":"py-1","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#])
        var publicKey: Ed25519.PublicKey?
        var checked = 0
        for line in out.split(separator: "\n") {
            let f = line.split(separator: " ").map(String.init)
            switch f[0] {
            case "key":
                publicKey = try Ed25519.PublicKey(Self.bytes(f[1]))
            case "sig":
                let key = try #require(publicKey)
                let message = f[1] == "-" ? [] : Self.bytes(f[1])
                let signature = Self.bytes(f[2])
                #expect(Self.failure { try key.verify(signature, for: message) } == nil, "python's signature of \(message.count) bytes")
                var tampered = signature
                tampered[10] ^= 0x40
                #expect(!key.isValidSignature(tampered, for: message))
                checked += 1
            case "cmd":
                let key = try #require(publicKey)
                let command = #"{"id":"py-1","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#
                let envelope = #"{"kid":"centre-py","cmd":"\#(Data(command.utf8).base64EncodedString())","sig":"\#(f[1])"}"#
                let verifier = CommandVerifier(gatewayID: "cab-0042", centreKeys: ["centre-py": key.bytes])
                let verified = try verifier.verify(envelope: Array(envelope.utf8), now: RFC3339.parse("2026-11-23T06:30:00Z")!).get()
                #expect(verified.id == "py-1" && verified.keyID == "centre-py")
                checked += 1
            default:
                Issue.record("unexpected line from python: \(line)")
            }
        }
        #expect(checked == 9)
    }

    /// Our keys (as `edgectl keygen` makes them) and signatures verify in Python's `cryptography`,
    /// which also derives the same public key from our private key; tampered ones it refuses.
    @Test func ourSignaturesVerifyInPython() throws {
        let (privateKey, publicKey) = CommandSigner.generateKey()
        let key = try Ed25519.PrivateKey(privateKey)
        var args = [Self.hex(privateKey), Self.hex(publicKey)]
        var generator = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 63, 64, 65, 1000, 4096] {
            let message = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let signature = try key.signature(for: message)
            var tampered = signature
            tampered[40] ^= 0x02
            args += [Self.hex(message).isEmpty ? "-" : Self.hex(message), Self.hex(signature), Self.hex(tampered)]
        }
        let out = try Self.python("""
        import sys
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
        from cryptography.hazmat.primitives import serialization as s
        from cryptography.exceptions import InvalidSignature
        seed, pub = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])
        derived = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        print('public', 'same' if derived == pub else 'differs')
        key = Ed25519PublicKey.from_public_bytes(pub)
        rest = sys.argv[3:]
        for i in range(0, len(rest), 3):
            m = b'' if rest[i] == '-' else bytes.fromhex(rest[i])
            for label, sig in (('good', rest[i + 1]), ('tampered', rest[i + 2])):
                try:
                    key.verify(bytes.fromhex(sig), m); verdict = 'verifies'
                except InvalidSignature:
                    verdict = 'refused'
                print(label, len(m), verdict)
        """, args)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "public same")
        let verdicts = Array(lines.dropFirst())
        #expect(verdicts.count == 16)
        for line in verdicts {
            #expect(line.hasPrefix("good") ? line.hasSuffix(" verifies") : line.hasSuffix(" refused"), "\(line)")
        }
    }
}
