import EdgeAgent
import Foundation
import Testing

/// One broken variant of the board fixture and the error expected.
struct BrokenBoard: Sendable, CustomTestStringConvertible {
    let old: String
    let new: String
    let key: String
    let lineOf: String
    let message: String
    var testDescription: String { "\(key): \(message)" }
    init(_ old: String, _ new: String, key: String, line lineOf: String, _ message: String) {
        self.old = old
        self.new = new
        self.key = key
        self.lineOf = lineOf
        self.message = message
    }
}

enum BoardFixture {
    static let text = """
    name: test-board
    description: two inputs, one relay, two ports
    gpio:
      backend: libgpiod
      lines:
        presence-a: {chip: gpiochip0, offset: 17, direction: input, active_low: true, debounce: 20ms}
        bus-detect-north: {chip: gpiochip0, offset: 27, direction: input}
        relay-1: {chip: 3-0020, offset: 8, direction: output}
    serial:
      rs485-1: /dev/ttymxc0
      rs485-2: /dev/ttymxc2

    """
}

let brokenBoards: [BrokenBoard] = [
    .init("backend: libgpiod", "backend: libgpio", key: "gpio.backend", line: "backend:", "unknown GPIO backend \"libgpio\" (did you mean \"libgpiod\"?)"),
    .init("  backend: libgpiod\n", "  backend: libgpiod\n  simulator_socket: /tmp/x.sock\n", key: "gpio.simulator_socket", line: "simulator_socket", "applies to the simulated backend only"),
    .init("  backend: libgpiod\n", "", key: "gpio.backend", line: "gpio:", "missing required key \"backend\""),
    .init("name: test-board\n", "nam: test-board\n", key: "nam", line: "nam:", "unknown key \"nam\" (did you mean \"name\"?)"),
    .init("offset: 27, direction: input}", "offset: 27, direction: in}", key: "gpio.lines.bus-detect-north.direction", line: "bus-detect-north:", "unknown direction \"in\" (use input or output)"),
    .init("offset: 27, direction: input}", "direction: input}", key: "gpio.lines.bus-detect-north.offset", line: "bus-detect-north:", "missing required key \"offset\""),
    .init("offset: 27,", "offset: 17,", key: "gpio.lines.bus-detect-north.offset", line: "bus-detect-north:", "gpiochip0 offset 17 is already line presence-a"),
    .init("offset: 27,", "offset: seventeen,", key: "gpio.lines.bus-detect-north.offset", line: "bus-detect-north:", "expected a whole number"),
    .init("direction: output}", "direction: output, debounce: 5ms}", key: "gpio.lines.relay-1.debounce", line: "relay-1:", "debounce applies to input lines only"),
    .init("debounce: 20ms}", "debounce: 20}", key: "gpio.lines.presence-a.debounce", line: "presence-a:", "bad duration \"20\""),
    .init("active_low: true,", "active_low: maybe,", key: "gpio.lines.presence-a.active_low", line: "presence-a:", "expected true or false, found \"maybe\""),
    .init("{chip: gpiochip0, offset: 17,", "{offset: 17,", key: "gpio.lines.presence-a.chip", line: "presence-a:", "missing required key \"chip\""),
    .init("    presence-a:", "    Presence_A:", key: "gpio.lines.Presence_A", line: "Presence_A", "bad line name \"Presence_A\""),
    .init("rs485-2: /dev/ttymxc2", "rs485-2: ttymxc2", key: "serial.rs485-2", line: "rs485-2", "a serial port is a device path such as /dev/ttymxc1"),
    .init("serial:\n", "serial: /dev/ttyS0\nserial2:\n", key: "serial2", line: "serial2", "unknown key \"serial2\""),
]

@Suite struct BoardLoaderTests {
    @Test func fixtureBoardLoads() throws {
        let b = try BoardLoader.parse(BoardFixture.text, file: "/b/test.yaml")
        #expect(b == Board(name: "test-board", description: "two inputs, one relay, two ports", gpioBackend: .libgpiod, simulatorSocket: nil,
                           lines: ["presence-a": .init(chip: "gpiochip0", offset: 17, direction: .input, activeLow: true, debounce: .milliseconds(20)),
                                   "bus-detect-north": .init(chip: "gpiochip0", offset: 27, direction: .input),
                                   "relay-1": .init(chip: "3-0020", offset: 8, direction: .output)],
                           serialPorts: ["rs485-1": "/dev/ttymxc0", "rs485-2": "/dev/ttymxc2"]))
    }

    @Test func simBoardIsTheSimulatorsLines() throws {
        let b = try BoardLoader.load(path: ConfigFixture.simBoard)
        #expect(b.name == "sim")
        #expect(b.gpioBackend == .simulated)
        #expect(b.simulatorSocket == "/tmp/edge-sim.sock")
        #expect(Set(b.lines.keys) == ["presence-a", "bus-detect-north", "stopline-north"])
        for (name, line) in b.lines {
            #expect(line.direction == .input, "\(name)")
            #expect(line.debounce == .milliseconds(5), "\(name)")
        }
        #expect(b.serialPorts.isEmpty)
    }

    /// Every board shipped in Boards/ loads (sim-field.yaml is the simulator's own file, not a board).
    @Test func everyShippedBoardLoads() throws {
        let dir = ConfigFixture.repo + "/Boards"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") && $0 != "sim-field.yaml" }.sorted()
        #expect(files.count >= 3)
        var real = 0
        for f in files {
            let b = try BoardLoader.load(path: dir + "/" + f)
            #expect(!b.description.isEmpty, "\(f)")
            if b.gpioBackend == .libgpiod {
                real += 1
                #expect(!b.serialPorts.isEmpty, "\(f) has no RS-485 port")
                // Same line names as the simulated board, so a site config moves between them.
                for name in ["presence-a", "bus-detect-north", "stopline-north"] {
                    #expect(b.lines[name]?.direction == .input, "\(f): \(name)")
                }
            }
        }
        #expect(real >= 2)
    }

    @Test func relativeSimulatorSocketResolvesAgainstTheBoardFolder() throws {
        let b = try BoardLoader.parse("name: s\ngpio: {backend: simulated, simulator_socket: run/sim.sock}\n", file: "/opt/boards/s.yaml")
        #expect(b.simulatorSocket == "/opt/boards/run/sim.sock")
        #expect(b.lines.isEmpty)
    }

    @Test func boardWithoutGPIOHasNoLines() throws {
        let b = try BoardLoader.parse("name: ports-only\nserial: {rs485-1: /dev/ttyS1}\n", file: "p.yaml")
        #expect(b.gpioBackend == .libgpiod && b.lines.isEmpty && b.serialPorts == ["rs485-1": "/dev/ttyS1"])
    }

    @Test(arguments: brokenBoards)
    func brokenBoardGivesFileLineKey(_ c: BrokenBoard) throws {
        let parts = BoardFixture.text.components(separatedBy: c.old)
        try #require(parts.count == 2, "fixture must contain \(c.old) exactly once")
        let text = parts.joined(separator: c.new)
        let line = try #require(ConfigFixture.line(of: c.lineOf, in: text))
        let error = try #require(throws: ConfigError.self) { try BoardLoader.parse(text, file: "/b/board.yaml") }
        #expect(error.file == "/b/board.yaml")
        #expect(error.key == c.key)
        #expect(error.line == line)
        #expect(error.message.contains(c.message), "message was: \(error.message)")
    }
}
