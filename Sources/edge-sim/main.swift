// edge-sim: the field-device simulator (reference luminaires, presence sensors, bollards,
// signal I/O) served over Modbus TCP/RTU, with simulated GPIO lines and a control socket.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import Logging
import Simulator

struct EdgeSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-sim",
        abstract: "Field-device simulator: reference Modbus devices with physics, simulated GPIO, control socket.",
        subcommands: [Serve.self, Ctl.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the devices of a config file until SIGTERM or SIGINT.",
        discussion: "Prints `edge-sim ready tcp=HOST:PORT control=PATH` on stdout once serving (the real port when 0 was asked)."
    )

    @Option(help: "Simulator config (YAML).")
    var config: String

    @Option(help: "Modbus TCP listen address HOST:PORT (overrides the file; port 0 = any free port).")
    var tcp: String?

    @Option(help: "Modbus RTU serial device or pty path (overrides the file's rtu device).")
    var rtu: String?

    @Option(help: "Control socket path (overrides the file).")
    var control: String?

    @Option(help: "Append one line per Modbus request and per control set to this file (CLOCK_MONOTONIC ns, unit, function, address, count).")
    var requestLog: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        if let tcp, SimConfig.Endpoint.parse(tcp) == nil { throw ValidationError("--tcp expects HOST:PORT, got \"\(tcp)\"") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "edge-sim")

        var settings: SimConfig
        do { settings = try SimConfig.load(file: config) } catch {
            FileHandle.standardError.write(Data("edge-sim: \(error)\n".utf8))
            throw ExitCode(78)
        }
        if let tcp { settings.tcp = SimConfig.Endpoint.parse(tcp) }
        if let rtu {
            if settings.rtu == nil { settings.rtu = SimConfig.Serial(device: rtu) } else { settings.rtu?.device = rtu }
        }
        if let control { settings.control = control }

        // Signals are taken synchronously by this thread; every thread started later inherits the mask.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)

        let simulator = FieldSimulator(config: settings, logger: logger)
        do {
            if let requestLog { try simulator.logRequests(to: requestLog) }
            try simulator.start(physics: .realTime)
        } catch {
            FileHandle.standardError.write(Data("edge-sim: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print(simulator.readyLine)
        fflush(nil)  // all output streams: stdout may be a file or pipe (fully buffered)

        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        logger.info("stopping", metadata: ["signal": .stringConvertible(received)])
        simulator.stop()
    }
}

struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one control command to a running edge-sim and print its JSON reply.",
        discussion: """
        Examples: edge-sim ctl set pir-01 presence 1 | get bollard-1 | stats | gpio bus-detect-north 1 | get-gpio
        Exit status: 0 ok, 1 refused ({"ok":false}), 3 simulator not reachable.
        """
    )

    @Option(help: "Control socket of the simulator.")
    var control: String = "/tmp/edge-sim.sock"

    @Option(help: "Seconds to wait for the reply.")
    var timeout: Double = 5

    @Argument(parsing: .captureForPassthrough, help: "The command words.")
    var words: [String] = []

    func validate() throws {
        if words.isEmpty { throw ValidationError("missing command (e.g. get lamp-01)") }
        if words.first == "gpio-watch" { throw ValidationError("gpio-watch streams events; connect to the socket directly (e.g. socat - UNIX-CONNECT:PATH)") }
    }

    func run() throws {
        let reply: String
        do {
            reply = try SimControlClient.send(words.joined(separator: " "), to: control, timeout: .milliseconds(Int64(timeout * 1000)))
        } catch {
            FileHandle.standardError.write(Data("edge-sim ctl: \(error)\n".utf8))
            throw ExitCode(3)
        }
        print(reply)
        if !reply.hasPrefix("{\"ok\":true") { throw ExitCode(1) }
    }
}

EdgeSim.main()
