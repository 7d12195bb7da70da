import EdgeAgent
import EdgeRuntime
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

// edge-agent: parse flags, load config, run EdgeAgent. Exit codes: 0 clean stop, 2 usage, 78 config error.

func usage() -> Never {
    FileHandle.standardError.write(Data("usage: edge-agent [--config FILE] [--log-level trace|debug|info|notice|warning|error]\n".utf8))
    exit(2)
}

var configPath = "/etc/edge-agent/agent.yaml"
var level = Logger.Level.info
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--config": guard let v = args.popFirst() else { usage() }; configPath = v
    case "--log-level": guard let v = args.popFirst(), let l = Logger.Level(rawValue: v) else { usage() }; level = l
    case "--version": print("edge-agent \(Agent.version)"); exit(0)
    case "-h", "--help": usage()
    default: FileHandle.standardError.write(Data("edge-agent: unknown argument \(a)\n".utf8)); usage()
    }
}

let logLevel = level
LoggingSystem.bootstrap { label in JournalLogHandler(label: label, level: logLevel) }
let logger = Logger(label: "edge-agent")

// Block the signals before any thread starts, so only the watcher thread receives them.
SignalWatcher.install()

let config: AgentConfig
do {
    config = try ConfigLoader.check(path: configPath)
} catch {
    // Every problem of the file, one line each, so a technician fixes them in one go.
    let count = error.errors.count
    let heading = count == 1 ? "" : "<3>edge-agent: \(count) config errors:\n"
    let lines = error.errors.map { "<3>edge-agent: config error: \($0)\n" }.joined()
    FileHandle.standardError.write(Data((heading + lines).utf8))
    exit(78)
}

let activeConfigPath = configPath
let agent = Agent(config: config, logger: logger)
do {
    try agent.start()
} catch {
    logger.critical("cannot start: \(error)")
    agent.stop()
    exit(1)
}

let done = Event()
SignalWatcher.start { event in
    switch event {
    case .reload:
        agent.reload(path: activeConfigPath)
    case .terminate(let sig):
        logger.notice("signal \(sig): stopping")
        agent.stop()
        done.set()
    }
}
done.wait()
exit(0)
