import Drivers
import Foundation

/// Loads `agent.yaml` (CONTRACT.md section 5), the board file it names and the device
/// profiles its devices name, and validates all of it before anything starts.
///
/// The first problem found is thrown as one `ConfigError` naming the file, line and dotted
/// key. Checked: unknown keys at every level (with "did you mean"), missing required keys,
/// wrong types, every cross-reference (bus, profile, board line, lamp, presence sensor,
/// bollard, signal-io device, check-in/out detector, neighbour group), ranges (levels 0-100,
/// boost >= base, unit 1-247, lat/lon, ports, standard baud rates, parity N/E/O, approach
/// 1-8), durations, times, dusk/dawn offsets, ids, the time zone, the broker URL and TLS
/// files, centre keys (base64 of 32 bytes).
///
/// Relative paths (board, TLS files, state_dir, control_socket, profiles_dir) resolve
/// against the config file's folder. The board is looked up as given, then under
/// `/usr/share/edge-agent/`. Profiles `<name>.yaml` are looked up in `profiles_dir` (when
/// set), `<config dir>/Profiles`, `<config dir>/../Profiles`, `/usr/share/edge-agent/Profiles`.
public enum ConfigLoader {
    /// Where packaged boards and profiles are installed.
    public static let sharedDataDirectory = "/usr/share/edge-agent"
    public static let defaultPrefix = "edge/v1"
    public static let defaultStateDirectory = "/var/lib/edge-agent"
    public static let defaultControlSocket = "/run/edge-agent/control.sock"

    /// Reads and validates the config at `path` and everything it references.
    public static func load(path: String) throws(ConfigError) -> AgentConfig {
        let text = try YAMLFile.read(path)
        return try load(text: text, path: path)
    }

    /// Validates config text as if read from `path` (errors name `path`; relative paths
    /// resolve against its folder).
    public static func load(text: String, path: String) throws(ConfigError) -> AgentConfig {
        var parser = ConfigParser(file: path)
        return try parser.parse(text)
    }

    /// The folders searched for `<profile>.yaml`, first match wins.
    public static func profileSearchPath(configPath: String, profilesDir: String? = nil) -> [String] {
        let folder = BoardLoader.folder(of: configPath)
        var dirs: [String] = []
        if let profilesDir { dirs.append(ConfigSyntax.resolve(profilesDir, against: folder)) }
        dirs.append(ConfigSyntax.resolve("Profiles", against: folder))
        dirs.append(ConfigSyntax.resolve("../Profiles", against: folder))
        dirs.append(sharedDataDirectory + "/Profiles")
        var seen: Set<String> = []
        return dirs.filter { seen.insert($0).inserted }
    }

    /// Standard serial speeds accepted for RTU buses.
    public static let standardBaudRates = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400]
}

/// One pass over one config file; holds what later sections reference.
struct ConfigParser {
    let file: String
    let folder: String
    var board = Board(name: "", description: "", gpioBackend: .libgpiod, simulatorSocket: nil, lines: [:], serialPorts: [:])
    var boardPath = ""
    var buses: [String: BusConfig] = [:]
    var devices: [String: DeviceConfig] = [:]
    var deviceOrder: [String] = []
    var profiles: [String: DeviceProfile] = [:]
    var profileDirs: [String] = []

    init(file: String) {
        self.file = file
        self.folder = BoardLoader.folder(of: file)
    }

    mutating func parse(_ text: String) throws(ConfigError) -> AgentConfig {
        let root = try YAMLFile.parse(text, file: file)
        let top = try root.map(
            allowed: ["gateway", "uplink", "board", "buses", "devices", "lighting", "bollards", "priority", "control", "profiles_dir"],
            required: ["gateway", "uplink", "board"])
        let gateway = try parseGateway(try top.required("gateway"))
        let uplink = try parseUplink(try top.required("uplink"))
        try loadBoard(try top.required("board"))
        try setProfileDirs(top["profiles_dir"])
        for (name, value) in try top["buses"]?.openMap() ?? [] {
            buses[name] = try parseBus(name, value)
        }
        try parseDevices(top["devices"])
        let lighting = try parseLighting(top["lighting"])
        var bollards: [String: BollardConfig] = [:]
        for (name, value) in try top["bollards"]?.openMap() ?? [] {
            bollards[name] = try parseBollard(name, value)
        }
        let priority = try parsePriority(top["priority"])
        let control = try parseControl(top["control"])
        return AgentConfig(sourcePath: file, gateway: gateway, uplink: uplink, board: board, buses: buses, devices: devices,
                           lighting: lighting, bollards: bollards, priority: priority, profiles: profiles, control: control)
    }

    // MARK: gateway

    func parseGateway(_ node: YAMLValue) throws(ConfigError) -> AgentConfig.Gateway {
        let g = try node.map(allowed: ["id", "location", "timezone", "state_dir", "control_socket", "control_group"],
                             required: ["id", "location", "timezone"])
        let id = try g.required("id").id("gateway id")
        let loc = try g.required("location").map(allowed: ["lat", "lon"], required: ["lat", "lon"])
        let lat = try loc.required("lat").double(in: -90...90)
        let lon = try loc.required("lon").double(in: -180...180)
        let tzNode = try g.required("timezone")
        let tz = try tzNode.string()
        guard TimeZone(identifier: tz) != nil else {
            throw tzNode.error("unknown time zone \"\(tz)\" (use an IANA name such as Europe/Paris)")
        }
        let stateDir = try g["state_dir"]?.path(relativeTo: folder) ?? ConfigLoader.defaultStateDirectory
        var socket = ConfigLoader.defaultControlSocket
        if let s = g["control_socket"] {
            socket = try s.path(relativeTo: folder)
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            if socket.utf8.count > 107 {
                throw s.error("socket path is \(socket.utf8.count) bytes; a Unix socket path may have at most 107")
            }
        }
        var group: String?
        if let gr = g["control_group"] {
            let name = try gr.string()
            guard name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_-".unicodeScalars.contains($0) }),
                  name.count <= 32 else { throw gr.error("bad group name \"\(name)\"") }
            group = name
        }
        return AgentConfig.Gateway(id: id, latitude: lat, longitude: lon, timezone: tz, stateDirectory: stateDir, controlSocket: socket, controlGroup: group)
    }

    // MARK: uplink

    func parseUplink(_ node: YAMLValue) throws(ConfigError) -> AgentConfig.Uplink {
        let u = try node.map(allowed: ["broker", "prefix", "tls", "telemetry_interval", "keep_alive", "outbox", "centre_keys"], required: ["broker"])
        let brokerNode = try u.required("broker")
        let broker = try brokerNode.string()
        let scheme: String
        if broker.hasPrefix("mqtt://") { scheme = "mqtt" } else if broker.hasPrefix("mqtts://") { scheme = "mqtts" } else {
            throw brokerNode.error("bad broker URL \"\(broker)\" (use mqtt://host:1883 or mqtts://host:8883)")
        }
        var rest = String(broker.dropFirst(scheme.count + 3))
        if rest.hasSuffix("/") { rest.removeLast() }
        guard !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), let (_, portText) = Self.splitHostPort(rest) else {
            throw brokerNode.error("bad broker URL \"\(broker)\" (use \(scheme)://host:port, no path or user)")
        }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw brokerNode.error("bad port \"\(portText)\" in broker URL (1 to 65535)")
            }
        }

        var prefix = ConfigLoader.defaultPrefix
        if let p = u["prefix"] {
            prefix = try p.string()
            let levels = prefix.split(separator: "/", omittingEmptySubsequences: false)
            guard levels.allSatisfy({ !$0.isEmpty }), !prefix.contains("+"), !prefix.contains("#"), !prefix.contains(" ") else {
                throw p.error("bad topic prefix \"\(prefix)\" (levels separated by \"/\", no empty level, no + or #)")
            }
        }

        var tls: AgentConfig.Uplink.TLS?
        if let t = u["tls"] {
            let m = try t.map(allowed: ["ca", "cert", "key"], required: ["ca", "cert", "key"])
            tls = AgentConfig.Uplink.TLS(ca: try existingFile(try m.required("ca")),
                                         cert: try existingFile(try m.required("cert")),
                                         key: try existingFile(try m.required("key")))
        }
        if scheme == "mqtts" && tls == nil {
            throw brokerNode.error("mqtts:// needs uplink.tls with ca, cert and key")
        }
        let interval = try u["telemetry_interval"]?.duration(max: .seconds(86400)) ?? .seconds(60)
        var keepAlive = Duration.seconds(30)
        if let k = u["keep_alive"] {
            keepAlive = try k.duration(max: .seconds(65535))
            guard keepAlive >= .seconds(5), keepAlive.components.attoseconds == 0 else {
                throw k.error("keep_alive must be whole seconds from 5s to 65535s")
            }
        }
        var maxMessages = 1_000_000
        var maxAge = Duration.seconds(7 * 86400)
        if let o = u["outbox"] {
            let m = try o.map(allowed: ["max_messages", "max_age"])
            maxMessages = try m["max_messages"]?.int(in: 1...1_000_000_000) ?? maxMessages
            maxAge = try m["max_age"]?.duration() ?? maxAge
        }
        var keys: [String: [UInt8]] = [:]
        for (kid, value) in try u["centre_keys"]?.openMap() ?? [] {
            guard !kid.isEmpty, kid.count <= 64, kid.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) }) else {
                throw value.keyError("bad key id \"\(kid)\" (use letters, digits, \".\", \"_\" and \"-\")")
            }
            let text = try value.string()
            guard let data = Data(base64Encoded: text) else {
                throw value.error("not base64 (expected the base64 of a 32-byte Ed25519 public key)")
            }
            guard data.count == 32 else {
                throw value.error("decodes to \(data.count) bytes; an Ed25519 public key is 32 bytes")
            }
            keys[kid] = [UInt8](data)
        }
        return AgentConfig.Uplink(broker: broker, prefix: prefix, tls: tls, telemetryInterval: interval,
                                  outboxMaxMessages: maxMessages, outboxMaxAge: maxAge, centreKeys: keys, keepAlive: keepAlive)
    }

    func existingFile(_ node: YAMLValue) throws(ConfigError) -> String {
        let path = try node.path(relativeTo: folder)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw node.error("file not found: \(path)") }
        guard !isDir.boolValue else { throw node.error("\(path) is a folder, not a file") }
        return path
    }

    /// "host:port", "[v6]:port", "host" -> (host, port text); nil when malformed.
    static func splitHostPort(_ s: String) -> (String, String?)? {
        var host: Substring, port: Substring?
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return nil }
            host = s[s.index(after: s.startIndex)..<close]
            let after = s[s.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                port = after.dropFirst()
            }
        } else {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            host = parts[0]
            port = parts.count == 2 ? parts[1] : nil
        }
        guard !host.isEmpty, !host.contains(" "), port.map({ !$0.isEmpty }) ?? true else { return nil }
        return (String(host), port.map(String.init))
    }

    // MARK: board and profiles

    mutating func loadBoard(_ node: YAMLValue) throws(ConfigError) {
        let given = try node.string()
        var candidates = [ConfigSyntax.resolve(given, against: folder)]
        if !given.hasPrefix("/") {
            // Packaged boards: /usr/share/edge-agent/<given>, then /usr/share/edge-agent/Boards/<file name>
            // (so `../Boards/sim.yaml` from a source tree also finds the installed copy).
            for c in [ConfigSyntax.resolve(given, against: ConfigLoader.sharedDataDirectory),
                      ConfigLoader.sharedDataDirectory + "/Boards/" + URL(fileURLWithPath: given).lastPathComponent] where !candidates.contains(c) {
                candidates.append(c)
            }
        }
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw node.error("board file \"\(given)\" not found (looked for \(candidates.joined(separator: ", ")))")
        }
        boardPath = found
        board = try BoardLoader.load(path: found)
    }

    mutating func setProfileDirs(_ node: YAMLValue?) throws(ConfigError) {
        var custom: String?
        if let node {
            let dir = try node.path(relativeTo: folder)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw node.error("folder not found: \(dir)")
            }
            custom = dir
        }
        profileDirs = ConfigLoader.profileSearchPath(configPath: file, profilesDir: custom)
    }

    mutating func profile(_ node: YAMLValue) throws(ConfigError) -> DeviceProfile {
        let name = try node.string()
        if let p = profiles[name] { return p }
        guard ProfileLoader.isProfileName(name) else {
            throw node.error("bad profile name \"\(name)\" (use letters, digits, \"-\", \"_\" and \".\")")
        }
        for dir in profileDirs {
            let path = dir + "/" + name + ".yaml"
            if FileManager.default.fileExists(atPath: path) {
                let p = try ProfileLoader.load(path: path, expectedName: name)
                profiles[name] = p
                return p
            }
        }
        var known: [String] = []
        for dir in profileDirs {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            known += files.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }
        }
        throw node.error("profile \"\(name)\" not found\(Suggest.suffix(name, among: known.sorted())) (looked in \(profileDirs.joined(separator: ", ")))")
    }

    // MARK: buses

    func parseBus(_ name: String, _ node: YAMLValue) throws(ConfigError) -> BusConfig {
        guard ConfigSyntax.isID(name) else { throw node.keyError("bad bus name \"\(name)\" (use lowercase letters, digits and \"-\")") }
        let rtuKeys = ["baud", "parity", "data_bits", "stop_bits"]
        let m = try node.map(allowed: ["tcp", "rtu", "timeout", "poll"] + rtuKeys)
        let timeout = try m["timeout"]?.duration(max: .seconds(60)) ?? .milliseconds(500)
        let poll = try m["poll"]?.duration(max: .seconds(3600)) ?? .milliseconds(200)
        switch (m["tcp"], m["rtu"]) {
        case (nil, nil):
            throw node.keyError("a bus needs tcp: \"host:port\" or rtu: PORT (a board serial port or /dev path)")
        case (.some, .some(let r)):
            throw r.error("a bus is either tcp or rtu, not both")
        case (.some(let t), nil):
            if let extra = rtuKeys.first(where: { m.contains($0) }) {
                throw m.entries.first { $0.key == extra }!.value.keyError("\(extra) applies to rtu buses only")
            }
            let text = try t.string()
            guard let (host, portText) = Self.splitHostPort(text) else {
                throw t.error("bad address \"\(text)\" (use host:port, e.g. \"127.0.0.1:502\" or \"[::1]:502\")")
            }
            var port = 502
            if let portText {
                guard let p = Int(portText), (1...65535).contains(p) else { throw t.error("bad port \"\(portText)\" (1 to 65535)") }
                port = p
            }
            return BusConfig(name: name, transport: .tcp(host: host, port: port), timeout: timeout, pollInterval: poll)
        case (nil, .some(let r)):
            let port = try r.string()
            let device: String
            if let path = board.serialPorts[port] {
                device = path
            } else if port.hasPrefix("/") {
                device = port
            } else {
                let known = board.serialPorts.keys.sorted()
                throw r.error("\"\(port)\" is neither a serial port of board \(board.name)\(Suggest.suffix(port, among: known)) (known: \(known.isEmpty ? "none" : known.joined(separator: ", "))) nor a /dev path")
            }
            var baud = 19200
            if let b = m["baud"] {
                baud = try b.int(in: 1...4_000_000)
                guard ConfigLoader.standardBaudRates.contains(baud) else {
                    throw b.error("\(baud) is not a standard baud rate (use \(ConfigLoader.standardBaudRates.map(String.init).joined(separator: ", ")))")
                }
            }
            var parity: Character = "E"
            if let p = m["parity"] {
                let t = try p.string()
                guard ["N", "E", "O"].contains(t) else { throw p.error("bad parity \"\(t)\" (use N, E or O)") }
                parity = Character(t)
            }
            let dataBits = try m["data_bits"]?.int(in: 7...8) ?? 8
            let stopBits = try m["stop_bits"]?.int(in: 1...2) ?? 1
            return BusConfig(name: name, transport: .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits),
                             timeout: timeout, pollInterval: poll)
        }
    }

    // MARK: devices

    mutating func parseDevices(_ node: YAMLValue?) throws(ConfigError) {
        var units: [String: String] = [:]   // "bus/unit" -> device
        var lineUsers: [String: String] = [:]
        for (name, value) in try node?.openMap() ?? [] {
            guard ConfigSyntax.isID(name) else {
                throw value.keyError("bad device name \"\(name)\" (use lowercase letters, digits and \"-\")")
            }
            let m = try value.map(allowed: ["profile", "bus", "unit", "gpio"])
            if let g = m["gpio"] {
                if let extra = ["profile", "bus", "unit"].first(where: { m.contains($0) }) {
                    throw m.entries.first { $0.key == extra }!.value.keyError("a GPIO device has only gpio: LINE; remove \(extra)")
                }
                let line = try g.string()
                guard board.lines[line] != nil else {
                    let known = board.lines.keys.sorted()
                    throw g.error("line \"\(line)\" is not in board \(board.name)\(Suggest.suffix(line, among: known)) (\(boardPath); lines: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
                }
                if let other = lineUsers[line] { throw g.error("line \(line) is already used by device \(other)") }
                lineUsers[line] = name
                devices[name] = DeviceConfig(name: name, attachment: .gpio(line: line))
            } else {
                if !["profile", "bus", "unit"].contains(where: { m.contains($0) }) {
                    throw value.keyError("a device needs profile, bus and unit (Modbus) or gpio: LINE (a board line)")
                }
                let p = try profile(try m.required("profile"))
                let busNode = try m.required("bus")
                let bus = try busNode.string()
                guard buses[bus] != nil else {
                    let known = buses.keys.sorted()
                    throw busNode.error("bus \"\(bus)\" is not defined under buses\(Suggest.suffix(bus, among: known)) (defined: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
                }
                let unitNode = try m.required("unit")
                let unit = try unitNode.int(in: 1...247)
                if let other = units["\(bus)/\(unit)"] {
                    throw unitNode.error("unit \(unit) on bus \(bus) is already device \(other)")
                }
                units["\(bus)/\(unit)"] = name
                devices[name] = DeviceConfig(name: name, attachment: .modbus(profile: p.name, bus: bus, unit: UInt8(unit)))
            }
            deviceOrder.append(name)
        }
    }

    /// The device named by `node`, or an error with a "did you mean".
    func device(_ node: YAMLValue) throws(ConfigError) -> DeviceConfig {
        let name = try node.string()
        guard let d = devices[name] else {
            throw node.error("\"\(name)\" is not a device\(Suggest.suffix(name, among: deviceOrder))")
        }
        return d
    }

    func kind(_ d: DeviceConfig) -> DeviceProfile.Kind? {
        if case .modbus(let profile, _, _) = d.attachment { return profiles[profile]?.kind }
        return nil
    }

    /// "a luminaire (profile ref-luminaire)" / "a GPIO device (line presence-a)".
    func what(_ d: DeviceConfig) -> String {
        switch d.attachment {
        case .modbus(let profile, _, _): return "a \(kind(d)?.rawValue ?? "?") device (profile \(profile))"
        case .gpio(let line): return "a GPIO device (line \(line))"
        }
    }

    /// A GPIO device on an input line (presence contact, check-in/out detector).
    func gpioInput(_ node: YAMLValue, role: String) throws(ConfigError) -> DeviceConfig {
        let d = try device(node)
        guard case .gpio(let line) = d.attachment else {
            throw node.error("\(d.name) is \(what(d)); \(role) must be a GPIO device ({gpio: LINE})")
        }
        if board.lines[line]?.direction != .input {
            throw node.error("\(d.name) is on line \(line), an output of board \(board.name); \(role) needs an input line")
        }
        return d
    }

    // MARK: lighting

    func parseLighting(_ node: YAMLValue?) throws(ConfigError) -> [String: LightingGroupConfig] {
        var groups: [String: LightingGroupConfig] = [:]
        var lampOwner: [String: String] = [:]
        var neighbourNodes: [(group: String, nodes: [YAMLValue])] = []
        let entries = try node?.openMap() ?? []
        for (name, value) in entries {
            guard ConfigSyntax.isID(name) else {
                throw value.keyError("bad group name \"\(name)\" (use lowercase letters, digits and \"-\")")
            }
            let m = try value.map(
                allowed: ["lamps", "presence", "base", "boost", "hold", "fade_up", "fade_down", "night", "on", "off",
                          "neighbours", "rated_w", "power_tolerance", "warm_up"],
                required: ["lamps", "base", "boost"])
            let lampsNode = try m.required("lamps")
            var lamps: [String] = []
            for item in try lampsNode.list() {
                let d = try device(item)
                guard kind(d) == .luminaire else { throw item.error("\(d.name) is \(what(d)), not a luminaire") }
                if lamps.contains(d.name) { throw item.error("\(d.name) is listed twice") }
                if let other = lampOwner[d.name] { throw item.error("\(d.name) is already in group \(other); a lamp belongs to one group") }
                lampOwner[d.name] = name
                lamps.append(d.name)
            }
            if lamps.isEmpty { throw lampsNode.error("a group needs at least one lamp") }
            var presence: [String] = []
            for item in try m["presence"]?.list() ?? [] {
                let d = try device(item)
                if case .gpio = d.attachment {
                    _ = try gpioInput(item, role: "a presence sensor")
                } else if kind(d) != .presence {
                    throw item.error("\(d.name) is \(what(d)), not a presence sensor")
                }
                if presence.contains(d.name) { throw item.error("\(d.name) is listed twice") }
                presence.append(d.name)
            }
            let base = try m.required("base").int(in: 0...100)
            let boostNode = try m.required("boost")
            let boost = try boostNode.int(in: 0...100)
            if boost < base { throw boostNode.error("boost \(boost) is below base \(base) (presence never lowers the light)") }
            // The luminaire's fade register counts 0.1 s in 16 bits.
            let maxFade = Duration.milliseconds(6_553_500)
            let hold = try m["hold"]?.duration(max: .seconds(86400)) ?? .seconds(60)
            let fadeUp = try m["fade_up"]?.duration(allowZero: true, max: maxFade) ?? .milliseconds(500)
            let fadeDown = try m["fade_down"]?.duration(allowZero: true, max: maxFade) ?? .seconds(10)
            var night: LightingGroupConfig.Night?
            if let n = m["night"] {
                let nm = try n.map(allowed: ["base", "from", "to"], required: ["base", "from", "to"])
                let nbNode = try nm.required("base")
                let nb = try nbNode.int(in: 0...100)
                if nb > base { throw nbNode.error("night base \(nb) is above the group's base \(base) (night only dims)") }
                let from = try time(try nm.required("from"))
                let toNode = try nm.required("to")
                let to = try time(toNode)
                if from == to { throw toNode.error("night from and to are the same time") }
                night = .init(base: nb, fromHour: from.0, fromMinute: from.1, toHour: to.0, toMinute: to.1)
            }
            let on = try m["on"].map { (v) throws(ConfigError) in try boundary(v) }
            let off = try m["off"].map { (v) throws(ConfigError) in try boundary(v) }
            if on != nil && off == nil { throw value.keyError("on is set but off is missing (set both, or neither for always on)") }
            if off != nil && on == nil { throw value.keyError("off is set but on is missing (set both, or neither for always on)") }
            neighbourNodes.append((name, try m["neighbours"]?.list() ?? []))
            var ratedW: Double?
            if let r = m["rated_w"] {
                ratedW = try r.double(in: 0...100_000)
                if ratedW == 0 { throw r.error("rated_w must be above 0") }
            }
            var tolerance = 0.3
            if let t = m["power_tolerance"] {
                tolerance = try t.double(in: 0...1)
                if tolerance == 0 { throw t.error("power_tolerance must be above 0 (a fraction such as 0.3)") }
            }
            let warmUp = try m["warm_up"]?.duration(allowZero: true, max: .seconds(3600)) ?? .seconds(60)
            groups[name] = LightingGroupConfig(name: name, lamps: lamps, presence: presence, base: base, boost: boost, hold: hold,
                                               fadeUp: fadeUp, fadeDown: fadeDown, night: night, on: on, off: off, neighbours: [],
                                               powerTolerance: tolerance, warmUp: warmUp, ratedPowerW: ratedW)
        }
        let names = entries.map(\.key)
        for (group, nodes) in neighbourNodes {
            var list: [String] = []
            for item in nodes {
                let n = try item.string()
                guard groups[n] != nil else { throw item.error("\"\(n)\" is not a lighting group\(Suggest.suffix(n, among: names))") }
                if n == group { throw item.error("a group cannot be its own neighbour") }
                if list.contains(n) { throw item.error("\(n) is listed twice") }
                list.append(n)
            }
            groups[group]?.neighbours = list
        }
        return groups
    }

    func time(_ node: YAMLValue) throws(ConfigError) -> (Int, Int) {
        let s = try node.string()
        guard let t = ConfigSyntax.timeOfDay(s) else { throw node.error("bad time \"\(s)\" (use \"HH:MM\", 00:00 to 23:59)") }
        return t
    }

    func boundary(_ node: YAMLValue) throws(ConfigError) -> DayBoundary {
        let s = try node.string()
        guard let b = ConfigSyntax.dayBoundary(s) else {
            throw node.error("bad value \"\(s)\" (use dusk, dawn, dusk+15m, dawn-10m (whole minutes, at most 6h) or \"HH:MM\")")
        }
        return b
    }

    // MARK: bollards

    func parseBollard(_ name: String, _ node: YAMLValue) throws(ConfigError) -> BollardConfig {
        guard let d = devices[name] else {
            throw node.keyError("\"\(name)\" is not a device\(Suggest.suffix(name, among: deviceOrder)) (bollards are keyed by their device name)")
        }
        guard kind(d) == .bollard else { throw node.keyError("\(name) is \(what(d)), not a bollard") }
        let m = try node.map(allowed: ["pre_warning", "travel_timeout", "auto_raise_after", "max_reversals"])
        let pre = try m["pre_warning"]?.duration(max: .seconds(60)) ?? .seconds(3)
        let travel = try m["travel_timeout"]?.duration(max: .seconds(120)) ?? .seconds(8)
        let auto = try m["auto_raise_after"]?.duration(max: .seconds(86400))
        let reversals = try m["max_reversals"]?.int(in: 1...20) ?? 3
        return BollardConfig(name: name, preWarning: pre, travelTimeout: travel, autoRaiseAfter: auto, maxReversals: reversals)
    }

    // MARK: priority

    func parsePriority(_ node: YAMLValue?) throws(ConfigError) -> [String: ApproachConfig] {
        var approaches: [String: ApproachConfig] = [:]
        var taken: [String: String] = [:]  // "device/n" -> approach name
        for (name, value) in try node?.openMap() ?? [] {
            guard ConfigSyntax.isID(name) else {
                throw value.keyError("bad approach name \"\(name)\" (use lowercase letters, digits and \"-\")")
            }
            let m = try value.map(allowed: ["device", "approach", "checkin", "checkout", "max_hold", "min_interval"], required: ["device", "approach"])
            let devNode = try m.required("device")
            let d = try device(devNode)
            guard kind(d) == .signalIO else { throw devNode.error("\(d.name) is \(what(d)), not a signal-io device") }
            let nNode = try m.required("approach")
            let n = try nNode.int(in: 1...8)
            if case .modbus(let profileName, _, _) = d.attachment, profiles[profileName]?.points["request_\(n)"] == nil {
                throw nNode.error("profile \(profileName) of \(d.name) has no point request_\(n)")
            }
            if let other = taken["\(d.name)/\(n)"] { throw nNode.error("approach \(n) of \(d.name) is already \(other)") }
            taken["\(d.name)/\(n)"] = name
            let checkin = try m["checkin"].map { (v) throws(ConfigError) in try gpioInput(v, role: "checkin").name }
            let checkoutNode = m["checkout"]
            let checkout = try checkoutNode.map { (v) throws(ConfigError) in try gpioInput(v, role: "checkout").name }
            if let checkin, checkin == checkout { throw checkoutNode!.error("checkout is the same detector as checkin") }
            let maxHold = try m["max_hold"]?.duration(max: .seconds(1800)) ?? .seconds(60)
            let minInterval = try m["min_interval"]?.duration(allowZero: true, max: .seconds(3600)) ?? .seconds(20)
            approaches[name] = ApproachConfig(name: name, device: d.name, approach: n, checkin: checkin, checkout: checkout,
                                              maxHold: maxHold, minInterval: minInterval)
        }
        return approaches
    }

    // MARK: control

    func parseControl(_ node: YAMLValue?) throws(ConfigError) -> AgentConfig.ControlSettings {
        guard let node else { return AgentConfig.ControlSettings() }
        let m = try node.map(allowed: ["period", "realtime_priority"])
        let period = try m["period"]?.duration(max: .seconds(1)) ?? .milliseconds(10)
        let prio = try m["realtime_priority"]?.int(in: 0...99) ?? 50
        return AgentConfig.ControlSettings(period: period, realtimePriority: prio)
    }
}
