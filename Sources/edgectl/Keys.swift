import ArgumentParser
import EdgeAgent
import FoundationEssentials

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an Ed25519 key pair for signing centre commands.",
        discussion: "Writes the private key (base64) to FILE with mode 0600 and prints the public key line for uplink.centre_keys.")
    @Option(name: .long, help: "Key id, e.g. centre-2026.") var kid: String = "centre"
    @Option(name: .long, help: "Where to write the private key (base64).") var out: String
    @Flag(name: .long) var json = false

    func run() throws {
        let key = CommandSigner.generateKey()
        let privateB64 = Data(key.privateKey).base64EncodedString()
        let publicB64 = Data(key.publicKey).base64EncodedString()
        guard FileManager.default.createFile(atPath: out, contents: Data((privateB64 + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            StandardStream.error.write("edgectl: cannot write \(out)\n")
            throw ExitCode(1)
        }
        if json {
            printJSON(.object(["kid": .string(kid), "public_key": .string(publicB64), "private_key_file": .string(out)]))
        } else {
            print("private key written to \(out) (keep it at the centre)")
            print("add to the gateway config under uplink.centre_keys:")
            print("  \(kid): \"\(publicB64)\"")
        }
    }
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a signed centre command (for integration tests and the centre's tooling).",
        discussion: "Example: edgectl sign --key centre.key --kid centre-2026 --gw cab-0042 --target bollard-1 --action lower")
    @Option(name: .long, help: "Private key file (base64, from keygen).") var key: String
    @Option(name: .long, help: "Key id configured on the gateway.") var kid: String
    @Option(name: .long, help: "Gateway id.") var gw: String
    @Option(name: .long) var target: String
    @Option(name: .long) var action: String
    @Option(name: .long, help: "Arguments as a JSON object, e.g. '{\"level\":80,\"duration_s\":600}'.") var args: String = "{}"
    @Option(name: .long, help: "Command id (default: random).") var id: String?
    @Option(name: .long, help: "Validity, e.g. 60s, 10m.") var valid: String = "60s"

    func run() throws {
        guard let keyText = try? String(contentsOfFile: key, encoding: .utf8),
              let raw = Data(base64Encoded: String(keyText.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())) else {
            throw ValidationError("cannot read a base64 private key from \(key)")
        }
        guard let validity = parseSeconds(valid), validity > 0 else { throw ValidationError("--valid must be a duration like 60s") }
        guard let argsData = args.data(using: .utf8), let parsed = try? JSONDecoder().decode([String: ControlValue].self, from: argsData) else {
            throw ValidationError("--args must be a JSON object")
        }
        let now = Date()
        let command = CentreCommand(id: id ?? UUID().uuidString.lowercased(), gateway: gw, target: target, action: action, args: parsed,
                                    issued: now, expires: now.addingTimeInterval(validity), keyID: kid)
        do {
            let envelope = try CommandSigner.sign(command: command, privateKey: [UInt8](raw))
            print(String(decoding: envelope, as: UTF8.self))
        } catch {
            StandardStream.error.write("edgectl: \(error)\n")
            throw ExitCode(1)
        }
    }
}
