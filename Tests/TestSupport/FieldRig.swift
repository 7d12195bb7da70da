#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A whole field in processes for system tests: a real `edge-sim` serving the reference
/// devices on a free loopback port (and the simulated GPIO lines on a Unix socket), and a real
/// `edge-agent` configured for it. Everything is killed when the rig is released.
public final class FieldRig: @unchecked Sendable {
    public let scratch = ScratchDir("edge-rig")
    public let simPort = Loopback.freePort()
    public let brokerPort: Int
    public var simSocket: String { scratch.file("sim.sock") }
    public var agentSocket: String { scratch.file("control.sock") }
    public var configPath: String { scratch.file("agent.yaml") }
    public private(set) var sim: ChildProcess?
    public private(set) var agent: ChildProcess?

    /// Starts edge-sim with the reference units (short travel times so tests stay fast;
    /// `bollardTravelUp` sets bollard-1's rise time).
    public init(brokerPort: Int? = nil, bollardTravelUp: String = "1s") throws {
        self.brokerPort = brokerPort ?? Loopback.freePort()
        let simConfig = """
        tcp: 127.0.0.1:\(simPort)
        control: \(simSocket)
        tick: 10ms
        units:
          1:  {type: ref-luminaire, name: lamp-01, rated_w: 60}
          2:  {type: ref-luminaire, name: lamp-02, rated_w: 60}
          20: {type: ref-presence, name: pir-01}
          30: {type: ref-bollard, name: bollard-1, travel_up: \(bollardTravelUp), travel_down: 800ms}
          40: {type: ref-signal-io, name: junction, ack_delay: 100ms}
        gpio:
          presence-a: input
          bus-detect-north: input
          stopline-north: input
        """
        let path = scratch.write("sim.yaml", simConfig)
        let sim = try ChildProcess(BuildProducts.executable("edge-sim"), ["--config", path])
        self.sim = sim
        guard Wait.until(timeout: .seconds(15), { sim.stdout.contains("edge-sim ready") }) else {
            throw RigError("edge-sim did not start: \(sim.stderr)")
        }
    }

    /// The agent config for this rig; `extra` is appended (more top-level sections).
    public func agentConfig(telemetry: String = "2s", bollard: String = "{pre_warning: 300ms, travel_timeout: 3s}", extra: String = "") -> String {
        _ = scratch.write("board.yaml", """
        name: test-sim
        description: simulated board for system tests
        gpio:
          backend: simulated
          simulator_socket: \(simSocket)
          lines:
            presence-a: {chip: sim0, offset: 0, direction: input, debounce: 5ms}
            bus-detect-north: {chip: sim0, offset: 1, direction: input, debounce: 5ms}
            stopline-north: {chip: sim0, offset: 2, direction: input, debounce: 5ms}
        """)
        return """
        gateway:
          id: test-gw
          location: {lat: 47.3220, lon: 5.0415}
          timezone: Europe/Paris
          state_dir: \(scratch.file("state"))
          control_socket: \(agentSocket)
        uplink:
          broker: mqtt://127.0.0.1:\(brokerPort)
          prefix: edge/v1
          telemetry_interval: \(telemetry)
          outbox: {max_messages: 100000, max_age: 1d}
        board: board.yaml
        profiles_dir: \(BuildProducts.packageRoot.appendingPathComponent("Profiles").path)
        control: {realtime_priority: 0}
        buses:
          field: {tcp: "127.0.0.1:\(simPort)", timeout: 200ms, poll: 50ms}
        devices:
          lamp-01: {profile: ref-luminaire, bus: field, unit: 1}
          lamp-02: {profile: ref-luminaire, bus: field, unit: 2}
          pir-01: {profile: ref-presence, bus: field, unit: 20}
          pir-02: {gpio: presence-a}
          bollard-1: {profile: ref-bollard, bus: field, unit: 30}
          junction: {profile: ref-signal-io, bus: field, unit: 40}
          bus-in-n: {gpio: bus-detect-north}
          bus-out-n: {gpio: stopline-north}
        lighting:
          rue-liberte:
            lamps: [lamp-01, lamp-02]
            presence: [pir-01, pir-02]
            base: 30
            boost: 100
            hold: 1s
            fade_up: 300ms
            fade_down: 500ms
        bollards:
          bollard-1: \(bollard)
        priority:
          north: {device: junction, approach: 1, checkin: bus-in-n, checkout: bus-out-n, max_hold: 4s, min_interval: 500ms}
        \(extra)
        """
    }

    /// Writes the config and starts edge-agent; waits until its control socket answers.
    @discardableResult
    public func startAgent(config: String? = nil, environment: [String: String]? = nil, arguments: [String] = []) throws -> ChildProcess {
        _ = scratch.write("agent.yaml", config ?? agentConfig())
        let agent = try ChildProcess(BuildProducts.executable("edge-agent"), ["--config", configPath] + arguments, environment: environment)
        self.agent = agent
        guard Wait.until(timeout: .seconds(15), { (try? edgectl(["status", "--json"]).status) == 0 || !agent.isRunning }), agent.isRunning else {
            throw RigError("edge-agent did not start: \(agent.stderr)")
        }
        return agent
    }

    /// A centre signing key made by the real `edgectl keygen` in the scratch folder (key id
    /// `centre-test`): the private key file and the base64 public key to configure.
    public func centreKey(_ name: String = "centre.key") throws -> (keyFile: String, publicKey: String) {
        let keyFile = scratch.file(name)
        let keygen = try runCommand(BuildProducts.executable("edgectl"), ["keygen", "--kid", "centre-test", "--out", keyFile, "--json"])
        guard keygen.status == 0, let pub = (try? JSONSerialization.jsonObject(with: Data(keygen.stdout.utf8)) as? [String: Any])?["public_key"] as? String else {
            throw RigError("edgectl keygen: \(keygen.status) \(keygen.stderr)")
        }
        return (keyFile, pub)
    }

    /// Runs the real edgectl against this rig's agent.
    public func edgectl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(BuildProducts.executable("edgectl"), ["--socket", agentSocket] + args, timeout: .seconds(20))
    }

    /// Sends one command to the simulator's control socket; returns the decoded reply.
    public func simControl(_ words: String) throws -> [String: Any] {
        let r = try runCommand(BuildProducts.executable("edge-sim"), ["ctl", "--control", simSocket] + words.split(separator: " ").map(String.init), timeout: .seconds(10))
        guard let line = r.stdout.split(separator: "\n").last,
              let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw RigError("edge-sim ctl \(words): \(r.stdout) \(r.stderr)")
        }
        return obj
    }

    /// One simulated device's state (`get <device>`).
    public func device(_ name: String) throws -> [String: Any] { try simControl("get \(name)") }

    /// The agent's status (`edgectl status --json`).
    public func status() throws -> [String: Any] {
        let r = try edgectl(["status", "--json"])
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw RigError("edgectl status: \(r.status) \(r.stdout) \(r.stderr)")
        }
        return obj
    }

    /// The simulator's safety-violation count.
    public func safetyViolations() throws -> Int {
        (try simControl("stats")["safety_violations"] as? Int) ?? -1
    }

    deinit {
        agent?.kill9()
        sim?.kill9()
    }
}

/// A rig setup failure, with what the child printed.
public struct RigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
