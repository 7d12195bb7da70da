import Testing
import Protocols
import Simulator
import TestSupport

@Suite struct SimConfigTests {
    @Test func parsesTheBriefExample() throws {
        let config = try SimConfig.parse(yaml: """
        tcp: 127.0.0.1:1502          # optional
        rtu: {device: /tmp/x/pty-sim, baud: 19200, parity: E}
        control: /tmp/edge-sim.sock
        tick: 10ms
        units:
          40: {type: ref-signal-io, name: junction, ack_delay: 300ms}
          1:  {type: ref-luminaire, name: lamp-01, rated_w: 60}
          20: {type: ref-presence, name: pir-01}
          30: {type: ref-bollard, name: bollard-1, travel_up: 4s, travel_down: 2500ms}
        gpio:
          presence-a: input
          bus-detect-north: input
          stopline-north: input
        """)
        #expect(config.tcp == SimConfig.Endpoint(host: "127.0.0.1", port: 1502))
        #expect(config.rtu == SimConfig.Serial(device: "/tmp/x/pty-sim", baud: 19200, parity: .even, dataBits: 8, stopBits: 1))
        #expect(config.control == "/tmp/edge-sim.sock")
        #expect(config.tick == .milliseconds(10))
        #expect(config.units.map(\.unit) == [1, 20, 30, 40])
        #expect(config.units[2].travelUp == .seconds(4) && config.units[2].travelDown == .milliseconds(2500))
        #expect(config.units[3].ackDelay == .milliseconds(300))
        #expect(config.units[0].ratedW == 60)
        #expect(config.gpio.map(\.name) == ["presence-a", "bus-detect-north", "stopline-north"])
    }

    @Test func boardFileParses() throws {
        let config = try SimConfig.load(file: BuildProducts.packageRoot.appendingPathComponent("Boards/sim-field.yaml").path)
        #expect(config.tcp?.port == 1502)
        #expect(config.control == "/tmp/edge-sim.sock")
        #expect(config.units.map(\.name) == ["lamp-01", "lamp-02", "lamp-03", "lamp-04", "pir-01", "bollard-1", "junction"])
        #expect(config.units.map(\.unit) == [1, 2, 3, 4, 20, 30, 40])
        #expect(config.gpio.map(\.name) == ["presence-a", "bus-detect-north", "stopline-north"])
    }

    @Test func errorsNameFileLineAndKey() throws {
        let e1 = try #require(throws: SimConfigError.self) {
            try SimConfig.parse(yaml: "tick: 10ms\nunits:\n  30: {type: ref-bollard, name: b, travel_up: fast}\n", file: "sim.yaml")
        }
        #expect(e1.description == "sim.yaml:3: units.30.travel_up: expected a positive duration with a unit (10ms, 4s), got \"fast\"")
        let e2 = try #require(throws: SimConfigError.self) {
            try SimConfig.parse(yaml: "units:\n  300: {type: ref-luminaire, name: x}\n", file: "f.yaml")
        }
        #expect(e2.line == 2 && e2.key == "units.300")
        let e3 = try #require(throws: SimConfigError.self) {
            try SimConfig.parse(yaml: "units:\n  1: {type: ref-toaster, name: x}\n")
        }
        #expect(e3.key == "units.1.type")
        let e4 = try #require(throws: SimConfigError.self) { try SimConfig.parse(yaml: "tcp: nowhere\n") }
        #expect(e4.key == "tcp")
        let e5 = try #require(throws: SimConfigError.self) {
            try SimConfig.parse(yaml: "units:\n  1: {type: ref-luminaire, name: a}\n  2: {type: ref-presence, name: a}\n")
        }
        #expect(e5.message.contains("duplicate device name"))
        #expect(throws: SimConfigError.self) { try SimConfig.parse(yaml: "colour: blue\n") }
        #expect(throws: SimConfigError.self) { try SimConfig.parse(yaml: "units:\n  1: {type: ref-luminaire, name: a, travel_up: 1s}\n") }
    }

    /// The simulator reads YAML with the agent's toolkit: syntax faults have their line, keys are
    /// unique, one document per file, and an endpoint's port is a number 0 to 65535.
    @Test func yamlFaultsHaveTheirLine() throws {
        let e1 = try #require(throws: SimConfigError.self) { try SimConfig.parse(yaml: "tick: 10ms\nunits:\n  1: {type: ref-luminaire\n", file: "sim.yaml") }
        #expect(e1.line == 4 && e1.message.hasPrefix("YAML syntax: "), "\(e1)")
        let e2 = try #require(throws: SimConfigError.self) {
            try SimConfig.parse(yaml: "units:\n  1: {type: ref-luminaire, name: a}\n  1: {type: ref-presence, name: b}\n", file: "sim.yaml")
        }
        #expect(e2.description == "sim.yaml:2: 1: duplicate key \"1\" in one mapping")
        let e3 = try #require(throws: SimConfigError.self) { try SimConfig.parse(yaml: "tick: 10ms\n---\ntick: 20ms\n", file: "sim.yaml") }
        #expect(e3.line == 2)
        #expect(SimConfig.Endpoint.parse("[::1]:1502") == SimConfig.Endpoint(host: "::1", port: 1502))
        #expect(SimConfig.Endpoint.parse("127.0.0.1:0") == SimConfig.Endpoint(host: "127.0.0.1", port: 0))
        #expect(SimConfig.Endpoint.parse("127.0.0.1:65536") == nil)
        #expect(SimConfig.Endpoint.parse("127.0.0.1") == nil)
        #expect(try SimConfig.parse(yaml: "# nothing yet\n") == SimConfig())
    }

    @Test func durations() {
        #expect(SimConfig.parseDuration("10ms") == .milliseconds(10))
        #expect(SimConfig.parseDuration("2500ms") == .milliseconds(2500))
        #expect(SimConfig.parseDuration("4s") == .seconds(4))
        #expect(SimConfig.parseDuration("1.5s") == .milliseconds(1500))
        #expect(SimConfig.parseDuration("5m") == .seconds(300))
        #expect(SimConfig.parseDuration("250us") == .microseconds(250))
        #expect(SimConfig.parseDuration("10") == nil)
        #expect(SimConfig.parseDuration("ms") == nil)
    }
}
