import EdgeAgent
import Foundation
import Testing

/// One broken variant of the fixture config and the error a technician must see.
struct BrokenConfig: Sendable, CustomTestStringConvertible {
    /// Replace `old` (occurring once in the fixture) by `new`.
    let old: String
    let new: String
    let key: String
    /// The expected line is the first line of the broken text containing this.
    let lineOf: String
    /// The message must contain this.
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

private let key16 = Data(repeating: 7, count: 16).base64EncodedString()

/// Every class of config error: unknown and missing keys, wrong types, bad references,
/// ranges, durations, times, dusk/dawn, ids, time zone, broker, TLS, keys, YAML syntax.
let brokenConfigs: [BrokenConfig] = [
    // Unknown keys at every level, with "did you mean".
    .init("lighting:\n", "lightning:\n", key: "lightning", line: "lightning:", "unknown key \"lightning\" (did you mean \"lighting\"?)"),
    .init("timeout: 200ms}", "timout: 200ms}", key: "buses.field.timout", line: "timout:", "unknown key \"timout\" (did you mean \"timeout\"?)"),
    .init("    hold: 60s\n", "    hodl: 60s\n", key: "lighting.rue-liberte.hodl", line: "hodl:", "(did you mean \"hold\"?)"),
    .init("{lat: 47.3220, lon: 5.0415}", "{lat: 47.3220, long: 5.0415}", key: "gateway.location.long", line: "long:", "unknown key \"long\" (did you mean \"lon\"?)"),
    .init("auto_raise_after: 10s}", "auto_raise: 10s}", key: "bollards.bollard-1.auto_raise", line: "auto_raise:", "(did you mean \"auto_raise_after\"?)"),
    .init("  telemetry_interval: 60s\n", "  colour: blue\n", key: "uplink.colour", line: "colour:", "unknown key \"colour\" (expected one of: broker, prefix"),
    .init("max_hold: 60s,", "maxhold: 60s,", key: "priority.north.maxhold", line: "maxhold", "(did you mean \"max_hold\"?)"),
    // Missing required keys: reported on the parent's line.
    .init("  id: cab-0042\n", "", key: "gateway.id", line: "gateway:", "missing required key \"id\""),
    .init("  broker: mqtts://broker.example:8883\n", "", key: "uplink.broker", line: "uplink:", "missing required key \"broker\""),
    .init("    lamps: [lamp-01]\n", "", key: "lighting.rue-liberte.lamps", line: "rue-liberte:", "missing required key \"lamps\""),
    .init("board: \(ConfigFixture.simBoard)\n", "", key: "board", line: "gateway:", "missing required key \"board\""),
    .init("{device: junction, approach: 1,", "{device: junction,", key: "priority.north.approach", line: "north:", "missing required key \"approach\""),
    .init("  timezone: Europe/Paris\n", "  timezone:\n", key: "gateway.timezone", line: "timezone:", "has no value"),
    // Wrong types.
    .init("{lat: 47.3220, lon: 5.0415}", "Dijon", key: "gateway.location", line: "location:", "expected a mapping (key: value), found \"Dijon\""),
    .init("    lamps: [lamp-01]\n", "    lamps: lamp-01\n", key: "lighting.rue-liberte.lamps", line: "lamps: lamp-01", "expected a list"),
    .init("    base: 30\n", "    base: thirty\n", key: "lighting.rue-liberte.base", line: "base: thirty", "expected a whole number, found \"thirty\""),
    .init("    base: 30\n", "    base: [30]\n", key: "lighting.rue-liberte.base", line: "base: [30]", "expected a single value, found a list"),
    .init("{lat: 47.3220,", "{lat: north,", key: "gateway.location.lat", line: "lat: north", "expected a number, found \"north\""),
    // Durations.
    .init("    hold: 60s\n", "    hold: \"10 s\"\n", key: "lighting.rue-liberte.hold", line: "hold:", "bad duration \"10 s\" (use a number with a unit: 500ms, 10s, 5m, 7d)"),
    .init("    hold: 60s\n", "    hold: 60\n", key: "lighting.rue-liberte.hold", line: "hold:", "bad duration \"60\""),
    .init("    hold: 60s\n", "    hold: 0s\n", key: "lighting.rue-liberte.hold", line: "hold:", "must be longer than 0"),
    .init("    fade_down: 10s\n", "    fade_down: -1s\n", key: "lighting.rue-liberte.fade_down", line: "fade_down:", "bad duration \"-1s\""),
    .init("  telemetry_interval: 60s\n", "  telemetry_interval: 1w\n", key: "uplink.telemetry_interval", line: "telemetry_interval:", "bad duration \"1w\""),
    .init("  telemetry_interval: 60s\n", "  telemetry_interval: 60s\n  keep_alive: 2s\n", key: "uplink.keep_alive", line: "keep_alive:", "keep_alive must be whole seconds from 5s to 65535s"),
    .init("travel_timeout: 8s", "travel_timeout: 0ms", key: "bollards.bollard-1.travel_timeout", line: "travel_timeout", "must be longer than 0"),
    // Sensor age: at most 500 ms, at least two polls of the bollard's bus; a bus too slow for a bollard.
    .init("travel_timeout: 8s", "travel_timeout: 8s, max_sensor_age: 600ms", key: "bollards.bollard-1.max_sensor_age", line: "max_sensor_age", "600ms is too long (at most 500ms)"),
    .init("travel_timeout: 8s", "travel_timeout: 8s, max_sensor_age: 60ms", key: "bollards.bollard-1.max_sensor_age", line: "max_sensor_age", "60ms is under two polls of bollard-1's bus (poll 50ms)"),
    .init("bus: field, unit: 30}", "bus: field, unit: 30, poll: 3600s}", key: "bollards.bollard-1", line: "bollard-1: {pre_warning", "bollard bollard-1 is polled every 1h (poll); its inputs must be polled at least every 250ms"),
    // Times and dusk/dawn.
    .init("from: \"23:00\"", "from: \"25:00\"", key: "lighting.rue-liberte.night.from", line: "night:", "bad time \"25:00\" (use \"HH:MM\", 00:00 to 23:59)"),
    .init("to: \"05:00\"", "to: 5h", key: "lighting.rue-liberte.night.to", line: "night:", "bad time \"5h\""),
    .init("    on: dusk\n", "    on: sunset\n", key: "lighting.rue-liberte.on", line: "on: sunset", "bad value \"sunset\" (use dusk, dawn, dusk+15m, dawn-10m"),
    .init("    on: dusk\n", "    on: dusk+15\n", key: "lighting.rue-liberte.on", line: "on: dusk+15", "bad value \"dusk+15\""),
    .init("    off: dawn\n", "    off: dawn-30s\n", key: "lighting.rue-liberte.off", line: "off: dawn-30s", "bad value \"dawn-30s\""),
    .init("    off: dawn\n", "", key: "lighting.rue-liberte", line: "rue-liberte:", "on is set but off is missing"),
    // Ids, time zone, coordinates.
    .init("id: cab-0042", "id: Cab_42", key: "gateway.id", line: "id: Cab_42", "bad gateway id \"Cab_42\" (use lowercase letters, digits and \"-\")"),
    .init("timezone: Europe/Paris", "timezone: Europe/Pariss", key: "gateway.timezone", line: "timezone:", "unknown time zone \"Europe/Pariss\""),
    .init("lat: 47.3220", "lat: 147.3", key: "gateway.location.lat", line: "location:", "147.3 is out of range (-90 to 90)"),
    .init("lon: 5.0415", "lon: -181", key: "gateway.location.lon", line: "location:", "-181 is out of range (-180 to 180)"),
    .init("  lamp-01:   {profile", "  Lamp_01:   {profile", key: "devices.Lamp_01", line: "Lamp_01", "bad device name \"Lamp_01\""),
    // Broker, TLS, keys, prefix, outbox.
    .init("broker: mqtts://broker.example:8883", "broker: http://broker.example", key: "uplink.broker", line: "broker:", "bad broker URL \"http://broker.example\""),
    .init("broker: mqtts://broker.example:8883", "broker: mqtts://broker.example:70000", key: "uplink.broker", line: "broker:", "bad port \"70000\""),
    .init("broker: mqtts://broker.example:8883", "broker: mqtt://user@broker.example/x", key: "uplink.broker", line: "broker:", "no path or user"),
    .init("  tls: {ca: ca.pem, cert: gw.pem, key: gw.key}\n", "", key: "uplink.broker", line: "broker:", "mqtts:// needs uplink.tls"),
    .init("{ca: ca.pem,", "{ca: missing.pem,", key: "uplink.tls.ca", line: "tls:", "file not found: "),
    .init(", key: gw.key}", "}", key: "uplink.tls.key", line: "tls:", "missing required key \"key\""),
    .init("centre-2026: \"\(ConfigFixture.centreKey)\"", "centre-2026: \"not base64!\"", key: "uplink.centre_keys.centre-2026", line: "centre_keys:", "not base64"),
    .init("centre-2026: \"\(ConfigFixture.centreKey)\"", "centre-2026: \"\(key16)\"", key: "uplink.centre_keys.centre-2026", line: "centre_keys:", "decodes to 16 bytes; an Ed25519 public key is 32 bytes"),
    .init("prefix: edge/v1", "prefix: edge/+/v1", key: "uplink.prefix", line: "prefix:", "bad topic prefix"),
    .init("max_messages: 1000,", "max_messages: 0,", key: "uplink.outbox.max_messages", line: "outbox:", "0 is out of range (1 to"),
    .init("  control_socket: run/control.sock\n", "  control_socket: \(String(repeating: "x", count: 120)).sock\n", key: "gateway.control_socket", line: "control_socket:", "at most 107"),
    // Board and profiles.
    .init("board: \(ConfigFixture.simBoard)", "board: Boards/nope.yaml", key: "board", line: "board:", "board file \"Boards/nope.yaml\" not found"),
    .init("profile: ref-luminaire, bus: field, unit: 1}", "profile: ref-luminare, bus: field, unit: 1}", key: "devices.lamp-01.profile", line: "lamp-01:", "profile \"ref-luminare\" not found (did you mean \"ref-luminaire\"?)"),
    .init("profile: ref-luminaire, bus: field, unit: 1}", "profile: ../secret, bus: field, unit: 1}", key: "devices.lamp-01.profile", line: "lamp-01:", "bad profile name"),
    .init("profiles_dir: \(ConfigFixture.profiles)", "profiles_dir: no-such-dir", key: "profiles_dir", line: "profiles_dir:", "folder not found"),
    // Buses.
    .init("field: {tcp: \"127.0.0.1:1502\", timeout: 200ms}", "field: {timeout: 200ms}", key: "buses.field", line: "field:", "a bus needs tcp: \"host:port\" or rtu:"),
    .init("field: {tcp: \"127.0.0.1:1502\", timeout: 200ms}", "field: {tcp: \"127.0.0.1:1502\", rtu: /dev/ttyS0}", key: "buses.field.rtu", line: "field:", "either tcp or rtu, not both"),
    .init("\"127.0.0.1:1502\"", "\"127.0.0.1:0\"", key: "buses.field.tcp", line: "field:", "bad port \"0\" (1 to 65535)"),
    .init("\"127.0.0.1:1502\"", "\"127.0.0.1:1502:3\"", key: "buses.field.tcp", line: "field:", "bad address \"127.0.0.1:1502:3\""),
    .init("field: {tcp: \"127.0.0.1:1502\", timeout: 200ms}", "field: {tcp: \"127.0.0.1:1502\", baud: 9600}", key: "buses.field.baud", line: "field:", "baud applies to rtu buses only"),
    .init("baud: 19200", "baud: 19000", key: "buses.rs485-1.baud", line: "rs485-1: {rtu", "19000 is not a standard baud rate"),
    .init("parity: E", "parity: X", key: "buses.rs485-1.parity", line: "rs485-1: {rtu", "bad parity \"X\" (use N, E or O)"),
    .init("rtu: /dev/ttyS1", "rtu: rs485-9", key: "buses.rs485-1.rtu", line: "rs485-1: {rtu", "\"rs485-9\" is neither a serial port of board sim"),
    .init("timeout: 300ms}", "timeout: 300ms, stop_bits: 3}", key: "buses.rs485-1.stop_bits", line: "rs485-1: {rtu", "3 is out of range (1 to 2)"),
    // Devices.
    .init("bus: field, unit: 1}", "bus: feild, unit: 1}", key: "devices.lamp-01.bus", line: "lamp-01:", "bus \"feild\" is not defined under buses (did you mean \"field\"?)"),
    .init("bus: field, unit: 1}", "bus: field, unit: 248}", key: "devices.lamp-01.unit", line: "lamp-01:", "248 is out of range (1 to 247)"),
    .init("bus: field, unit: 1}", "bus: field, unit: 0}", key: "devices.lamp-01.unit", line: "lamp-01:", "0 is out of range (1 to 247)"),
    .init("bus: rs485-1, unit: 2}", "bus: field, unit: 1}", key: "devices.lamp-02.unit", line: "lamp-02:", "unit 1 on bus field is already device lamp-01"),
    .init("{gpio: presence-a}", "{gpio: presence-b}", key: "devices.pir-02.gpio", line: "pir-02:", "line \"presence-b\" is not in board sim (did you mean \"presence-a\"?)"),
    .init("{gpio: presence-a}", "{gpio: presence-a, unit: 3}", key: "devices.pir-02.unit", line: "pir-02:", "a GPIO device has only gpio"),
    .init("{gpio: presence-a}", "{}", key: "devices.pir-02", line: "pir-02:", "a device needs profile, bus and unit"),
    .init("{gpio: stopline-north}", "{gpio: presence-a}", key: "devices.bus-out-n.gpio", line: "bus-out-n:", "line presence-a is already used by device pir-02"),
    .init("{profile: ref-bollard,   bus: field, unit: 30}", "{bus: field, unit: 30}", key: "devices.bollard-1.profile", line: "bollard-1: {bus", "missing required key \"profile\""),
    // Lighting references and levels.
    .init("    lamps: [lamp-01]\n", "    lamps: [lamp-1]\n", key: "lighting.rue-liberte.lamps[0]", line: "lamps: [lamp-1]", "\"lamp-1\" is not a device (did you mean \"lamp-01\"?)"),
    .init("    lamps: [lamp-01]\n", "    lamps: [pir-01]\n", key: "lighting.rue-liberte.lamps[0]", line: "lamps: [pir-01]", "pir-01 is a presence device (profile ref-presence), not a luminaire"),
    .init("    lamps: [lamp-01]\n", "    lamps: []\n", key: "lighting.rue-liberte.lamps", line: "lamps: []", "a group needs at least one lamp"),
    .init("    lamps: [lamp-02]\n", "    lamps: [lamp-02, lamp-01]\n", key: "lighting.place-darcy.lamps[1]", line: "lamps: [lamp-02, lamp-01]", "lamp-01 is already in group rue-liberte; a lamp belongs to one group"),
    .init("presence: [pir-01, pir-02]", "presence: [pir-01, pir-03]", key: "lighting.rue-liberte.presence[1]", line: "presence:", "\"pir-03\" is not a device (did you mean \"pir-01\"?)"),
    .init("presence: [pir-01, pir-02]", "presence: [pir-01, lamp-02]", key: "lighting.rue-liberte.presence[1]", line: "presence:", "lamp-02 is a luminaire device (profile ref-luminaire), not a presence sensor"),
    .init("    base: 30\n", "    base: 130\n", key: "lighting.rue-liberte.base", line: "base: 130", "130 is out of range (0 to 100)"),
    .init("    boost: 100\n", "    boost: 20\n", key: "lighting.rue-liberte.boost", line: "boost: 20", "boost 20 is below base 30"),
    .init("night: {base: 20,", "night: {base: 40,", key: "lighting.rue-liberte.night.base", line: "night:", "night base 40 is above the group's base 30"),
    .init("neighbours: [place-darcy]", "neighbours: [place-darci]", key: "lighting.rue-liberte.neighbours[0]", line: "neighbours:", "\"place-darci\" is not a lighting group (did you mean \"place-darcy\"?)"),
    .init("neighbours: [place-darcy]", "neighbours: [rue-liberte]", key: "lighting.rue-liberte.neighbours[0]", line: "neighbours:", "a group cannot be its own neighbour"),
    .init("    boost: 80\n", "    boost: 80\n    power_tolerance: 1.5\n", key: "lighting.place-darcy.power_tolerance", line: "power_tolerance:", "1.5 is out of range (0 to 1)"),
    // Bollards.
    .init("  bollard-1: {pre_warning", "  lamp-01: {pre_warning", key: "bollards.lamp-01", line: "lamp-01: {pre_warning", "lamp-01 is a luminaire device (profile ref-luminaire), not a bollard"),
    .init("  bollard-1: {pre_warning", "  bollard-2: {pre_warning", key: "bollards.bollard-2", line: "bollard-2:", "\"bollard-2\" is not a device (did you mean \"bollard-1\"?)"),
    .init("auto_raise_after: 10s}", "max_reversals: 0}", key: "bollards.bollard-1.max_reversals", line: "pre_warning:", "0 is out of range (1 to 20)"),
    // Priority.
    .init("approach: 1,", "approach: 9,", key: "priority.north.approach", line: "north:", "9 is out of range (1 to 8)"),
    .init("{device: junction,", "{device: bollard-1,", key: "priority.north.device", line: "north:", "bollard-1 is a bollard device (profile ref-bollard), not a signal-io device"),
    .init("{device: junction,", "{device: junktion,", key: "priority.north.device", line: "north:", "\"junktion\" is not a device (did you mean \"junction\"?)"),
    .init("checkin: bus-in-n,", "checkin: pir-01,", key: "priority.north.checkin", line: "north:", "pir-01 is a presence device (profile ref-presence); checkin must be a GPIO device"),
    .init("checkout: bus-out-n,", "checkout: bus-out-s,", key: "priority.north.checkout", line: "north:", "\"bus-out-s\" is not a device (did you mean \"bus-out-n\"?)"),
    .init("checkout: bus-out-n,", "checkout: bus-in-n,", key: "priority.north.checkout", line: "north:", "checkout is the same detector as checkin"),
    // Control.
    .init("realtime_priority: 50}", "realtime_priority: 120}", key: "control.realtime_priority", line: "control:", "120 is out of range (0 to 99)"),
    .init("{period: 10ms,", "{period: 2s,", key: "control.period", line: "control:", "2s is too long (at most 1s)"),
    // YAML itself.
    .init("  id: cab-0042\n", "  id: cab-0042\n  id: cab-0043\n", key: "id", line: "id: cab-0042", "duplicate key \"id\""),
    .init("    lamps: [lamp-01]\n", "    lamps: [lamp-01\n", key: "", line: "presence: [pir-01", "YAML syntax"),
]

@Suite struct ConfigErrorTableTests {
    @Test(arguments: brokenConfigs)
    func brokenConfigGivesFileLineKey(_ c: BrokenConfig) throws {
        let fx = ConfigFixture()
        let text = try #require(ConfigFixture.mutate(c.old, c.new), "fixture must contain \(c.old) exactly once")
        let line = try #require(ConfigFixture.line(of: c.lineOf, in: text), "broken text has no line with \(c.lineOf)")
        let error = try #require(throws: ConfigError.self) { try fx.load(text) }
        #expect(error.file == fx.configPath)
        #expect(error.key == c.key)
        #expect(error.line == line)
        #expect(error.message.contains(c.message), "message was: \(error.message)")
    }

    @Test func tableCoversDozensOfCases() {
        #expect(brokenConfigs.count >= 60)
    }

    /// A GPIO line that is an output cannot be a presence sensor or a bus detector.
    @Test func outputLineCannotBeADetector() throws {
        let fx = ConfigFixture()
        _ = fx.dir.write("out-board.yaml", """
        name: out
        gpio:
          backend: simulated
          lines:
            presence-a: {chip: gpiochip0, offset: 0, direction: output}
            bus-detect-north: {chip: gpiochip0, offset: 1, direction: input}
            stopline-north: {chip: gpiochip0, offset: 2, direction: input}
        """)
        let text = ConfigFixture.base.replacingOccurrences(of: "board: \(ConfigFixture.simBoard)", with: "board: out-board.yaml")
        let error = try #require(throws: ConfigError.self) { try fx.load(text) }
        #expect(error.key == "lighting.rue-liberte.presence[1]")
        #expect(error.message == "pir-02 is on line presence-a, an output of board out; a presence sensor needs an input line")
    }
}
