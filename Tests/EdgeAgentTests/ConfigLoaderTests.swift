import Drivers
import EdgeAgent
import Foundation
import TestSupport
import Testing

@Suite struct ConfigLoaderTests {
    @Test func fixtureLoadsWithEveryValueAndDefault() throws {
        let fx = ConfigFixture()
        let c = try fx.load(fx.baseText)
        let dir = URL(fileURLWithPath: fx.configPath).deletingLastPathComponent().standardizedFileURL.path

        #expect(c.sourcePath == fx.configPath)
        #expect(c.gateway == AgentConfig.Gateway(id: "cab-0042", latitude: 47.3220, longitude: 5.0415, timezone: "Europe/Paris",
                                                 stateDirectory: dir + "/state", controlSocket: dir + "/run/control.sock", controlGroup: "root", controlGroupID: 0))
        #expect(c.uplink.broker == "mqtts://broker.example:8883")
        #expect(c.uplink.tls == AgentConfig.Uplink.TLS(ca: dir + "/ca.pem", cert: dir + "/gw.pem", key: dir + "/gw.key"))
        #expect(c.uplink.telemetryInterval == .seconds(60))
        #expect(c.uplink.outboxMaxMessages == 1000)
        #expect(c.uplink.outboxMaxAge == .seconds(7 * 86400))
        #expect(c.uplink.centreKeys == ["centre-2026": (1...32).map { UInt8($0) }])
        #expect(c.board.name == "sim")

        #expect(c.buses["field"] == BusConfig(name: "field", transport: .tcp(host: "127.0.0.1", port: 1502), timeout: .milliseconds(200)))
        #expect(c.buses["rs485-1"] == BusConfig(name: "rs485-1", transport: .rtu(device: "/dev/ttyS1", baud: 19200, parity: "E", dataBits: 8, stopBits: 1),
                                                timeout: .milliseconds(300)))
        #expect(c.devices.count == 8)
        #expect(c.devices["lamp-02"]?.attachment == .modbus(profile: "ref-luminaire", bus: "rs485-1", unit: 2))
        #expect(c.devices["pir-02"]?.attachment == .gpio(line: "presence-a"))
        #expect(Set(c.profiles.keys) == ["ref-luminaire", "ref-presence", "ref-bollard", "ref-signal-io"])

        let rue = try #require(c.lighting["rue-liberte"])
        #expect(rue == LightingGroupConfig(
            name: "rue-liberte", lamps: ["lamp-01"], presence: ["pir-01", "pir-02"], base: 30, boost: 100, hold: .seconds(60),
            fadeUp: .milliseconds(500), fadeDown: .seconds(10),
            night: .init(base: 20, fromHour: 23, fromMinute: 0, toHour: 5, toMinute: 0),
            on: .dusk(offsetMinutes: 0), off: .dawn(offsetMinutes: 0), neighbours: ["place-darcy"]))
        let darcy = try #require(c.lighting["place-darcy"])
        #expect(darcy.on == .dusk(offsetMinutes: 15))
        #expect(darcy.off == .time(hour: 6, minute: 30))
        #expect(darcy.hold == .seconds(60) && darcy.fadeUp == .milliseconds(500) && darcy.fadeDown == .seconds(10))
        #expect(darcy.night == nil && darcy.neighbours.isEmpty && darcy.ratedPowerW == nil)

        // max_sensor_age: the default 300 ms (two polls of the bollard, 50 ms by role, are less).
        #expect(c.bollards["bollard-1"] == BollardConfig(name: "bollard-1", preWarning: .seconds(3), travelTimeout: .seconds(8), autoRaiseAfter: .seconds(10), maxReversals: 3,
                                                         maxSensorAge: .milliseconds(300)))
        #expect(c.priority["north"] == ApproachConfig(name: "north", device: "junction", approach: 1, checkin: "bus-in-n", checkout: "bus-out-n",
                                                      maxHold: .seconds(60), minInterval: .seconds(20)))
        #expect(c.control == AgentConfig.ControlSettings(period: .milliseconds(10), realtimePriority: 50))
    }

    @Test func minimalConfigGetsTheContractDefaults() throws {
        let fx = ConfigFixture()
        let text = """
        gateway:
          id: cab-1
          location: {lat: 0, lon: 0}
          timezone: UTC
        uplink:
          broker: mqtt://127.0.0.1:1883
        board: \(ConfigFixture.simBoard)
        buses:
          rs485-1: {rtu: /dev/ttyUSB0}
        """
        let c = try fx.load(text)
        #expect(c.gateway.stateDirectory == "/var/lib/edge-agent")
        #expect(c.gateway.controlSocket == "/run/edge-agent/control.sock")
        #expect(c.gateway.controlGroup == nil)
        #expect(c.uplink.prefix == "edge/v1")
        #expect(c.uplink.tls == nil)
        #expect(c.uplink.telemetryInterval == .seconds(60))
        #expect(c.uplink.outboxMaxMessages == 1_000_000)
        #expect(c.uplink.outboxMaxAge == .seconds(7 * 86400))
        #expect(c.uplink.centreKeys.isEmpty)
        // RTU 19200 8E1, 500ms timeout, no bus-wide poll (periods by role).
        #expect(c.buses["rs485-1"] == BusConfig(name: "rs485-1", transport: .rtu(device: "/dev/ttyUSB0", baud: 19200, parity: "E", dataBits: 8, stopBits: 1),
                                                timeout: .milliseconds(500)))
        #expect(c.devices.isEmpty && c.lighting.isEmpty && c.bollards.isEmpty && c.priority.isEmpty && c.profiles.isEmpty)
        #expect(c.control == AgentConfig.ControlSettings(period: nil, realtimePriority: 50))
    }

    @Test func optionalExtraKeysAreRead() throws {
        let fx = ConfigFixture()
        var text = try #require(ConfigFixture.mutate("    boost: 80\n", "    boost: 80\n    rated_w: 42.5\n    power_tolerance: 0.2\n    warm_up: 2m\n"))
        text = text.replacingOccurrences(of: "auto_raise_after: 10s}", with: "max_reversals: 5}")
        text = text.replacingOccurrences(of: "field: {tcp: \"127.0.0.1:1502\", timeout: 200ms}", with: "field: {tcp: \"[::1]:1502\", poll: 50ms}")
        text = text.replacingOccurrences(of: "rs485-1: {rtu: /dev/ttyS1, baud: 19200, parity: E, timeout: 300ms}",
                                         with: "rs485-1: {rtu: /dev/ttyS1, baud: 9600, parity: N, data_bits: 7, stop_bits: 2}")
        text = text.replacingOccurrences(of: "control: {period: 10ms, realtime_priority: 50}", with: "control: {period: 5ms, realtime_priority: 0}")
        let c = try fx.load(text)
        let darcy = try #require(c.lighting["place-darcy"])
        #expect(darcy.ratedPowerW == 42.5 && darcy.powerTolerance == 0.2 && darcy.warmUp == .seconds(120))
        #expect(c.bollards["bollard-1"]?.autoRaiseAfter == nil)
        #expect(c.bollards["bollard-1"]?.maxReversals == 5)
        #expect(c.buses["field"] == BusConfig(name: "field", transport: .tcp(host: "::1", port: 1502), timeout: .milliseconds(500), pollInterval: .milliseconds(50)))
        #expect(c.buses["rs485-1"]?.transport == .rtu(device: "/dev/ttyS1", baud: 9600, parity: "N", dataBits: 7, stopBits: 2))
        #expect(c.control == AgentConfig.ControlSettings(period: .milliseconds(5), realtimePriority: 0))
    }

    @Test func rtuBusResolvesBoardSerialPortNames() throws {
        let fx = ConfigFixture()
        let board = fx.dir.write("board.yaml", """
        name: test-board
        serial: {rs485-1: /dev/ttymxc1}
        """)
        let text = """
        gateway: {id: cab-1, location: {lat: 1, lon: 2}, timezone: Europe/Paris}
        uplink: {broker: "mqtt://localhost"}
        board: board.yaml
        buses:
          line-a: {rtu: rs485-1, baud: 115200}
        """
        #expect(try fx.load(text).buses["line-a"]?.transport == .rtu(device: "/dev/ttymxc1", baud: 115200, parity: "E", dataBits: 8, stopBits: 1))
        #expect(try fx.load(text).board.lines.isEmpty)
        _ = board
    }

    @Test func contractExampleLoadsWithPathsFixedUp() throws {
        let fx = ConfigFixture()
        var text = try String(contentsOfFile: ConfigFixture.repo + "/examples/agent.yaml", encoding: .utf8)
        for (old, new) in [
            ("/etc/edge-agent/ca.pem", "ca.pem"), ("/etc/edge-agent/gw.pem", "gw.pem"), ("/etc/edge-agent/gw.key", "gw.key"),
            ("<base64 Ed25519 public key>", ConfigFixture.centreKey),
            ("board: Boards/sim.yaml", "board: \(ConfigFixture.simBoard)\nprofiles_dir: \(ConfigFixture.profiles)"),
            // Groups are resolved at load: one that exists here.
            ("control_group: edge-tech", "control_group: root"),
        ] {
            #expect(text.contains(old), "examples/agent.yaml no longer contains \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        let c = try fx.load(text)
        #expect(c.gateway.id == "cab-0042")
        #expect(c.gateway.stateDirectory == "/var/lib/edge-agent")
        #expect(c.uplink.broker == "mqtt://127.0.0.1:1883")
        #expect(c.uplink.tls != nil)
        #expect(c.buses["rs485-1"]?.transport == .rtu(device: "/dev/ttyS1", baud: 19200, parity: "E", dataBits: 8, stopBits: 1))
        #expect(c.buses["rs485-1"]?.timeout == .milliseconds(300))
        #expect(Set(c.devices.keys) == ["lamp-01", "pir-01", "pir-02", "bollard-1", "junction", "bus-in-n", "bus-out-n"])
        #expect(c.lighting["rue-liberte"]?.night == .init(base: 20, fromHour: 23, fromMinute: 0, toHour: 5, toMinute: 0))
        #expect(c.lighting["rue-liberte"]?.on == .dusk(offsetMinutes: 0))
        #expect(c.bollards["bollard-1"]?.autoRaiseAfter == .seconds(10))
        #expect(c.priority["north"]?.checkout == "bus-out-n")
    }

    @Test func simExampleLoadsAsIs() throws {
        let path = ConfigFixture.repo + "/examples/agent-sim.yaml"
        let c = try ConfigLoader.load(path: path)
        #expect(c.gateway.id == "sim-0001")
        #expect(c.gateway.stateDirectory == "/tmp/edge-agent-sim/state")
        #expect(c.gateway.controlSocket == "/tmp/edge-agent-sim/control.sock")
        #expect(c.uplink.broker == "mqtt://127.0.0.1:1883")
        #expect(c.board.name == "sim")
        #expect(c.board.gpioBackend == .simulated)
        #expect(c.board.simulatorSocket == "/tmp/edge-sim.sock")
        #expect(c.buses["field"] == BusConfig(name: "field", transport: .tcp(host: "127.0.0.1", port: 1502), timeout: .milliseconds(200)))
        let units: [String: UInt8] = ["lamp-01": 1, "lamp-02": 2, "lamp-03": 3, "lamp-04": 4, "pir-01": 20, "bollard-1": 30, "junction": 40]
        for (name, unit) in units {
            guard case .modbus(_, "field", let u)? = c.devices[name]?.attachment else { Issue.record("\(name) is not on bus field"); continue }
            #expect(u == unit, "\(name)")
        }
        #expect(c.devices["pir-02"]?.attachment == .gpio(line: "presence-a"))
        #expect(c.devices["bus-in-n"]?.attachment == .gpio(line: "bus-detect-north"))
        #expect(c.devices["bus-out-n"]?.attachment == .gpio(line: "stopline-north"))
        #expect(c.lighting["rue-liberte"]?.lamps == ["lamp-01", "lamp-02"])
        #expect(c.lighting["rue-liberte"]?.presence == ["pir-01", "pir-02"])
        #expect(c.lighting["rue-liberte"]?.neighbours == ["place-darcy"])
        #expect(c.lighting["place-darcy"]?.lamps == ["lamp-03", "lamp-04"])
        #expect(c.lighting["place-darcy"]?.neighbours == ["rue-liberte"])
        #expect(c.bollards["bollard-1"] != nil)
        #expect(c.priority["north"]?.device == "junction")
        #expect(c.priority["north"]?.approach == 1)
        #expect(c.uplink.centreKeys["sim-dev"]?.count == 32)
        #expect(c.profiles.count == 4)
    }

    @Test func fileErrorsNameTheFile() {
        let missing = "/nonexistent/edge/agent.yaml"
        #expect(throws: ConfigError(file: missing, line: nil, key: "", message: "file not found")) {
            try ConfigLoader.load(path: missing)
        }
        let fx = ConfigFixture()
        let empty = fx.dir.write("empty.yaml", "# nothing\n")
        #expect(throws: ConfigError(file: empty, line: 1, key: "", message: "the file is empty")) {
            try ConfigLoader.load(path: empty)
        }
        #expect(throws: ConfigError(file: fx.dir.path, line: nil, key: "", message: "is a folder, not a file")) {
            try ConfigLoader.load(path: fx.dir.path)
        }
    }

    @Test func descriptionIsFileLineKeyMessage() throws {
        let fx = ConfigFixture()
        let text = try #require(ConfigFixture.mutate("    hold: 60s\n", "    hold: \"10 s\"\n"))
        let line = try #require(ConfigFixture.line(of: "hold: \"10 s\"", in: text))
        let error = try #require(throws: ConfigError.self) { try fx.load(text) }
        #expect(error.description == "\(fx.configPath):\(line): lighting.rue-liberte.hold: bad duration \"10 s\" (use a number with a unit: 500ms, 10s, 5m, 7d)")
        #expect(ConfigError(file: "a.yaml", line: nil, key: "", message: "m").description == "a.yaml: m")
        #expect(ConfigError(file: "a.yaml", line: 3, key: "", message: "m").description == "a.yaml:3: m")
    }

    @Test func boardFileErrorsNameTheBoardFile() throws {
        let fx = ConfigFixture()
        let board = fx.dir.write("bad-board.yaml", """
        name: bad
        gpio:
          backend: libgpiod
          lines:
            presence-a: {chip: gpiochip0, offset: -1, direction: input}
        """)
        let text = ConfigFixture.base.replacingOccurrences(of: "board: \(ConfigFixture.simBoard)", with: "board: bad-board.yaml")
        let error = try #require(throws: ConfigError.self) { try fx.load(text) }
        #expect(error == ConfigError(file: board, line: 5, key: "gpio.lines.presence-a.offset", message: "-1 is out of range (0 to 65535)"))
    }

    @Test func profileFileErrorsNameTheProfileFile() throws {
        let fx = ConfigFixture()
        try FileManager.default.createDirectory(atPath: fx.dir.file("Profiles"), withIntermediateDirectories: true)
        let profile = fx.dir.write("Profiles/ref-luminaire.yaml", """
        name: ref-luminaire
        kind: luminaire
        points:
          setpoint: {table: holding, address: 0}
          level:    {table: input,   adress: 0}
        """)
        // Profiles/ beside the config is searched after profiles_dir: drop profiles_dir to reach it.
        // (The other profiles are then not found: those are problems of the config file, reported too.)
        let text = ConfigFixture.base.replacingOccurrences(of: "profiles_dir: \(ConfigFixture.profiles)\n", with: "")
        let errors = try #require(throws: ConfigErrors.self) { try ConfigLoader.check(text: text, path: fx.configPath) }
        #expect(errors.errors.contains(ConfigError(file: profile, line: 5, key: "points.level.adress", message: "unknown key \"adress\" (did you mean \"address\"?)")))
        #expect(errors.errors.last?.file == profile, "the config file's own problems come first: \(errors)")
    }

    @Test func profileSearchPathOrder() {
        #expect(ConfigLoader.profileSearchPath(configPath: "/etc/edge-agent/agent.yaml", profilesDir: "site") ==
                ["/etc/edge-agent/site", "/etc/edge-agent/Profiles", "/etc/Profiles", "/usr/share/edge-agent/Profiles"])
        #expect(ConfigLoader.profileSearchPath(configPath: "/etc/edge-agent/agent.yaml") ==
                ["/etc/edge-agent/Profiles", "/etc/Profiles", "/usr/share/edge-agent/Profiles"])
    }
}
