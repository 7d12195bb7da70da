import Foundation
import Testing
import TestSupport
import EdgeRuntime
@testable import EdgeAgent

/// Shared keys and a fixed "now" for the command tests.
private enum Fixture {
    static let centre = CommandSigner.generateKey()
    static let other = CommandSigner.generateKey()
    static let now = RFC3339.parse("2026-11-23T06:30:00.000Z")!
    static let verifier = CommandVerifier(gatewayID: "cab-0042", centreKeys: ["centre-2026": centre.publicKey])

    static func command(
        id: String = "c-1", gateway: String = "cab-0042", target: String = "lamp-01", action: String = "set_level",
        args: [String: ControlValue] = ["level": .number(80), "duration_s": .number(600)],
        issuedOffset: Double = -5, expiresOffset: Double = 60
    ) -> CentreCommand {
        CentreCommand(
            id: id, gateway: gateway, target: target, action: action, args: args,
            issued: now.addingTimeInterval(issuedOffset), expires: now.addingTimeInterval(expiresOffset), keyID: "centre-2026")
    }

    static func signed(_ command: CentreCommand, key: [UInt8] = centre.privateKey) throws -> [UInt8] {
        try CommandSigner.sign(command: command, privateKey: key)
    }

    static func signed(json: String, kid: String = "centre-2026") throws -> [UInt8] {
        try CommandSigner.sign(commandBytes: Array(json.utf8), keyID: kid, privateKey: centre.privateKey)
    }

    static func envelope(kid: String, cmd: String, sig: String) -> [UInt8] {
        Array("{\"kid\":\"\(kid)\",\"cmd\":\"\(cmd)\",\"sig\":\"\(sig)\"}".utf8)
    }

    static func rejection(_ envelope: [UInt8], now: Date = now) -> CommandError? {
        if case .failure(let r) = verifier.verify(envelope: envelope, now: now) { return r }
        return nil
    }
}

@Suite struct CommandVerifierTests {
    @Test func aValidSignedCommandVerifies() throws {
        let command = Fixture.command()
        let result = Fixture.verifier.verify(envelope: try Fixture.signed(command), now: Fixture.now)
        let verified = try result.get()
        #expect(verified == command)
        #expect(verified.args["level"] == .number(80))
        #expect(verified.keyID == "centre-2026")
    }

    @Test func timesWithAndWithoutMillisecondsAreAccepted() throws {
        let json = #"{"id":"c-2","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00.250Z"}"#
        let verified = try Fixture.verifier.verify(envelope: try Fixture.signed(json: json), now: Fixture.now).get()
        #expect(verified.issued == RFC3339.parse("2026-11-23T06:29:55.000Z"))
        #expect(verified.expires.timeIntervalSince(Fixture.now) == 60.25)
        #expect(verified.args.isEmpty)
    }

    @Test func aSignatureByAnotherKeyIsRefused() throws {
        let r = Fixture.rejection(try Fixture.signed(Fixture.command(id: "c-wrong-key"), key: Fixture.other.privateKey))
        #expect(r?.code == .badSignature)
        #expect(r?.id == "c-wrong-key")
    }

    @Test func tamperedCommandBytesAreRefused() throws {
        let good = Fixture.command(args: ["level": .number(10), "duration_s": .number(600)])
        let envelope = try JSONSerialization.jsonObject(with: Data(try Fixture.signed(good))) as! [String: String]
        var bytes = [UInt8](Data(base64Encoded: envelope["cmd"]!)!)
        let json = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"level\":10", with: "\"level\":100")
        #expect(json != String(decoding: bytes, as: UTF8.self))
        bytes = Array(json.utf8)
        let tampered = Fixture.envelope(kid: "centre-2026", cmd: Data(bytes).base64EncodedString(), sig: envelope["sig"]!)
        #expect(Fixture.rejection(tampered)?.code == .badSignature)
        // A signature of the wrong length, too.
        let short = Fixture.envelope(kid: "centre-2026", cmd: envelope["cmd"]!, sig: Data([1, 2, 3]).base64EncodedString())
        #expect(Fixture.rejection(short)?.code == .badSignature)
    }

    @Test func anUnknownKeyIDIsRefused() throws {
        let json = String(decoding: Fixture.command().jsonBytes(), as: UTF8.self)
        let r = Fixture.rejection(try Fixture.signed(json: json, kid: "centre-1999"))
        #expect(r?.code == .badSignature)
        #expect(r?.message.contains("centre-1999") == true)
    }

    @Test func aCommandForAnotherGatewayIsRefused() throws {
        let r = Fixture.rejection(try Fixture.signed(Fixture.command(gateway: "cab-0001")))
        #expect(r?.code == .wrongGateway)
        #expect(r?.id == "c-1")
    }

    @Test func anExpiredCommandIsRefused() throws {
        let r = Fixture.rejection(try Fixture.signed(Fixture.command(issuedOffset: -120, expiresOffset: -1)))
        #expect(r?.code == .expired)
        // Expiring exactly now is expired.
        #expect(Fixture.rejection(try Fixture.signed(Fixture.command(expiresOffset: 0)))?.code == .expired)
    }

    @Test func aCommandIssuedInTheFutureBeyondTheSkewIsRefused() throws {
        let r = Fixture.rejection(try Fixture.signed(Fixture.command(issuedOffset: 31, expiresOffset: 120)))
        #expect(r?.code == .expired)
        #expect(r?.message.contains("issued in the future") == true)
        // Within the 30 s skew it is fine.
        #expect(Fixture.rejection(try Fixture.signed(Fixture.command(issuedOffset: 29, expiresOffset: 120))) == nil)
    }

    @Test func malformedEnvelopesAreRefused() throws {
        let good = try JSONSerialization.jsonObject(with: Data(try Fixture.signed(Fixture.command()))) as! [String: String]
        let cases: [[UInt8]] = [
            Array("not json".utf8),
            Array("[1,2,3]".utf8),
            Array(#"{"kid":"centre-2026","cmd":"e30="}"#.utf8),  // no sig
            Array(#"{"kid":7,"cmd":"e30=","sig":"AAAA"}"#.utf8),  // kid not a string
            Fixture.envelope(kid: "centre-2026", cmd: "***not base64***", sig: good["sig"]!),
            Fixture.envelope(kid: "centre-2026", cmd: good["cmd"]!, sig: "%%%"),
            Fixture.envelope(kid: "centre-2026", cmd: "", sig: good["sig"]!),
            [UInt8](repeating: 0x20, count: CommandVerifier.maxEnvelopeBytes + 1),
        ]
        for envelope in cases {
            #expect(Fixture.rejection(envelope)?.code == .malformed, "\(String(decoding: envelope.prefix(80), as: UTF8.self))")
        }
    }

    @Test func signedButMalformedCommandsAreRefused() throws {
        let cases = [
            "not json at all",
            #"{"gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#,  // no id
            #"{"id":"c-3","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z"}"#,  // no expires
            #"{"id":"c-3","gw":"cab-0042","target":"gateway","action":"ping","issued":"yesterday","expires":"2026-11-23T06:31:00Z"}"#,
            #"{"id":"c-3","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-13-23T06:31:00Z"}"#,
            #"{"id":"c-3","gw":"cab-0042","target":"gateway","action":"ping","args":[1],"issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#,
            #"{"id":42,"gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#,
            #"{"id":"","gw":"cab-0042","target":"gateway","action":"ping","issued":"2026-11-23T06:29:55Z","expires":"2026-11-23T06:31:00Z"}"#,
        ]
        for json in cases {
            #expect(Fixture.rejection(try Fixture.signed(json: json))?.code == .malformed, "\(json)")
        }
    }

    @Test func checksRunInTheContractOrder() throws {
        // Bad signature wins over every later check (other gateway, expired).
        let r = Fixture.rejection(try Fixture.signed(Fixture.command(gateway: "cab-0001", expiresOffset: -10), key: Fixture.other.privateKey))
        #expect(r?.code == .badSignature)
        // Wrong gateway wins over expired.
        #expect(Fixture.rejection(try Fixture.signed(Fixture.command(gateway: "cab-0001", expiresOffset: -10)))?.code == .wrongGateway)
    }

    @Test func rfc3339RoundTripsAndRejectsNonsense() {
        let t = RFC3339.parse("2026-11-23T06:30:00.123Z")!
        #expect(RFC3339.format(t) == "2026-11-23T06:30:00.123Z")
        #expect(RFC3339.format(t, milliseconds: false) == "2026-11-23T06:30:00Z")
        #expect(RFC3339.parse("2026-11-23T07:30:00.123+01:00") == t)
        #expect(RFC3339.parse("2024-02-29T00:00:00Z") != nil)
        #expect(RFC3339.format(RFC3339.parse("1999-12-31T23:59:59.999Z")!) == "1999-12-31T23:59:59.999Z")
        for bad in ["2025-02-29T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23 06:30", "2026-11-23T06:30:00", "2026-11-23T06:30:00.Z", "2026-11-23T06:30:00Zjunk", ""] {
            #expect(RFC3339.parse(bad) == nil, "\(bad)")
        }
    }
}

@Suite struct CommandActionTests {
    private func check(_ kind: CommandAction.TargetKind?, _ action: String, _ args: [String: ControlValue] = [:], source: CommandAction.Source = .centre) -> String? {
        let c = Fixture.command(target: "x", action: action, args: args)
        guard case .failure(let e) = CommandAction.parse(action: c.action, args: c.args, target: c.target, targetKind: kind, source: source, id: c.id) else { return nil }
        return e.code.rawValue
    }

    @Test func everyContractActionIsAccepted() {
        #expect(check(.lamp, "set_level", ["level": .number(0), "duration_s": .number(1)]) == nil)
        #expect(check(.lightingGroup, "set_level", ["level": .number(100), "duration_s": .number(604_800)]) == nil)
        #expect(check(.lamp, "release") == nil)
        for action in ["raise", "lower", "emergency_lower", "clear_emergency"] { #expect(check(.bollard, action) == nil) }
        #expect(check(.bollard, "hold_down", ["duration_s": .number(3600)]) == nil)
        #expect(check(.approach, "priority_request", ["vehicle": .string("bus-180"), "line": .string("L4"), "eta_s": .number(12)]) == nil)
        #expect(check(.approach, "priority_cancel", ["vehicle": .string("bus-180")]) == nil)
        #expect(check(.gateway, "ping") == nil)
        #expect(check(.gateway, "reload_config") == nil)
        let parsed = CommandAction.parse(Fixture.command(args: ["level": .number(35), "duration_s": .number(90)]), targetKind: .lamp)
        #expect(parsed == .success(.setLevel(level: 35, duration: .seconds(90))))
    }

    @Test func anUnknownTargetIsRefused() {
        guard case .failure(let r) = CommandAction.parse(Fixture.command(target: "lamp-99"), targetKind: nil) else { Issue.record("accepted"); return }
        #expect(r.code == .unknownTarget)
        #expect(r.message.contains("lamp-99"))
        #expect(r.id == "c-1")
    }

    @Test func anActionTheTargetDoesNotHaveIsRefused() {
        #expect(check(.lamp, "raise") == "unknown_action")
        #expect(check(.bollard, "set_level", ["level": .number(50), "duration_s": .number(10)]) == "unknown_action")
        #expect(check(.gateway, "self_destruct") == "unknown_action")
    }

    @Test func argumentsOutOfRangeAreRefused() {
        #expect(check(.lamp, "set_level", ["level": .number(101), "duration_s": .number(60)]) == "out_of_range")
        #expect(check(.lamp, "set_level", ["level": .number(-1), "duration_s": .number(60)]) == "out_of_range")
        #expect(check(.lamp, "set_level", ["level": .number(50.5), "duration_s": .number(60)]) == "out_of_range")
        #expect(check(.lamp, "set_level", ["level": .number(50), "duration_s": .number(0)]) == "out_of_range")
        #expect(check(.lamp, "set_level", ["level": .number(50), "duration_s": .number(604_801)]) == "out_of_range")
        #expect(check(.bollard, "hold_down", ["duration_s": .number(-5)]) == "out_of_range")
        #expect(check(.approach, "priority_request", ["vehicle": .string("b"), "line": .string("L4"), "eta_s": .number(601)]) == "out_of_range")
        #expect(check(.approach, "priority_cancel", ["vehicle": .string(String(repeating: "v", count: 65))]) == "out_of_range")
    }

    @Test func missingMistypedOrExtraArgumentsAreMalformed() {
        #expect(check(.lamp, "set_level", ["duration_s": .number(60)]) == "malformed")
        #expect(check(.lamp, "set_level", ["level": .number(50)]) == "malformed")
        #expect(check(.lamp, "set_level", ["level": .string("50"), "duration_s": .number(60)]) == "malformed")
        #expect(check(.lamp, "set_level", ["level": .number(50), "duration_s": .number(60), "levle": .number(1)]) == "malformed")
        #expect(check(.bollard, "raise", ["force": .bool(true)]) == "malformed")
        #expect(check(.approach, "priority_request", ["vehicle": .string(""), "line": .string("L4"), "eta_s": .number(5)]) == "malformed")
    }
}

/// One command model: the centre's and the control socket's commands parse with one set of
/// rules and limits into one typed action, refused with one set of codes.
@Suite struct OneCommandModelTests {
    private func parse(_ kind: CommandAction.TargetKind?, _ action: String, _ args: [String: ControlValue] = [:],
                       _ source: CommandAction.Source) -> Result<CommandAction, CommandError> {
        CommandAction.parse(action: action, args: args, target: "x", targetKind: kind, source: source)
    }

    /// Every contract action, in range, at the edges and beyond: the centre and the socket agree.
    @Test func theCentreAndTheSocketParseTheContractActionsAlike() {
        let cases: [(CommandAction.TargetKind?, String, [String: ControlValue])] = [
            (.lamp, "set_level", ["level": .number(80), "duration_s": .number(604_800)]),
            (.lamp, "set_level", ["level": .number(80), "duration_s": .number(604_801)]),
            (.lightingGroup, "set_level", ["level": .number(80)]),
            (.bollard, "hold_down", ["duration_s": .number(86_400)]),
            (.bollard, "hold_down", ["duration_s": .number(86_401)]),
            (.bollard, "hold_down", ["duration_s": .number(604_800)]),
            (.approach, "priority_request", ["vehicle": .string("bus-1")]),
            (.approach, "priority_request", ["vehicle": .string("bus-1"), "line": .string("L4"), "eta_s": .number(600)]),
            (.approach, "priority_request", ["vehicle": .string("bus-1"), "eta_s": .number(601)]),
            (.approach, "priority_request", ["vehicle": .string("bus-1"), "line": .string("")]),
            (.approach, "priority_cancel", [:]),
            (.bollard, "raise", [:]), (.bollard, "emergency_lower", [:]), (.lamp, "raise", [:]), (nil, "raise", [:]),
            (.gateway, "ping", [:]), (.gateway, "reload_config", [:]),
        ]
        for (kind, action, args) in cases {
            #expect(parse(kind, action, args, .centre) == parse(kind, action, args, .local), "\(action) \(args)")
        }
    }

    @Test func theLimitsAreTheContractsOnes() {
        #expect(parse(.bollard, "hold_down", ["duration_s": .number(86_400)], .local) == .success(.holdDown(duration: .seconds(86_400))))
        #expect((try? parse(.bollard, "hold_down", ["duration_s": .number(86_401)], .centre).get()) == nil)
        #expect(parse(.bollard, "hold_down", ["duration_s": .number(86_401)], .centre).errorCode == .outOfRange)
        #expect(parse(.lamp, "set_level", ["level": .number(80)], .local).errorCode == .malformed, "duration_s is required from both")
        #expect(parse(.approach, "priority_request", ["vehicle": .string("bus-1")], .centre) == .success(.priorityRequest(vehicle: "bus-1", line: nil, etaSeconds: nil)))
        #expect(parse(.approach, "priority_request", ["vehicle": .string("bus-1"), "line": .string("L4"), "eta_s": .number(12)], .local)
                == .success(.priorityRequest(vehicle: "bus-1", line: "L4", etaSeconds: 12)))
        // The machine holds the same bound as the parser.
        var b = BollardController(name: "b", preWarning: .seconds(3), travelTimeout: .seconds(8), autoRaiseAfter: nil)
        #expect(!b.holdDown(CommandLimits.maxHoldDown + .seconds(1), at: MonotonicInstant(nanoseconds: 0)).isAccepted)
    }

    /// Maintenance, point writes and the test hook are the control socket's, never the centre's.
    @Test func localOnlyActionsAreRefusedFromTheCentre() {
        #expect(parse(.gateway, "maintenance", ["on": .bool(true)], .local) == .success(.maintenance(on: true)))
        #expect(parse(.gateway, "maintenance", ["on": .bool(true)], .centre).errorCode == .unknownAction)
        #expect(parse(.device, "io_write", ["point": .string("request_1"), "value": .number(1)], .local) == .success(.ioWrite(point: "request_1", value: 1)))
        #expect(parse(.bollard, "io_write", ["point": .string("motor_down"), "value": .number(1)], .centre).errorCode == .unknownAction)
        #expect(parse(.approach, "io_write", ["point": .string("request_1"), "value": .number(1)], .local).errorCode == .unknownAction)
        #expect(parse(.gateway, "debug_hang", [:], .centre).errorCode == .unknownAction)
        #expect(parse(.gateway, "debug_hang", [:], .local) == .success(.debugHang(duration: .seconds(30))))
    }

    /// The codes the contract lists are the error enum's wire strings, and the other way round.
    @Test func theErrorCodesAreTheContracts() throws {
        let contract = try String(contentsOfFile: BuildProducts.packageRoot.appendingPathComponent("docs/CONTRACT.md").path, encoding: .utf8)
        func listed(after marker: String) -> Set<String> {
            guard let r = contract.range(of: marker) else { return [] }
            let text = contract[r.upperBound...].prefix { $0 != "." }
            return Set(text.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) })
        }
        let centre = listed(after: "Error codes: ")
        let socket = listed(after: "Control socket error codes")
        #expect(centre.contains("out_of_range") && socket.contains("timeout"))
        #expect(centre.union(socket) == Set(CommandError.Code.allCases.map(\.rawValue)))
    }
}

extension Result where Failure == CommandError {
    var errorCode: CommandError.Code? { if case .failure(let e) = self { return e.code }; return nil }
}

@Suite struct CommandReplayTests {
    @Test func anExecutedCommandIsRefusedAsAReplayAfterARestart() throws {
        let dir = ScratchDir("replay")
        let command = try Fixture.verifier.verify(envelope: try Fixture.signed(Fixture.command(id: "c-77")), now: Fixture.now).get()
        var store = try ReplayStore(path: dir.file("replay.db"), now: { Fixture.now })
        #expect(!store.hasSeen(command.id))
        #expect(try store.recordIfNew(command.id, expires: command.expires))
        #expect(store.hasSeen(command.id))
        #expect(try !store.recordIfNew(command.id, expires: command.expires))
        store.close()
        #expect(store.hasSeen("anything"))  // closed: refuse

        store = try ReplayStore(path: dir.file("replay.db"), now: { Fixture.now })
        defer { store.close() }
        #expect(store.hasSeen("c-77"))
        #expect(!store.hasSeen("c-78"))
        #expect(try !store.recordIfNew("c-77", expires: command.expires))
    }

    /// A spent id is refused for ever, and the refusal says what became of it the first time:
    /// refused (with the code and when), executed, or received with no outcome yet; across a restart.
    @Test func aReplayIsToldWhatBecameOfTheIdTheFirstTime() throws {
        let dir = ScratchDir("replay")
        let clock = OutboxTestClock(Fixture.now)
        var store = try ReplayStore(path: dir.file("replay.db"), now: { clock.now })
        let expires = Fixture.now.addingTimeInterval(600)
        #expect(try store.recordIfNew("c-lock", expires: expires))
        #expect(try store.recordIfNew("c-ping", expires: expires))
        #expect(store.replayMessage(for: "c-lock") == "id c-lock already used (received at 2026-11-23T06:30:00.000Z, no outcome recorded)")
        clock.advance(1.5)
        try store.recordOutcome("c-lock", outcome: "refused: interlock", at: clock.now)
        try store.recordOutcome("c-ping", outcome: "executed", at: clock.now)
        #expect(store.replayMessage(for: "c-lock") == "id c-lock already used (refused: interlock at 2026-11-23T06:30:01.500Z)")
        store.close()
        store = try ReplayStore(path: dir.file("replay.db"), now: { clock.now })
        defer { store.close() }
        #expect(try !store.recordIfNew("c-lock", expires: expires), "the id stays spent")
        #expect(store.replayMessage(for: "c-lock") == "id c-lock already used (refused: interlock at 2026-11-23T06:30:01.500Z)")
        #expect(store.replayMessage(for: "c-ping") == "id c-ping already used (executed at 2026-11-23T06:30:01.500Z)")
        #expect(!store.replayMessage(for: "c-lock").contains("executed"))
    }

    /// A store written before outcomes were kept opens, keeps its ids and says so.
    @Test func aStoreFromBeforeOutcomesOpensAndKeepsItsIDs() throws {
        let dir = ScratchDir("replay")
        let path = dir.file("replay.db")
        let r = try runCommand("/usr/bin/sqlite3", [path, "CREATE TABLE executed(id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID; INSERT INTO executed VALUES('c-old', 99999999999999);"])
        #expect(r.status == 0, "\(r.stderr)")
        let store = try ReplayStore(path: path, now: { Fixture.now })
        defer { store.close() }
        #expect(store.hasSeen("c-old"))
        #expect(store.replayMessage(for: "c-old") == "id c-old already used")
        #expect(try store.recordIfNew("c-new", expires: Fixture.now.addingTimeInterval(60)))
        try store.recordOutcome("c-new", outcome: "executed", at: Fixture.now)
        #expect(store.replayMessage(for: "c-new").hasPrefix("id c-new already used (executed at "))
    }

    @Test func idsArePrunedAfterExpiryPlusSkew() throws {
        let dir = ScratchDir("replay")
        let clock = OutboxTestClock(Fixture.now)
        let store = try ReplayStore(path: dir.file("replay.db"), skew: .seconds(30), now: { clock.now })
        defer { store.close() }
        try store.record("old", expires: Fixture.now.addingTimeInterval(10))
        try store.record("new", expires: Fixture.now.addingTimeInterval(3600))
        clock.advance(39)
        try store.record("x", expires: clock.now.addingTimeInterval(60))
        #expect(store.hasSeen("old"))  // 10 s + 30 s skew not yet over
        clock.advance(2)
        try store.record("y", expires: clock.now.addingTimeInterval(60))
        #expect(!store.hasSeen("old"))
        #expect(store.hasSeen("new"))
        #expect(store.count == 3)
    }

    @Test func aCorruptReplayStoreIsMovedAside() throws {
        let dir = ScratchDir("replay")
        _ = dir.write("replay.db", String(repeating: "garbage ", count: 1000))
        let store = try ReplayStore(path: dir.file("replay.db"))
        defer { store.close() }
        #expect(store.recoveredFromCorruption?.hasPrefix(dir.file("replay.db.corrupt-")) == true)
        #expect(try store.recordIfNew("c-1", expires: Date().addingTimeInterval(60)))
    }
}
