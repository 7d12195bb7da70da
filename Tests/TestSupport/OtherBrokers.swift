#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A broker of the interop matrix: mosquitto, RabbitMQ's MQTT plugin or amqtt, on loopback.
public protocol InteropBroker: AnyObject, Sendable {
    /// "mosquitto", "rabbitmq", "amqtt".
    var name: String { get }
    /// The MQTT port of the (first) node.
    var port: Int { get }
    /// Stops every process the broker started (also done on release).
    func shutdown()
}

extension MosquittoBroker: InteropBroker {
    public var name: String { "mosquitto" }
    public func shutdown() { kill() }
}

public struct BrokerStartError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// RabbitMQ (Debian's rabbitmq-server, 3.10) with the rabbitmq_mqtt plugin: one node, or a
/// cluster (the others join the first), each on free 127.0.0.1 ports, with its own epmd (loopback, private port),
/// its own data folder, cookie and config; anonymous MQTT as guest. A node starts in about
/// 8-12 s here, so a suite starts one per run, not per test. Every process is SIGKILLed on
/// `shutdown()` or release.
public final class RabbitMQBroker: InteropBroker, @unchecked Sendable {
    public struct Node: Sendable {
        public let name: String
        public let mqttPort: Int
        public let amqpPort: Int
        public let distPort: Int
        public let dir: String
        public var url: String { "mqtt://127.0.0.1:\(mqttPort)" }
    }

    public var name: String { "rabbitmq" }
    public let nodes: [Node]
    public var port: Int { nodes[0].mqttPort }
    public let scratch = ScratchDir("rabbitmq")
    private let epmdPort: Int
    private let lock = NSLock()
    private var epmd: ChildProcess?
    private var launchers: [ChildProcess] = []
    private static let bin = "/usr/lib/rabbitmq/bin"

    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: bin + "/rabbitmq-server") }

    /// Starts `nodeCount` nodes; the second and later join the first's cluster. (The MQTT
    /// plugin of 3.10 registers client ids in a Raft cluster: it accepts connections only
    /// while a majority of the nodes runs, so a cluster that must survive one node has 3.)
    public init(nodeCount: Int = 1) throws {
        guard Self.isInstalled, let epmdExe = which("epmd") ?? Self.findEpmd() else {
            throw BrokerStartError("rabbitmq-server or epmd not installed (apt-get install rabbitmq-server)")
        }
        // Every port of the cluster distinct: a node whose listener port another one took fails.
        var ports = restartablePorts(1 + 3 * nodeCount)
        epmdPort = ports.removeFirst()
        let tag = UUID().uuidString.prefix(6).lowercased()
        var nodes: [Node] = []
        for i in 0..<nodeCount {
            let dir = scratch.file("node\(i)")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            nodes.append(Node(name: "edge\(tag)\(i)@localhost", mqttPort: ports[3 * i], amqpPort: ports[3 * i + 1], distPort: ports[3 * i + 2], dir: dir))
        }
        self.nodes = nodes
        epmd = try ChildProcess(epmdExe, ["-port", "\(epmdPort)", "-address", "127.0.0.1"])
        do {
            for node in nodes { try startNode(node) }
            for node in nodes { try waitMQTT(node) }
            for node in nodes.dropFirst() {
                for args in [["stop_app"], ["join_cluster", nodes[0].name], ["start_app"]] {
                    let r = try ctl(node, args)
                    guard r.status == 0 else { throw BrokerStartError("rabbitmqctl \(args): \(r.stdout) \(r.stderr)") }
                }
                try waitMQTT(node)
            }
            if nodes.count > 1 {
                // The MQTT plugin keeps a persistent session (clean session false) in a classic
                // queue on the node the client was connected to; mirrored to every node, the
                // session survives that node (promoted on another), else the client is refused
                // on every other node while its queue's home is down.
                let r = try ctl(nodes[0], ["set_policy", "mqtt-sessions-everywhere", "^mqtt-subscription-", #"{"ha-mode":"all","ha-sync-mode":"automatic"}"#,
                                           "--apply-to", "queues"])
                guard r.status == 0 else { throw BrokerStartError("rabbitmqctl set_policy: \(r.stdout) \(r.stderr)") }
            }
        } catch {
            shutdown()
            throw error
        }
    }

    private static func findEpmd() -> String? {
        let erts = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/erlang"))?.filter { $0.hasPrefix("erts-") } ?? []
        return erts.map { "/usr/lib/erlang/\($0)/bin/epmd" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private func environment(_ node: Node) -> [String: String] {
        [
            "HOME": node.dir,
            "RABBITMQ_NODENAME": node.name,
            "RABBITMQ_CONFIG_FILE": node.dir + "/rabbitmq",
            "RABBITMQ_ENABLED_PLUGINS_FILE": node.dir + "/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": node.dir + "/mnesia",
            "RABBITMQ_LOG_BASE": node.dir + "/log",
            "RABBITMQ_PID_FILE": node.dir + "/pid",
            "RABBITMQ_DIST_PORT": "\(node.distPort)",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": "\(epmdPort)",
        ]
    }

    private func startNode(_ node: Node) throws {
        try """
        listeners.tcp.default = 127.0.0.1:\(node.amqpPort)
        mqtt.listeners.tcp.default = 127.0.0.1:\(node.mqttPort)
        mqtt.allow_anonymous = true
        mqtt.default_user = guest
        mqtt.default_pass = guest
        loopback_users = none
        log.file = false
        log.console = true
        log.console.level = warning

        """.write(toFile: node.dir + "/rabbitmq.conf", atomically: true, encoding: .utf8)
        try "[rabbitmq_mqtt].\n".write(toFile: node.dir + "/enabled_plugins", atomically: true, encoding: .utf8)
        let cookie = node.dir + "/.erlang.cookie"
        try "edgeagenttestcookie".write(toFile: cookie, atomically: false, encoding: .utf8)
        chmod(cookie, 0o400)
        let child = try ChildProcess(Self.bin + "/rabbitmq-server", [], environment: environment(node))
        lock.withLock { launchers.append(child) }
    }

    private func waitMQTT(_ node: Node) throws {
        guard Loopback.waitListening(port: node.mqttPort, timeout: .seconds(60)) else {
            // The node's own output (launchers are in node order), not the last nodes' tail.
            let index = nodes.firstIndex { $0.name == node.name } ?? 0
            let log = lock.withLock { index < launchers.count ? launchers[index].stdout + launchers[index].stderr : "" }
            throw BrokerStartError("RabbitMQ node \(node.name) did not listen for MQTT on \(node.mqttPort) within 60 s:\n\(log.suffix(3000))")
        }
    }

    /// What the nodes printed so far (warnings and errors).
    public var logs: String { lock.withLock { launchers.map { $0.stdout + $0.stderr }.joined(separator: "\n") } }

    /// rabbitmqctl against `node`.
    public func ctl(_ node: Node, _ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Self.bin + "/rabbitmqctl", ["-n", node.name] + args, timeout: .seconds(60), environment: environment(node))
    }

    /// The Erlang VM's pid of `node` (from its pid file).
    public func pid(_ node: Node) -> Int32? {
        (try? String(contentsOfFile: node.dir + "/pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// SIGKILL one node's VM: it dies at once, its clients see their connections cut.
    public func kill(node index: Int) {
        if let pid = pid(nodes[index]) { Glibc.kill(pid, SIGKILL) }
    }

    public func shutdown() {
        for node in nodes { if let pid = pid(node) { Glibc.kill(pid, SIGKILL) } }
        lock.withLock {
            for l in launchers { l.kill9() }
            launchers.removeAll()
            epmd?.kill9()
            epmd = nil
        }
    }

    deinit { shutdown() }
}

/// amqtt (PyPI, 0.12), an asyncio MQTT broker in Python, on a free 127.0.0.1 port.
public final class AMQTTBroker: InteropBroker, @unchecked Sendable {
    public var name: String { "amqtt" }
    public let port = restartablePort()
    public let scratch = ScratchDir("amqtt")
    private let lock = NSLock()
    private var child: ChildProcess?

    public init() throws {
        // The `amqtt` script, or its module when the script is not on PATH (pip --user, pyenv without rehash).
        let command: (String, [String])
        if let exe = which("amqtt") {
            command = (exe, [])
        } else if let python = which("python3") {
            command = (python, ["-c", "from amqtt.scripts.broker_script import main; main()"])
        } else {
            throw BrokerStartError("amqtt not installed (pip install amqtt)")
        }
        let config = scratch.write("amqtt.yaml", """
        listeners:
          default:
            type: tcp
            bind: 127.0.0.1:\(port)
        plugins:
          amqtt.plugins.authentication.AnonymousAuthPlugin:
            allow_anonymous: true

        """)
        child = try ChildProcess(command.0, command.1 + ["-c", config])
        guard Loopback.waitListening(port: port, timeout: .seconds(30)) else {
            let out = child.map { $0.stdout + $0.stderr } ?? ""
            shutdown()
            throw BrokerStartError("amqtt did not listen on \(port) within 30 s: \(out.suffix(2000))")
        }
    }

    public var url: String { "mqtt://127.0.0.1:\(port)" }

    public func shutdown() { lock.withLock { child?.kill9(); child = nil } }
    deinit { shutdown() }
}
