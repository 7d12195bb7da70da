import Foundation

/// Throw-away PKI for TLS tests, generated with `openssl` (P-256 keys, 2-day validity) in a
/// scratch folder removed with the value: a test CA, a broker certificate for `localhost`
/// and 127.0.0.1 (CN and SAN) signed by it, a client certificate signed by it, a second,
/// unrelated CA that must never be trusted for the broker, and a broker certificate signed
/// by the test CA but for another host name (to prove host names are verified).
public final class TestCA: @unchecked Sendable {
    public struct OpenSSLError: Error, CustomStringConvertible {
        public var command: [String]
        public var output: String
        public var description: String { "openssl \(command.joined(separator: " ")) failed:\n\(output)" }
    }

    public let dir: ScratchDir
    public let caCert: String
    public let caKey: String
    public let serverCert: String
    public let serverKey: String
    public let clientCert: String
    public let clientKey: String
    /// A CA that signed nothing here (wrong trust anchor for the broker).
    public let otherCACert: String
    public let otherCAKey: String
    /// Signed by the test CA for `elsewhere.invalid` only: valid chain, wrong host.
    public let wrongHostCert: String
    public let wrongHostKey: String

    public init() throws {
        guard let openssl = which("openssl") else {
            throw OpenSSLError(command: [], output: "openssl not found on PATH")
        }
        let dir = ScratchDir("test-ca")
        self.dir = dir
        func run(_ args: [String]) throws {
            let r = try runCommand(openssl, args, timeout: .seconds(30))
            guard r.status == 0 else { throw OpenSSLError(command: args, output: r.stdout + r.stderr) }
        }
        func key(_ name: String) throws -> String {
            let path = dir.file(name)
            try run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
            return path
        }
        func selfSignedCA(_ name: String, cn: String) throws -> (cert: String, key: String) {
            let k = try key("\(name).key")
            let c = dir.file("\(name).pem")
            try run(["req", "-x509", "-new", "-key", k, "-out", c, "-days", "2", "-subj", "/CN=\(cn)",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            return (c, k)
        }
        func leaf(_ name: String, cn: String, extensions: String, ca: (cert: String, key: String)) throws -> (cert: String, key: String) {
            let k = try key("\(name).key")
            let csr = dir.file("\(name).csr")
            let c = dir.file("\(name).pem")
            let ext = dir.write("\(name).ext", extensions)
            try run(["req", "-new", "-key", k, "-out", csr, "-subj", "/CN=\(cn)"])
            try run(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
                     "-out", c, "-days", "2", "-sha256", "-extfile", ext])
            return (c, k)
        }
        let ca = try selfSignedCA("ca", cn: "edge-agent test CA")
        caCert = ca.cert
        caKey = ca.key
        let server = try leaf("server", cn: "localhost", extensions: """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature,keyAgreement
            extendedKeyUsage=serverAuth
            subjectAltName=DNS:localhost,IP:127.0.0.1

            """, ca: ca)
        serverCert = server.cert
        serverKey = server.key
        let client = try leaf("client", cn: "cab-test", extensions: """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature,keyAgreement
            extendedKeyUsage=clientAuth

            """, ca: ca)
        clientCert = client.cert
        clientKey = client.key
        let other = try selfSignedCA("other-ca", cn: "unrelated test CA")
        otherCACert = other.cert
        otherCAKey = other.key
        let wrongHost = try leaf("wrong-host", cn: "elsewhere.invalid", extensions: """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature,keyAgreement
            extendedKeyUsage=serverAuth
            subjectAltName=DNS:elsewhere.invalid

            """, ca: ca)
        wrongHostCert = wrongHost.cert
        wrongHostKey = wrongHost.key
    }
}
