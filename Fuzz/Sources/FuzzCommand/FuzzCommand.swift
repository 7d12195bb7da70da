// Fuzz target: centre commands (CommandVerifier: envelope JSON, base64, Ed25519 signature,
// command JSON, RFC 3339 times, gateway and validity window) and their arguments
// (CommandAction.parse, for every kind of target).
//
// Input: the first byte picks the mode, the rest is the payload.
//   even: the payload is an envelope, verified as it arrived on ROOT/cmd. The fuzzer does not
//         know the centre key, so only a seed's signature (over that seed's exact bytes) can verify.
//   odd:  the payload is the command bytes; the harness signs them with the centre key
//         (key id by bits 1-2: the centre key, a 31-byte key, an unknown id) and verifies the
//         envelope, which reaches the command JSON, time and argument checks.
//
// Invariants: nothing traps; an accepted command carries a signature that verifies (checked
// here with swift-crypto, not through the verifier) under the configured key named by its
// `kid`, is for this gateway and inside its validity window; its times and bytes round-trip
// (re-signing `jsonBytes()` verifies to the same command); a refusal has a contract code and a
// one-line message of bounded length; CommandAction's typed actions are within the contract's
// ranges (CommandLimits), and its refusals use contract codes.
import Crypto
import EdgeAgent
import Foundation
import FuzzSupport

@_cdecl("FuzzCommand_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.main(argc, argv, seeds: CommandSeeds.all) { data, size in fuzz(data, size) }
}

/// The gateway under test and its clock.
enum Gateway {
    static let id = "cab-0042"
    static let now = Date(timeIntervalSince1970: 1_795_415_400)  // 2026-11-23T06:30:00Z
    static let shortKeyID = "short-key"
    static let verifier = CommandVerifier(gatewayID: id, centreKeys: [
        FuzzFixture.centreKeyID: FuzzFixture.centrePublicKey,
        shortKeyID: Array(FuzzFixture.centrePublicKey.prefix(31)),
    ])
    static let keyIDs = [FuzzFixture.centreKeyID, shortKeyID, "unknown-key", FuzzFixture.centreKeyID]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.withInput(data, size) { bytes in
        guard let mode = bytes.first else { return 0 }
        let payload = Array(bytes.dropFirst())
        let envelope: [UInt8]
        if mode & 1 == 0 {
            envelope = payload
        } else {
            let kid = Gateway.keyIDs[Int(mode >> 1) & 3]
            do {
                envelope = try CommandSigner.sign(commandBytes: payload, keyID: kid, privateKey: FuzzFixture.centrePrivateKey)
            } catch {
                require(false, "signing failed: \(error)")
                return 0
            }
        }
        switch Gateway.verifier.verify(envelope: envelope, now: Gateway.now) {
        case .success(let command):
            FuzzDriver.explain("command accepted: \(command.id) \(command.action) on \(command.target)")
            CommandChecks.accepted(command, envelope: envelope)
        case .failure(let rejection):
            FuzzDriver.explain("command refused: \(rejection)")
            CommandChecks.refused(rejection)
        }
        return 0
    }
}

enum CommandChecks {
    static let verifierCodes: Set<CommandError.Code> = [.badSignature, .wrongGateway, .expired, .malformed]
    static let catalogCodes: Set<CommandError.Code> = [.malformed, .unknownTarget, .unknownAction, .outOfRange]

    static func refused(_ r: CommandError) {
        require(verifierCodes.contains(r.code), "verifier code \(r.code)")
        message(r)
    }

    /// A reply message: one line of bounded length, whatever the wire carried.
    static func message(_ r: CommandError) {
        require(!r.message.isEmpty, "empty message for \(r.code)")
        Check.printable(r.message, "message")
        require(r.message.utf8.count <= 1024, "message of \(r.message.utf8.count) bytes: \(r.message.prefix(200))...")
        if let id = r.id {
            Check.printable(id, "reply id")
            require(id.count <= 128, "reply id of \(id.count) characters")
        }
    }

    static func accepted(_ c: CentreCommand, envelope: [UInt8]) {
        // The signature, checked independently of the verifier.
        guard let object = try? JSONSerialization.jsonObject(with: Data(envelope)) as? [String: Any],
              let kid = object["kid"] as? String, let cmd = object["cmd"] as? String, let sig = object["sig"] as? String,
              let commandBytes = Data(base64Encoded: cmd), let signature = Data(base64Encoded: sig)
        else { return require(false, "accepted an envelope that is not {kid, cmd, sig}") }
        require(kid == c.keyID && kid == FuzzFixture.centreKeyID, "accepted under key id \(kid.debugDescription) (command says \(c.keyID))")
        let key = try? Curve25519.Signing.PublicKey(rawRepresentation: FuzzFixture.centrePublicKey)
        require(key?.isValidSignature(signature, for: commandBytes) == true, "accepted a signature that does not verify")

        require(c.gateway == Gateway.id, "accepted a command for gateway \(c.gateway.debugDescription)")
        require(c.expires > Gateway.now, "accepted a command that expired at \(c.expires)")
        require(c.issued <= Gateway.now.addingTimeInterval(30), "accepted a command issued at \(c.issued)")
        require(!c.id.isEmpty && c.id.count <= 128, "accepted id of \(c.id.count) characters")
        Check.printable(c.id, "accepted id")

        // Times: what we format parses back to the same millisecond.
        for t in [c.issued, c.expires] {
            let text = RFC3339.format(t)
            let back = RFC3339.parse(text)
            require(back.map { milliseconds($0) } == milliseconds(t), "\(t) formats as \(text) which parses as \(String(describing: back))")
        }

        // The command as we would re-sign it verifies to the same command.
        do {
            let again = try CommandSigner.sign(command: c, privateKey: FuzzFixture.centrePrivateKey)
            switch Gateway.verifier.verify(envelope: again, now: Gateway.now) {
            case .success(let d):
                require(d.id == c.id && d.gateway == c.gateway && d.target == c.target && d.action == c.action && d.args == c.args && d.keyID == c.keyID,
                        "re-signed command differs: \(d) vs \(c)")
                require(milliseconds(d.issued) == milliseconds(c.issued) && milliseconds(d.expires) == milliseconds(c.expires), "re-signed times differ")
            case .failure(let r):
                // Formatting drops sub-millisecond fractions: an expiry within 1 ms of now may then be "expired".
                require(r.code == .expired && c.expires.timeIntervalSince(Gateway.now) < 0.001, "re-signed command refused: \(r)")
            }
        } catch {
            require(false, "re-signing failed: \(error)")
        }

        catalog(c)
    }

    static func milliseconds(_ d: Date) -> Int64 { Int64((d.timeIntervalSince1970 * 1000).rounded(.down)) }

    static func catalog(_ c: CentreCommand) {
        let kinds: [CommandAction.TargetKind?] = [nil, .lamp, .lightingGroup, .bollard, .approach, .gateway, .device]
        for kind in kinds {
            let parsed = CommandAction.parse(c, targetKind: kind)
            // The control socket parses with the same rules: the same result for every contract action.
            let local = CommandAction.parse(action: c.action, args: c.args, target: c.target, targetKind: kind, source: .local, id: c.id)
            switch parsed {
            case .failure(let r):
                require(catalogCodes.contains(r.code), "catalog code \(r.code)")
                require(kind != nil || r.code == .unknownTarget, "no target kind but \(r.code)")
                message(r)
                if r.code != .unknownAction { require(local == parsed, "the socket and the centre disagree: \(local) vs \(parsed)") }
            case .success(let action):
                require(kind != nil, "accepted without a target")
                require(local == parsed, "the socket and the centre disagree: \(local) vs \(parsed)")
                switch action {
                case .setLevel(let level, let duration):
                    require(CommandLimits.level.contains(level) && duration > .zero && duration <= CommandLimits.maxOverride, "set_level \(level) for \(duration)")
                    require(kind == .lamp || kind == .lightingGroup, "set_level on \(String(describing: kind))")
                case .holdDown(let duration):
                    require(duration > .zero && duration <= CommandLimits.maxHoldDown && kind == .bollard, "hold_down \(duration)")
                case .priorityRequest(let vehicle, let line, let eta):
                    require(kind == .approach && (eta ?? 0) >= 0 && (eta ?? 0) <= CommandLimits.maxETASeconds, "priority_request eta \(String(describing: eta))")
                    for name in [vehicle] + (line.map { [$0] } ?? []) {
                        require(!name.isEmpty && name.count <= CommandLimits.maxNameLength, "name of \(name.count) characters")
                        Check.printable(name, "vehicle/line")
                    }
                case .priorityCancel(let vehicle):
                    require(kind == .approach && !vehicle.isEmpty && vehicle.count <= CommandLimits.maxNameLength, "priority_cancel \(vehicle.debugDescription)")
                case .raise, .lower, .emergencyLower, .clearEmergency:
                    require(kind == .bollard && c.args.isEmpty, "bollard action with \(c.args.count) args on \(String(describing: kind))")
                case .release:
                    require((kind == .lamp || kind == .lightingGroup) && c.args.isEmpty, "release")
                case .ping, .reloadConfig:
                    require(kind == .gateway && c.args.isEmpty, "gateway action")
                case .ioWrite, .maintenance, .debugHang:
                    require(false, "a control-socket action accepted from the centre: \(action)")
                }
            }
        }
    }
}
