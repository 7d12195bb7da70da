public import ConfigToolkit
public import Protocols

/// The simulator's configuration (a YAML file): where it serves Modbus, its control socket, the
/// physics tick, the reference devices per unit id, and the simulated GPIO lines.
///
/// Invariants after `parse`: unit ids are 1...247 and unique, device names are unique and
/// `[a-z0-9-]+`, durations are positive, at most one TCP and one RTU endpoint.
public struct SimConfig: Sendable, Equatable {
    /// A TCP listening address (`127.0.0.1:1502`; port 0 = any free port).
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) { self.host = host; self.port = port }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Parses `HOST:PORT` or `[V6]:PORT` (port 0 to 65535); nil when malformed.
        public static func parse(_ text: String) -> Endpoint? {
            HostPort.parse(text, ports: 0...65535).map { Endpoint(host: $0.host, port: $0.port) }
        }
    }

    /// An RTU serial port (or one end of a pty pair).
    public struct Serial: Sendable, Equatable {
        public var device: String
        public var baud: Int
        public var parity: ModbusParity
        public var dataBits: Int
        public var stopBits: Int
        public init(device: String, baud: Int = 19200, parity: ModbusParity = .even, dataBits: Int = 8, stopBits: Int = 1) {
            self.device = device; self.baud = baud; self.parity = parity; self.dataBits = dataBits; self.stopBits = stopBits
        }
        public var transport: ModbusTransport { .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits) }
    }

    /// The reference device types of CONTRACT.md section 2.
    public enum DeviceType: String, Sendable, CaseIterable {
        case luminaire = "ref-luminaire"
        case presence = "ref-presence"
        case bollard = "ref-bollard"
        case signalIO = "ref-signal-io"
    }

    /// One simulated device at one unit id. Fields that do not apply to `type` keep their defaults.
    public struct Unit: Sendable, Equatable {
        public var unit: UInt8
        public var type: DeviceType
        public var name: String
        /// Luminaire: rated power at 100 %, watts.
        public var ratedW: Double = 60
        /// Luminaire: level at power-up, % (DALI gear's power-on level defaults to 100 %).
        public var initialLevel: Int = 100
        /// Bollard: full travel times.
        public var travelUp: Duration = .seconds(4)
        public var travelDown: Duration = .milliseconds(2500)
        /// Signal I/O: delay from request to acknowledgement.
        public var ackDelay: Duration = .milliseconds(300)
        /// Presence: ambient light at start, lux.
        public var lux: Int = 5

        public init(unit: UInt8, type: DeviceType, name: String) { self.unit = unit; self.type = type; self.name = name }
    }

    /// Direction of a simulated GPIO line, seen from the agent.
    public enum GPIODirection: String, Sendable {
        case input, output
    }

    /// A simulated GPIO line.
    public struct GPIOLine: Sendable, Equatable {
        public var name: String
        public var direction: GPIODirection
        public init(name: String, direction: GPIODirection) { self.name = name; self.direction = direction }
    }

    public var tcp: Endpoint?
    public var rtu: Serial?
    /// Path of the control socket (unix stream), or nil for none.
    public var control: String?
    /// Physics step.
    public var tick: Duration = .milliseconds(10)
    /// Devices, sorted by unit id.
    public var units: [Unit] = []
    /// GPIO lines in file order.
    public var gpio: [GPIOLine] = []

    public init(tcp: Endpoint? = nil, rtu: Serial? = nil, control: String? = nil, tick: Duration = .milliseconds(10),
                units: [Unit] = [], gpio: [GPIOLine] = []) {
        self.tcp = tcp; self.rtu = rtu; self.control = control; self.tick = tick; self.units = units; self.gpio = gpio
    }

    /// Reads and parses a config file.
    public static func load(file: String) throws(SimConfigError) -> SimConfig {
        guard case .success(let bytes) = ConfigFile.read(file), let text = ConfigFile.utf8(bytes) else {
            throw SimConfigError(file: file, line: nil, key: "", message: "cannot read the file")
        }
        return try parse(yaml: text, file: file)
    }

    /// Parses YAML text; errors name `file`, the line and the key at fault.
    public static func parse(yaml: String, file: String = "<config>") throws(SimConfigError) -> SimConfig {
        let root: YAMLNode?
        do { root = try YAMLParser.compose(yaml) } catch {
            throw SimConfigError(file: file, line: error.line, key: error.path, message: error.message)
        }
        let r = Reader(file: file)
        var config = SimConfig()
        guard let root else { return config }
        let top = try r.mapping(root, key: "(top level)")
        for (keyNode, value) in top {
            let key = keyNode.string ?? ""
            switch key {
            case "tcp":
                let text = try r.string(value, key: key)
                guard let endpoint = Endpoint.parse(text) else { throw r.error(value, key, "expected HOST:PORT, got \"\(text)\"") }
                config.tcp = endpoint
            case "rtu":
                config.rtu = try r.serial(value, key: key)
            case "control":
                config.control = try r.string(value, key: key)
            case "tick":
                config.tick = try r.duration(value, key: key)
                guard config.tick <= .seconds(1) else { throw r.error(value, key, "tick must be at most 1s") }
            case "units":
                var seenNames: Set<String> = []
                for (unitNode, body) in try r.mapping(value, key: key) {
                    let unitKey = "units.\(unitNode.string ?? "?")"
                    guard let id = Int(unitNode.string ?? ""), (1...247).contains(id) else {
                        throw r.error(unitNode, unitKey, "unit id must be 1...247")
                    }
                    let unit = try r.unit(UInt8(id), body, key: unitKey)
                    guard !config.units.contains(where: { $0.unit == unit.unit }) else { throw r.error(unitNode, unitKey, "duplicate unit id") }
                    guard seenNames.insert(unit.name).inserted else { throw r.error(body, unitKey + ".name", "duplicate device name \(unit.name)") }
                    config.units.append(unit)
                }
                config.units.sort { $0.unit < $1.unit }
            case "gpio":
                for (nameNode, dirNode) in try r.mapping(value, key: key) {
                    let name = nameNode.string ?? ""
                    let lineKey = "gpio.\(name)"
                    guard Reader.isName(name) else { throw r.error(nameNode, lineKey, "line names are [a-z0-9-]+") }
                    let text = try r.string(dirNode, key: lineKey)
                    guard let direction = GPIODirection(rawValue: text) else { throw r.error(dirNode, lineKey, "expected input or output, got \"\(text)\"") }
                    config.gpio.append(GPIOLine(name: name, direction: direction))
                }
            default:
                throw r.error(keyNode, key, "unknown key (expected tcp, rtu, control, tick, units, gpio)")
            }
        }
        return config
    }

    /// Parses a duration with a unit: `250us`, `10ms`, `4s`, `5m`, `1h`, decimals allowed (`1.5s`).
    public static func parseDuration(_ text: String) -> Duration? {
        ConfigDuration.parse(text, microseconds: true)
    }
}

/// A configuration error: file, line, key and what is wrong (`sim.yaml:7: units.30.travel_up: ...`);
/// the agent's `ConfigError` (ConfigToolkit), `key` empty when the whole file is at fault.
public typealias SimConfigError = ConfigError

/// Typed reads from YAML nodes with errors that carry file, line and key.
private struct Reader {
    let file: String

    static func isName(_ s: String) -> Bool { ConfigScalars.isID(s) }

    func error(_ node: YAMLNode, _ key: String, _ message: String) -> SimConfigError {
        SimConfigError(file: file, line: node.mark.line, key: key, message: message)
    }

    func mapping(_ node: YAMLNode, key: String) throws(SimConfigError) -> [(key: YAMLNode, value: YAMLNode)] {
        guard case let .mapping(m, _) = node else { throw error(node, key, "expected a mapping") }
        return m
    }

    func string(_ node: YAMLNode, key: String) throws(SimConfigError) -> String {
        guard case let .scalar(s) = node else { throw error(node, key, "expected a value") }
        return s.string
    }

    func int(_ node: YAMLNode, key: String, _ range: ClosedRange<Int>) throws(SimConfigError) -> Int {
        let text = try string(node, key: key)
        guard let v = Int(text), range.contains(v) else { throw error(node, key, "expected an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"") }
        return v
    }

    func double(_ node: YAMLNode, key: String) throws(SimConfigError) -> Double {
        let text = try string(node, key: key)
        guard let v = Double(text), v.isFinite, v >= 0 else { throw error(node, key, "expected a non-negative number, got \"\(text)\"") }
        return v
    }

    func duration(_ node: YAMLNode, key: String) throws(SimConfigError) -> Duration {
        let text = try string(node, key: key)
        guard let d = SimConfig.parseDuration(text), d > .zero else {
            throw error(node, key, "expected a positive duration with a unit (10ms, 4s), got \"\(text)\"")
        }
        return d
    }

    func serial(_ node: YAMLNode, key: String) throws(SimConfigError) -> SimConfig.Serial {
        if case let .scalar(s) = node { return SimConfig.Serial(device: s.string) }
        var serial = SimConfig.Serial(device: "")
        for (k, v) in try mapping(node, key: key) {
            let name = k.string ?? ""
            let sub = "\(key).\(name)"
            switch name {
            case "device": serial.device = try string(v, key: sub)
            case "baud": serial.baud = try int(v, key: sub, 50...4_000_000)
            case "parity":
                let text = try string(v, key: sub)
                guard let c = text.first, text.count == 1, let p = ModbusParity(rawValue: c) else { throw error(v, sub, "expected N, E or O") }
                serial.parity = p
            case "data_bits": serial.dataBits = try int(v, key: sub, 5...8)
            case "stop_bits": serial.stopBits = try int(v, key: sub, 1...2)
            default: throw error(k, sub, "unknown key (expected device, baud, parity, data_bits, stop_bits)")
            }
        }
        guard !serial.device.isEmpty else { throw error(node, key + ".device", "missing serial device path") }
        return serial
    }

    func unit(_ id: UInt8, _ node: YAMLNode, key: String) throws(SimConfigError) -> SimConfig.Unit {
        let m = try mapping(node, key: key)
        guard let typeNode = m.first(where: { $0.key.string == "type" })?.value else { throw error(node, key + ".type", "missing device type") }
        let typeText = try string(typeNode, key: key + ".type")
        guard let type = SimConfig.DeviceType(rawValue: typeText) else {
            throw error(typeNode, key + ".type", "unknown type \"\(typeText)\" (expected \(SimConfig.DeviceType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let nameNode = m.first(where: { $0.key.string == "name" })?.value else { throw error(node, key + ".name", "missing device name") }
        let name = try string(nameNode, key: key + ".name")
        guard Reader.isName(name) else { throw error(nameNode, key + ".name", "device names are [a-z0-9-]+") }
        var unit = SimConfig.Unit(unit: id, type: type, name: name)
        for (k, v) in m {
            let field = k.string ?? ""
            let sub = "\(key).\(field)"
            switch (field, type) {
            case ("type", _), ("name", _): break
            case ("rated_w", .luminaire): unit.ratedW = try double(v, key: sub)
            case ("level", .luminaire): unit.initialLevel = try int(v, key: sub, 0...100)
            case ("travel_up", .bollard): unit.travelUp = try duration(v, key: sub)
            case ("travel_down", .bollard): unit.travelDown = try duration(v, key: sub)
            case ("ack_delay", .signalIO):
                let text = try string(v, key: sub)
                guard let d = SimConfig.parseDuration(text) else { throw error(v, sub, "expected a duration with a unit, got \"\(text)\"") }
                unit.ackDelay = d
            case ("lux", .presence): unit.lux = try int(v, key: sub, 0...65535)
            default: throw error(k, sub, "unknown key for \(type.rawValue)")
            }
        }
        return unit
    }
}
