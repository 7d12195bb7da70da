import ArgumentParser
import EdgeAgent
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
#if canImport(Glibc)
import Glibc
#endif

/// edgectl: the technician's CLI. Exit codes: 0 done, 1 refused, 2 usage, 3 agent not reachable.
@main
struct EdgeCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgectl",
        abstract: "Talk to the running edge-agent on this gateway.",
        discussion: "Exit codes: 0 done, 1 refused (interlock, invalid), 2 usage, 3 agent not reachable.",
        subcommands: [Status.self, Watch.self, Lamp.self, Bollard.self, Priority.self, IO.self, Maintenance.self, Config.self, Keygen.self, Sign.self]
    )

    /// `--socket PATH` and `--config FILE` may come before the verb (`edgectl --socket S status`):
    /// move them after it, where the verbs declare them.
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        var global: [String] = []
        while let first = args.first, first == "--socket" || first == "--config", args.count >= 2 {
            global += args.prefix(2)
            args.removeFirst(2)
        }
        if !global.isEmpty, !args.isEmpty {
            // Insert after the verb path (the leading words that are not options).
            var i = 0
            while i < args.count, !args[i].hasPrefix("-"), i < 2 { i += 1 }
            // config, keygen and sign do not talk to the agent: they take no socket.
            if !["config", "keygen", "sign"].contains(args.first!) { args.insert(contentsOf: global, at: min(i, args.count)) }
        }
        // The contract's usage exit code is 2 (ArgumentParser's default is 64).
        do {
            var command = try parseAsRoot(args)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                StandardStream.error.write(fullMessage(for: error) + "\n")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Where the agent's control socket is: --socket, else the config's, else the default.
struct Connection: ParsableArguments {
    @Option(name: .long, help: "Control socket path (default /run/edge-agent/control.sock).")
    var socket: String?

    @Option(name: .long, help: "Read the control socket path from this agent config file.")
    var config: String?

    func socketPath() throws -> String {
        if let socket { return socket }
        if let config {
            do {
                return try ConfigLoader.load(path: config).gateway.controlSocket
            } catch {
                throw CLIError.usage("cannot read \(config): \(error)")
            }
        }
        return "/run/edge-agent/control.sock"
    }

    /// Sends one request; maps failures to the contract's exit codes.
    func call(_ request: ControlRequest) throws -> ControlResponse {
        let path = try socketPath()
        let response: ControlResponse
        do {
            let client = try ControlClient(path: path)
            response = try client.send(request)
        } catch {
            if error.kind == .permissionDenied { throw CLIError.refused(error.description) }
            throw CLIError.unreachable(error.description)
        }
        if response.code == .permissionDenied { throw CLIError.refused(response.message ?? "permission denied") }
        return response
    }
}

enum CLIError: Error {
    case usage(String)
    case refused(String)
    case unreachable(String)
}

extension ParsableCommand {
    /// Prints a refusal or an unreachable agent the way technicians and scripts expect.
    static func finish(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch CLIError.usage(let message) {
            StandardStream.error.write("edgectl: \(message)\n")
            throw ExitCode(2)
        } catch CLIError.refused(let message) {
            StandardStream.error.write("edgectl: refused: \(message)\n")
            throw ExitCode(1)
        } catch CLIError.unreachable(let message) {
            StandardStream.error.write("edgectl: \(message)\n")
            throw ExitCode(3)
        }
    }
}

func printJSON(_ value: ControlValue?) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    if let data = try? encoder.encode(value ?? .null), let s = String(data: data, encoding: .utf8) { print(s) }
}

/// One compact JSON document on one line (JSON Lines), keys sorted.
func jsonLine(_ value: ControlValue) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let data = try? encoder.encode(value) else { return "null" }
    return String(decoding: data, as: UTF8.self)
}

/// Sends an actuating request and prints the result; refusal -> exit 1 with the agent's reason.
func actuate(_ connection: Connection, _ request: ControlRequest, json: Bool) throws {
    let response = try connection.call(request)
    if response.ok {
        if json { printJSON(response.result ?? .object(["ok": .bool(true)])) } else {
            print("ok: \(request.verb) \(request.target ?? "")" + (response.message.map { " (\($0))" } ?? ""))
        }
    } else {
        throw CLIError.refused("\(response.code?.rawValue ?? "error"): \(response.message ?? "")")
    }
}

/// Parses `10m`, `30s`, `500ms`, `2h`, `1d` into seconds.
func parseSeconds(_ text: String) -> Double? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
    for (suffix, factor) in units where text.hasSuffix(suffix) {
        let number = text.dropLast(suffix.count)
        if let v = Double(number), v >= 0, !(suffix == "s" && text.hasSuffix("ms")) { return v * factor }
    }
    return nil
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the gateway at a glance: uplink, devices, alarms, control loop.")
    @OptionGroup var connection: Connection
    @Flag(name: .long, help: "Machine-readable output.") var json = false

    func run() throws {
        try Self.finish {
            let response = try connection.call(ControlRequest(verb: "status"))
            guard response.ok, let result = response.result else {
                throw CLIError.refused("\(response.code?.rawValue ?? "error"): \(response.message ?? "")")
            }
            if json { printJSON(result) } else { print(StatusView.render(result), terminator: "") }
        }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Refresh the status view live until Ctrl-C.",
        discussion: "With --json, one status document per refresh, one per line (JSON Lines), for scripts that follow the gateway.")
    @OptionGroup var connection: Connection
    @Option(name: .long, help: "Refresh period, e.g. 1s or 500ms.") var every: String = "1s"
    @Option(name: .long, help: "Stop after this many refreshes (0 = until Ctrl-C).") var count: Int = 0
    @Flag(name: .long, help: "Machine-readable output: one JSON document per refresh, one per line.") var json = false

    func run() throws {
        guard let period = parseSeconds(every), period >= 0.1 else { throw ValidationError("--every must be a duration of at least 100ms, e.g. 1s") }
        try Self.finish {
            var n = 0
            while count == 0 || n < count {
                let response = try connection.call(ControlRequest(verb: "status"))
                guard response.ok, let result = response.result else {
                    throw CLIError.refused("\(response.code?.rawValue ?? "error"): \(response.message ?? "")")
                }
                if json {
                    // Unbuffered, one line each: a reader sees every refresh as it happens.
                    StandardStream.output.write(jsonLine(result) + "\n")
                } else {
                    // Clear the screen and home the cursor, then draw.
                    StandardStream.output.write("\u{1B}[H\u{1B}[2J" + StatusView.render(result))
                }
                n += 1
                if count == 0 || n < count { usleep(UInt32(period * 1_000_000)) }
            }
        }
    }
}

struct Lamp: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Override or release a luminaire or lighting group.", subcommands: [Set.self, Release.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a level (0-100) for a while: edgectl lamp set lamp-01 80 --for 10m")
        @OptionGroup var connection: Connection
        @Argument(help: "Luminaire or lighting group.") var target: String
        @Argument(help: "Level, percent 0-100.") var level: Int
        @Option(name: .customLong("for"), help: "How long, e.g. 10m (default 1h).") var duration: String = "1h"
        @Flag(name: .long) var json = false
        func run() throws {
            guard (0...100).contains(level) else { throw ValidationError("level must be 0-100 (got \(level))") }
            guard let seconds = parseSeconds(duration), seconds > 0 else { throw ValidationError("--for must be a duration like 30s, 10m, 2h (got \(duration))") }
            try Self.finish {
                try actuate(connection, ControlRequest(verb: "lamp.set", target: target, args: ["level": .number(Double(level)), "duration_s": .number(seconds)]), json: json)
            }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Return a luminaire or group to its schedule and presence control.")
        @OptionGroup var connection: Connection
        @Argument var target: String
        @Flag(name: .long) var json = false
        func run() throws {
            try Self.finish { try actuate(connection, ControlRequest(verb: "lamp.release", target: target), json: json) }
        }
    }
}

struct Bollard: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Operate a bollard (interlocks always apply).", subcommands: [Raise.self, Lower.self, EmergencyLower.self, Clear.self])

    struct Raise: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Raise (after the pre-warning; refused while the loop, photocell or emergency input is active).")
        @OptionGroup var connection: Connection
        @Argument var target: String
        @Flag(name: .long) var json = false
        func run() throws { try Self.finish { try actuate(connection, ControlRequest(verb: "bollard.raise", target: target), json: json) } }
    }
    struct Lower: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lower.")
        @OptionGroup var connection: Connection
        @Argument var target: String
        @Flag(name: .long) var json = false
        func run() throws { try Self.finish { try actuate(connection, ControlRequest(verb: "bollard.lower", target: target), json: json) } }
    }
    struct EmergencyLower: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "emergency-lower", abstract: "Lower and hold down until cleared.")
        @OptionGroup var connection: Connection
        @Argument var target: String
        @Flag(name: .long) var json = false
        func run() throws { try Self.finish { try actuate(connection, ControlRequest(verb: "bollard.emergency-lower", target: target), json: json) } }
    }
    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear an emergency or a latched fault (the bollard stays down).")
        @OptionGroup var connection: Connection
        @Argument var target: String
        @Flag(name: .long) var json = false
        func run() throws { try Self.finish { try actuate(connection, ControlRequest(verb: "bollard.clear", target: target), json: json) } }
    }
}

struct Priority: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bus priority requests on a junction approach.", subcommands: [Request.self, Cancel.self])

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a vehicle in on an approach (held until cancel or max hold).")
        @OptionGroup var connection: Connection
        @Argument(help: "Approach name, e.g. north.") var approach: String
        @Option(name: .long, help: "Vehicle id.") var vehicle: String = "technician"
        @Option(name: .long, help: "Line.") var line: String = ""
        @Flag(name: .long) var json = false
        func run() throws {
            try Self.finish {
                var args: [String: ControlValue] = ["vehicle": .string(vehicle)]
                if !line.isEmpty { args["line"] = .string(line) }
                try actuate(connection, ControlRequest(verb: "priority.request", target: approach, args: args), json: json)
            }
        }
    }
    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a vehicle out of an approach.")
        @OptionGroup var connection: Connection
        @Argument var approach: String
        @Option(name: .long) var vehicle: String = "technician"
        @Flag(name: .long) var json = false
        func run() throws {
            try Self.finish { try actuate(connection, ControlRequest(verb: "priority.cancel", target: approach, args: ["vehicle": .string(vehicle)]), json: json) }
        }
    }
}

struct IO: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "io", abstract: "Raw device points, for diagnostics (write only in maintenance mode).", subcommands: [Read.self, Write.self])

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Read a device's points as last polled: edgectl io read bollard-1")
        @OptionGroup var connection: Connection
        @Argument var device: String
        @Flag(name: .long) var json = false
        func run() throws {
            try Self.finish {
                let response = try connection.call(ControlRequest(verb: "io.read", target: device))
                guard response.ok else { throw CLIError.refused("\(response.code?.rawValue ?? "error"): \(response.message ?? "")") }
                if json { printJSON(response.result) } else if let o = response.result?.object {
                    for key in o.keys.sorted() { print("\(key.prefix(16))\(String(repeating: " ", count: max(0, 16 - key.count))) \(o[key]!)") }
                }
            }
        }
    }
    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a point (maintenance mode only): edgectl io write lamp-01 setpoint 50")
        @OptionGroup var connection: Connection
        @Argument var device: String
        @Argument var point: String
        @Argument var value: Double
        @Flag(name: .long) var json = false
        func run() throws {
            try Self.finish {
                try actuate(connection, ControlRequest(verb: "io.write", target: device, args: ["point": .string(point), "value": .number(value)]), json: json)
            }
        }
    }
}

struct Maintenance: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Maintenance mode (allows io write): edgectl maintenance on|off")
    @OptionGroup var connection: Connection
    @Argument(help: "on or off") var state: String
    @Flag(name: .long) var json = false
    func run() throws {
        guard state == "on" || state == "off" else { throw ValidationError("say on or off") }
        try Self.finish { try actuate(connection, ControlRequest(verb: "maintenance", args: ["on": .bool(state == "on")]), json: json) }
    }
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Agent configuration.", subcommands: [Check.self, Reload.self])
    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the running agent reload its config file (as SIGHUP does); prints why when it keeps the running one.")
        @OptionGroup var connection: Connection
        @Flag(name: .long) var json = false
        func run() throws { try Self.finish { try actuate(connection, ControlRequest(verb: "config.reload"), json: json) } }
    }
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a config file (and its board and profiles) without starting anything.")
        @Argument var file: String
        @Flag(name: .long) var json = false
        func run() throws {
            do {
                let config = try ConfigLoader.check(path: file)
                if json {
                    printJSON(.object(["ok": .bool(true), "gateway": .string(config.gateway.id), "devices": .number(Double(config.devices.count))]))
                } else {
                    print("\(file): ok (gateway \(config.gateway.id), \(config.devices.count) devices, \(config.buses.count) buses, board \(config.board.name))")
                }
            } catch {
                // Every problem of the file (and of its board and profiles), one line each.
                if json {
                    let list: [ControlValue] = error.errors.map { e in
                        .object(["file": .string(e.file), "line": e.line.map { .number(Double($0)) } ?? .null,
                                 "key": .string(e.key), "message": .string(e.message), "text": .string(e.description)])
                    }
                    printJSON(.object(["ok": .bool(false), "error": .string(error.first.description), "errors": .array(list)]))
                }
                StandardStream.error.write("\(error.description)\n")
                if error.errors.count > 1 {
                    StandardStream.error.write("\(file): \(error.errors.count) problems\n")
                }
                throw ExitCode(1)
            }
        }
    }
}
