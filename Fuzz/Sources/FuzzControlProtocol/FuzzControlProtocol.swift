// Fuzz target: the local control socket's protocol, as the server runs it, minus the
// listening socket: the input is the byte stream of one connection (a socketpair), framed by
// UnixSocket.readLine, each line decoded (ControlProtocol.decode), routed (ControlProtocol.route)
// and executed by a fresh control core built from examples/agent-sim.yaml (not started: no
// device answers), then the loop steps once; every response goes through the server's line
// encoder and the client's decoder.
//
// Invariants: nothing traps or hangs; every response is one line that the client decodes to the
// same response (never the "encoding failed" fallback); a decoded request survives edgectl's
// encoding (the same request comes back); an actuating request is only accepted for a configured
// target of its kind; io.write and the test hook are never accepted here (no device is online,
// no test hooks); the audit log's JSON quoting reads back as the text.
import EdgeRuntime
import Foundation
import FuzzSupport
import Logging
@testable import EdgeAgent

#if canImport(Glibc)
import Glibc
#endif

@_cdecl("FuzzControlProtocol_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    FuzzDriver.main(argc, argv, seeds: ControlSeeds.all) { data, size in fuzz(data, size) }
}

/// The agent the requests go to: the simulator example config, a virtual clock.
enum Harness {
    static let logger = Logger(label: "fuzz") { _ in SwiftLogNoOpLogHandler() }
    static let config: AgentConfig = {
        let fixture = FuzzFixture.shared
        do {
            let text = try FuzzFixture.repositoryText("examples/agent-sim.yaml")
            return try ConfigLoader.load(text: text, path: fixture.dir + "/etc/agent-sim.yaml")
        } catch {
            fatalError("examples/agent-sim.yaml does not load in the fuzz fixture: \(error)")
        }
    }()
    static let now = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    /// Longest line read (the server reads 64 KiB; smaller here so short inputs reach the limit).
    static let lineLimit = 4096
    static let maxInput = 100_000

    static let lampTargets: Set<String> = Set(config.lighting.keys).union(config.lighting.values.flatMap(\.lamps))
    static let targetsOfAction: [String: Set<String>] = [
        "set_level": lampTargets, "release": lampTargets,
        "raise": Set(config.bollards.keys), "lower": Set(config.bollards.keys), "emergency_lower": Set(config.bollards.keys),
        "clear_emergency": Set(config.bollards.keys), "hold_down": Set(config.bollards.keys),
        "priority_request": Set(config.priority.keys), "priority_cancel": Set(config.priority.keys),
    ]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzDriver.withInput(data, size) { bytes in
        guard bytes.count <= Harness.maxInput else { return -1 }
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            require(false, "socketpair: \(errno)")
            return 0
        }
        defer { close(fds[0]); close(fds[1]) }
        var size = Int32(4 * Harness.maxInput)
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        require(UnixSocket.writeAll(fds[0], Array(bytes)), "writing the input to the socketpair failed")
        shutdown(fds[0], Int32(SHUT_WR))

        let field = FieldIO(config: Harness.config, logger: Harness.logger)
        let core = ControlCore(config: Harness.config, field: field, inbox: ControlInbox(), logger: Harness.logger, onEvents: { _ in })
        var buffer: [UInt8] = []
        var lines = 0
        while let line = UnixSocket.readLine(fds[1], buffer: &buffer, limit: Harness.lineLimit) {
            lines += 1
            require(lines <= bytes.count, "more lines than bytes")
            if line.isEmpty { continue }
            let response = ControlHarness.answer(line, core: core)
            FuzzDriver.explain("\(String(decoding: line.prefix(120), as: UTF8.self)) -> \(response.ok ? "ok" : "\(response.code?.rawValue ?? "?"): \(response.message ?? "")")")
            respond(response)
        }
        require(buffer.count <= Harness.lineLimit + 4096, "readLine kept \(buffer.count) bytes past its limit")
        if lines > 0 { core.step(now: Harness.now + .seconds(1)) }
        return 0
    }
}

/// The server's encoding of a response, read back as the client does.
func respond(_ response: ControlResponse) {
    let line = ControlCoding.encodeLine(response)
    require(line.last == UInt8(ascii: "\n") && line.dropLast().firstIndex(of: UInt8(ascii: "\n")) == nil, "response is not one line")
    let back = try? JSONDecoder().decode(ControlResponse.self, from: Data(line.dropLast()))
    require(back != nil, "response could not be encoded: \(response)")
    require(back == response, "response does not read back: \(String(decoding: line, as: UTF8.self))")
}

enum ControlHarness {
    static func answer(_ line: [UInt8], core: ControlCore) -> ControlResponse {
        let request: ControlRequest
        let route: ControlRoute
        do {
            request = try ControlProtocol.decode(line: line)
        } catch {
            require(error.code == .malformed, "decode refusal \(error)")
            return error.response
        }
        roundTrip(request)
        do {
            route = try ControlProtocol.route(request, targetKind: { CommandAction.TargetKind(of: $0, in: Harness.config) })
        } catch {
            require([.malformed, .unknownAction, .unknownTarget, .outOfRange].contains(error.code), "route refusal \(error)")
            return error.response
        }
        switch route {
        case .read(let verb):
            let snapshot = core.snapshot(now: Harness.now).controlValue
            if verb == "status" { return .success(snapshot) }
            if case .object(let devices)? = snapshot.object?["devices"], let d = devices[request.target ?? ""] { return .success(d) }
            return .failure(.unknownTarget, "\(request.target ?? "") is not a device")
        case .command(let action):
            if action == .ping { return .success(.object(["gateway": .string(Harness.config.gateway.id)])) }
            if action == .reloadConfig { return .success() }
            let command = AgentCommand(origin: .local(uid: 1000), id: "local-fuzz", target: request.target ?? "", action: action, args: request.args)
            let response = core.execute(command, now: Harness.now)
            if response.ok {
                if case .ioWrite = action { require(false, "\(action) accepted: \(request)") }
                if case .debugHang = action { require(false, "\(action) accepted: \(request)") }
                if let targets = Harness.targetsOfAction[action.name] {
                    require(targets.contains(command.target), "\(action) accepted for \(command.target.debugDescription), not a configured target of its kind")
                }
            } else {
                require(response.code != nil && !(response.message ?? "").isEmpty, "refusal without code or message: \(response)")
            }
            return response
        }
    }

    /// What edgectl sends for a request decodes to the same request; the audit log's quoting reads back.
    static func roundTrip(_ request: ControlRequest) {
        let line = ControlCoding.encodeLine(request)
        let back = try? JSONDecoder().decode(ControlRequest.self, from: Data(line.dropLast()))
        require(back == request, "request does not survive encoding: \(request) -> \(String(decoding: line, as: UTF8.self))")
        for text in [request.verb, request.target ?? ""] {
            let quoted = AuditLog.quote(text)
            let read = try? JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String
            require(read == text, "audit quoting of \(text.debugDescription) reads back as \(String(describing: read?.debugDescription))")
        }
    }
}
