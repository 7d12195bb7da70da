import ArgumentParser
import EdgeAgent
import EdgeRuntime
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging

// edge-agent: the gateway daemon. Exit codes: 0 clean stop, 1 cannot start, 2 usage, 78 config error.

struct EdgeAgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge-agent",
        abstract: "Street-cabinet gateway: lighting, bollards and bus priority over Modbus and GPIO, uplinked to the centre over MQTT.",
        version: "edge-agent \(Agent.version)")

    @Option(help: "The agent's config file.")
    var config = "/etc/edge-agent/agent.yaml"

    @Option(help: "Lowest level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), not \(logLevel)")
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: level) }
        let logger = Logger(label: "edge-agent")
        // Block the signals before any thread starts, so only the watcher thread receives them.
        SignalWatcher.install()
        let loaded: AgentConfig
        do {
            loaded = try ConfigLoader.check(path: config)
        } catch {
            // Every problem of the file, one line each, so a technician fixes them in one go.
            let count = error.errors.count
            let heading = count == 1 ? "" : "<3>edge-agent: \(count) config errors:\n"
            StandardStream.error.write(heading + error.errors.map { "<3>edge-agent: config error: \($0)\n" }.joined())
            throw ExitCode(78)
        }
        let agent = Agent(config: loaded, logger: logger)
        do {
            try agent.start()
        } catch {
            logger.critical("cannot start: \(error)")
            agent.stop()
            throw ExitCode(1)
        }
        let config = self.config
        // Once started (first polls answered, the uplink connected, the backlog sent) and again
        // after each reload, the pages only starting touched go back.
        SignalWatcher.run(settle: .seconds(10), settled: { releaseStartupPages(logger) }) { event in
            switch event {
            case .reload:
                agent.reload(path: config)
                return true
            case .terminate(let sig):
                logger.notice("signal \(sig): stopping")
                agent.stop()
                return false
            }
        }
    }
}

/// The pages only starting (or a reload) touched go back to the page cache: the agent's resident
/// memory is then what it runs (`ResidentPages`).
func releaseStartupPages(_ logger: Logger) {
    guard let released = ResidentPages.releaseStartupPages() else {
        logger.debug("start-up pages kept: /proc/self/smaps unreadable")
        return
    }
    logger.debug("start-up pages released", metadata: ["kib": "\(released.residentKB)", "mappings": "\(released.mappings)",
                                                       "refused": "\(released.refused)"])
}

do {
    var command = try EdgeAgentCommand.parseAsRoot()
    try command.run()
    exit(0)
} catch let exit as ExitCode {
    EdgeAgentCommand.exit(withError: exit)
} catch {
    // Usage errors exit 2 (as before), help and --version 0.
    let code = EdgeAgentCommand.exitCode(for: error)
    if code == .success { EdgeAgentCommand.exit(withError: error) }
    StandardStream.error.write(EdgeAgentCommand.fullMessage(for: error) + "\n")
    exit(2)
}
