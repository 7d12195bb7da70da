import EdgeRuntime
public import ConfigToolkit
import Drivers
import FoundationEssentials

/// Loads `agent.yaml` (CONTRACT.md section 5), the board file it names and the device
/// profiles its devices name, and validates all of it before anything starts.
///
/// Every problem is reported (`check`), each as a `ConfigError` naming the file, line and
/// dotted key; a problem's follow-ons (a device on a bus that did not parse) are not repeated.
/// Checked: unknown keys at every level (with "did you mean"), missing required keys,
/// wrong types, every cross-reference (bus, profile, board line, lamp, presence sensor,
/// bollard, signal-io device, check-in/out detector, neighbour group), ranges (levels 0-100,
/// boost >= base, unit 1-247, lat/lon, ports, standard baud rates, parity N/E/O, approach
/// 1-8), durations, times, dusk/dawn offsets, ids, the time zone, the broker URL and TLS
/// files, centre keys (base64 of 32 bytes), and one namespace for the ids of devices,
/// lighting groups and approaches (they share the `event/<id>` and `alarm/<id>/...` topics).
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

    /// Reads and validates the config at `path` and everything it references; throws the
    /// first problem (in file and line order) of those `check` would report.
    public static func load(path: String) throws(ConfigError) -> AgentConfig {
        do { return try check(path: path) } catch { throw error.first }
    }

    /// Validates config text as if read from `path` (errors name `path`; relative paths
    /// resolve against its folder); throws the first problem.
    public static func load(text: String, path: String) throws(ConfigError) -> AgentConfig {
        do { return try check(text: text, path: path) } catch { throw error.first }
    }

    /// Reads and validates the config at `path`, reporting every problem of the file (and
    /// of its board and profiles) at once: the form for people (`edgectl config check`,
    /// `edge-agent` at start and reload).
    public static func check(path: String) throws(ConfigErrors) -> AgentConfig {
        let text: String
        do { text = try YAMLFile.read(path) } catch { throw ConfigErrors([error]) }
        return try check(text: text, path: path)
    }

    /// `check(path:)` for config text as if read from `path`.
    public static func check(text: String, path: String) throws(ConfigErrors) -> AgentConfig {
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
/// One pass over one config file; holds what later sections reference and the problems found.
///
/// Every check runs through `check`, so a problem is recorded and parsing goes on with a
/// placeholder; the placeholders never escape, since any recorded problem fails the load.
/// Names whose own entry is at fault (`brokenBuses`, `brokenDevices`) are still known, and a
/// reference to one is not reported again.
struct ConfigParser {
    let file: String
    let folder: String
    let diagnostics = ConfigDiagnostics()
    var board = Board(name: "", description: "", gpioBackend: .libgpiod, simulatorSocket: nil, lines: [:], serialPorts: [:])
    var boardPath = ""
    var boardFailed = false
    var buses: [String: BusConfig] = [:]
    var brokenBuses: Set<String> = []
    var busNodes: [String: YAMLValue] = [:]
    var deviceNodes: [String: YAMLValue] = [:]
    var devices: [String: DeviceConfig] = [:]
    var brokenDevices: Set<String> = []
    var deviceOrder: [String] = []
    var profiles: [String: DeviceProfile] = [:]
    var brokenProfiles: Set<String> = []
    var profileDirs: [String] = []

    init(file: String) {
        self.file = file
        self.folder = BoardLoader.folder(of: file)
    }

    /// The entries of an open mapping (buses, devices ...); none when absent or at fault (recorded).
    func entries(_ node: YAMLValue?) -> YAMLEntries {
        guard let node else { return [] }
        do { return try node.openMap() } catch { diagnostics.record(error); return [] }
    }

    /// Runs one check; a problem is recorded and nil returned.
    func check<T>(_ body: () throws(ConfigError) -> T) -> T? {
        diagnostics.check(body)
    }

    mutating func parse(_ text: String) throws(ConfigErrors) -> AgentConfig {
        let d = diagnostics
        guard let root = check({ () throws(ConfigError) in try YAMLFile.parse(text, file: file) }),
              let top = check({ () throws(ConfigError) in
                  try root.map(allowed: ["gateway", "uplink", "board", "buses", "devices", "lighting", "bollards", "priority", "control", "profiles_dir"],
                               required: ["gateway", "uplink", "board"], reporting: d)
              }) else {
            throw d.sorted(mainFile: file)!
        }
        let gateway = check { () throws(ConfigError) in try top.required("gateway") }.flatMap { parseGateway($0) }
        let uplink = check { () throws(ConfigError) in try top.required("uplink") }.flatMap { parseUplink($0) }
        if let b = check({ () throws(ConfigError) in try top.required("board") }) {
            if check({ () throws(ConfigError) in try loadBoard(b) }) == nil { boardFailed = true }
        } else {
            boardFailed = true
        }
        if check({ () throws(ConfigError) in try setProfileDirs(top["profiles_dir"]) }) == nil {
            profileDirs = ConfigLoader.profileSearchPath(configPath: file)
        }
        for (name, value) in entries(top["buses"]) {
            busNodes[name] = value
            if let bus = parseBus(name, value) { buses[name] = bus } else { brokenBuses.insert(name) }
        }
        parseDevices(top["devices"])
        checkBusLoads()
        let lighting = parseLighting(top["lighting"])
        var bollards: [String: BollardConfig] = [:]
        for (name, value) in entries(top["bollards"]) {
            if let b = check({ () throws(ConfigError) in try parseBollard(name, value) }) { bollards[name] = b }
        }
        let priority = parsePriority(top["priority"])
        checkNamespace(lighting: top["lighting"], priority: top["priority"])
        let control = check { () throws(ConfigError) in try parseControl(top["control"]) }
        if let errors = d.sorted(mainFile: file) { throw errors }
        guard let gateway, let uplink, let control else { preconditionFailure("a config section failed without a recorded problem") }
        return AgentConfig(sourcePath: file, gateway: gateway, uplink: uplink, board: board, buses: buses, devices: devices,
                           lighting: lighting, bollards: bollards, priority: priority, profiles: profiles, control: control)
    }

    // MARK: gateway

    func parseGateway(_ node: YAMLValue) -> AgentConfig.Gateway? {
        guard let g = check({ () throws(ConfigError) in
            try node.map(allowed: ["id", "location", "timezone", "state_dir", "control_socket", "control_group", "monitor_group"],
                         required: ["id", "location", "timezone"], reporting: diagnostics)
        }) else { return nil }
        let id = check { () throws(ConfigError) in try g.required("id").id("gateway id") } ?? ""
        var lat = 0.0, lon = 0.0
        if let loc = check({ () throws(ConfigError) in try g.required("location").map(allowed: ["lat", "lon"], required: ["lat", "lon"], reporting: diagnostics) }) {
            lat = check { () throws(ConfigError) in try loc.required("lat").double(in: -90...90) } ?? 0
            lon = check { () throws(ConfigError) in try loc.required("lon").double(in: -180...180) } ?? 0
        }
        let tz = check { () throws(ConfigError) in
            let tzNode = try g.required("timezone")
            let tz = try tzNode.string()
            if case .failure(let error) = Result(catching: { () throws(ZoneError) in try ZoneRules.load(tz) }) {
                throw tzNode.error(error.message)
            }
            return tz
        } ?? ""
        let stateDir = check { () throws(ConfigError) in try g["state_dir"]?.path(relativeTo: folder) } ?? nil
        let socket = check { () throws(ConfigError) -> String? in
            guard let s = g["control_socket"] else { return nil }
            let socket = try s.path(relativeTo: folder)
            // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
            if socket.utf8.count > 107 {
                throw s.error("socket path is \(socket.utf8.count) bytes; a Unix socket path may have at most 107")
            }
            return socket
        } ?? nil
        // Groups are resolved here, once (getgrnam_r): the control socket never looks a name up.
        func group(_ key: String) -> (String, UInt32)? {
            check { () throws(ConfigError) -> (String, UInt32)? in
                guard let gr = g[key] else { return nil }
                let name = try gr.string()
                guard name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || "_-".unicodeScalars.contains($0) }),
                      name.count <= 32 else { throw gr.error("bad group name \"\(name)\"") }
                guard let gid = SystemGroups.gid(named: name) else {
                    throw gr.error("no group \"\(name)\" on this system (create it: sudo groupadd \(name))")
                }
                return (name, gid)
            } ?? nil
        }
        let control = group("control_group")
        let monitor = group("monitor_group")
        return AgentConfig.Gateway(id: id, latitude: lat, longitude: lon, timezone: tz,
                                   stateDirectory: stateDir ?? ConfigLoader.defaultStateDirectory,
                                   controlSocket: socket ?? ConfigLoader.defaultControlSocket, controlGroup: control?.0,
                                   monitorGroup: monitor?.0, controlGroupID: control?.1, monitorGroupID: monitor?.1)
    }

    // MARK: uplink

    func parseUplink(_ node: YAMLValue) -> AgentConfig.Uplink? {
        guard let u = check({ () throws(ConfigError) in
            try node.map(allowed: ["broker", "prefix", "tls", "telemetry_interval", "keep_alive", "outbox", "centre_keys", "max_command_lifetime",
                                   "dialect", "sparkplug", "reconnect"], required: ["broker"], reporting: diagnostics)
        }) else { return nil }
        let brokerNode = check { () throws(ConfigError) in try u.required("broker") }
        // One URL, or a list of them (fail-over order), all of one scheme.
        var brokerList: [String] = []
        if let brokerNode {
            if case .sequence = brokerNode.node {
                let items = check { () throws(ConfigError) in try brokerNode.list() } ?? []
                if items.isEmpty { diagnostics.record(brokerNode.error("the broker list is empty (give at least one URL)")) }
                for item in items {
                    guard let url = check({ () throws(ConfigError) in try parseBroker(item) }) else { continue }
                    if let first = brokerList.first, first.hasPrefix("mqtts://") != url.hasPrefix("mqtts://") {
                        diagnostics.record(item.error("every broker in the list must use the scheme of the first (\(first))"))
                        continue
                    }
                    if brokerList.contains(url) {
                        diagnostics.record(item.error("broker \"\(url)\" is listed twice"))
                        continue
                    }
                    brokerList.append(url)
                }
            } else if let url = check({ () throws(ConfigError) in try parseBroker(brokerNode) }) {
                brokerList = [url]
            }
        }
        let broker = brokerList.first
        let dialect = check { () throws(ConfigError) -> AgentConfig.Uplink.Dialect in
            guard let d = u["dialect"] else { return .edge }
            let text = try d.string()
            guard let dialect = AgentConfig.Uplink.Dialect(rawValue: text) else {
                let names = AgentConfig.Uplink.Dialect.allCases.map(\.rawValue)
                throw d.error("unknown dialect \"\(text)\" (one of \(names.joined(separator: ", ")))\(Suggest.suffix(text, among: names))")
            }
            return dialect
        } ?? .edge
        var sparkplug = AgentConfig.Uplink.Sparkplug()
        if let sp = u["sparkplug"], let m = check({ () throws(ConfigError) in try sp.map(allowed: ["group_id", "primary_host"], reporting: diagnostics) }) {
            // Sparkplug ids are UTF-8 without the MQTT special characters + # /.
            func sparkplugID(_ v: YAMLValue) throws(ConfigError) -> String {
                let text = try v.string()
                guard !text.contains(where: { "+#/".contains($0) }) else { throw v.error("\"\(text)\" may not contain +, # or /") }
                return text
            }
            if let g = m["group_id"], let id = check({ () throws(ConfigError) in try sparkplugID(g) }) { sparkplug.groupID = id }
            if let h = m["primary_host"], let id = check({ () throws(ConfigError) in try sparkplugID(h) }) { sparkplug.primaryHost = id }
            if dialect != .sparkplug { diagnostics.record(sp.keyError("uplink.sparkplug is set but uplink.dialect is not sparkplug")) }
        }
        var reconnect: (initial: Duration, max: Duration, jitter: Double) = (.milliseconds(500), .seconds(30), 0.25)
        if let r = u["reconnect"], let m = check({ () throws(ConfigError) in try r.map(allowed: ["initial", "max", "jitter"], reporting: diagnostics) }) {
            if let v = check({ () throws(ConfigError) in try m["initial"]?.duration(max: .seconds(3600)) }) ?? nil { reconnect.initial = v }
            if let v = check({ () throws(ConfigError) in try m["max"]?.duration(max: .seconds(86400)) }) ?? nil { reconnect.max = v }
            if let v = check({ () throws(ConfigError) in try m["jitter"]?.double(in: 0...1) }) ?? nil { reconnect.jitter = v }
            if reconnect.max < reconnect.initial { diagnostics.record(r.error("reconnect.max is shorter than reconnect.initial")) }
        }

        let prefix = check { () throws(ConfigError) -> String in
            guard let p = u["prefix"] else { return ConfigLoader.defaultPrefix }
            let prefix = try p.string()
            let levels = prefix.split(separator: "/", omittingEmptySubsequences: false)
            guard levels.allSatisfy({ !$0.isEmpty }), !prefix.contains("+"), !prefix.contains("#"), !prefix.contains(" ") else {
                throw p.error("bad topic prefix \"\(prefix)\" (levels separated by \"/\", no empty level, no + or #)")
            }
            return prefix
        } ?? ConfigLoader.defaultPrefix

        var tls: AgentConfig.Uplink.TLS?
        if let t = u["tls"], let m = check({ () throws(ConfigError) in try t.map(allowed: ["ca", "cert", "key"], required: ["ca", "cert", "key"], reporting: diagnostics) }) {
            let ca = check { () throws(ConfigError) in try existingFile(try m.required("ca")) }
            let cert = check { () throws(ConfigError) in try existingFile(try m.required("cert")) }
            let key = check { () throws(ConfigError) in try existingFile(try m.required("key")) }
            if let ca, let cert, let key { tls = AgentConfig.Uplink.TLS(ca: ca, cert: cert, key: key) }
        }
        if let brokerNode, let broker, broker.hasPrefix("mqtts://"), u["tls"] == nil {
            diagnostics.record(brokerNode.error("mqtts:// needs uplink.tls with ca, cert and key"))
        }
        let interval = check { () throws(ConfigError) in try u["telemetry_interval"]?.duration(max: .seconds(86400)) } ?? nil
        let keepAlive = check { () throws(ConfigError) -> Duration? in
            guard let k = u["keep_alive"] else { return nil }
            let keepAlive = try k.duration(max: .seconds(65535))
            guard keepAlive >= .seconds(5), keepAlive.components.attoseconds == 0 else {
                throw k.error("keep_alive must be whole seconds from 5s to 65535s")
            }
            return keepAlive
        } ?? nil
        let lifetime = check { () throws(ConfigError) -> Duration? in
            guard let l = u["max_command_lifetime"] else { return nil }
            let d = try l.duration(max: .seconds(7 * 86400))
            guard d >= .seconds(1) else { throw l.error("max_command_lifetime must be 1s to 7d") }
            return d
        } ?? nil
        var maxMessages = 1_000_000
        var maxBytes = 256 << 20
        var maxAge = Duration.seconds(7 * 86400)
        if let o = u["outbox"], let m = check({ () throws(ConfigError) in try o.map(allowed: ["max_messages", "max_bytes", "max_age"], reporting: diagnostics) }) {
            maxMessages = (check { () throws(ConfigError) in try m["max_messages"]?.int(in: 1...1_000_000_000) } ?? nil) ?? maxMessages
            maxBytes = (check { () throws(ConfigError) in try m["max_bytes"]?.int(in: 65_536...(1 << 40)) } ?? nil) ?? maxBytes
            maxAge = (check { () throws(ConfigError) in try m["max_age"]?.duration() } ?? nil) ?? maxAge
        }
        var keys: [String: [UInt8]] = [:]
        for (kid, value) in entries(u["centre_keys"]) {
            if let key = check({ () throws(ConfigError) in try centreKey(kid, value) }) { keys[kid] = key }
        }
        var uplink = AgentConfig.Uplink(broker: broker ?? "", prefix: prefix, tls: tls, telemetryInterval: interval ?? .seconds(60),
                                        outboxMaxMessages: maxMessages, outboxMaxAge: maxAge, centreKeys: keys, keepAlive: keepAlive ?? .seconds(30),
                                        outboxMaxBytes: maxBytes, maxCommandLifetime: lifetime ?? .seconds(3600))
        uplink.fallbackBrokers = Array(brokerList.dropFirst())
        uplink.dialect = dialect
        uplink.sparkplug = sparkplug
        uplink.reconnectInitial = reconnect.initial
        uplink.reconnectMax = reconnect.max
        uplink.reconnectJitter = reconnect.jitter
        return uplink
    }

    /// `mqtt://host:port` or `mqtts://host:port`, no path or user.
    func parseBroker(_ brokerNode: YAMLValue) throws(ConfigError) -> String {
        let broker = try brokerNode.string()
        let scheme: String
        if broker.hasPrefix("mqtt://") { scheme = "mqtt" } else if broker.hasPrefix("mqtts://") { scheme = "mqtts" } else {
            throw brokerNode.error("bad broker URL \"\(broker)\" (use mqtt://host:1883 or mqtts://host:8883)")
        }
        var rest = String(broker.dropFirst(scheme.count + 3))
        if rest.hasSuffix("/") { rest.removeLast() }
        guard !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), let (_, portText) = HostPort.split(rest) else {
            throw brokerNode.error("bad broker URL \"\(broker)\" (use \(scheme)://host:port, no path or user)")
        }
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else {
                throw brokerNode.error("bad port \"\(portText)\" in broker URL (1 to 65535)")
            }
        }
        return broker
    }

    /// One `centre_keys` entry: a key id and the base64 of a 32-byte Ed25519 public key.
    func centreKey(_ kid: String, _ value: YAMLValue) throws(ConfigError) -> [UInt8] {
        guard !kid.isEmpty, kid.count <= 64, kid.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0) }) else {
            throw value.keyError("bad key id \"\(kid)\" (use letters, digits, \".\", \"_\" and \"-\")")
        }
        let text = try value.string()
        guard let data = Data(base64Encoded: text) else {
            throw value.error("not base64 (expected the base64 of a 32-byte Ed25519 public key)")
        }
        guard data.count == 32 else {
            throw value.error("decodes to \(data.count) bytes; an Ed25519 public key is 32 bytes")
        }
        return [UInt8](data)
    }

    func existingFile(_ node: YAMLValue) throws(ConfigError) -> String {
        let path = try node.path(relativeTo: folder)
        guard let kind = FilePaths.kind(path) else { throw node.error("file not found: \(path)") }
        guard kind != .directory else { throw node.error("\(path) is a folder, not a file") }
        return path
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
            guard FilePaths.kind(dir) == .directory else {
                throw node.error("folder not found: \(dir)")
            }
            custom = dir
        }
        profileDirs = ConfigLoader.profileSearchPath(configPath: file, profilesDir: custom)
    }

    mutating func profile(_ node: YAMLValue) throws(ConfigError) -> DeviceProfile {
        let name = try node.string()
        if let p = profiles[name] { return p }
        if brokenProfiles.contains(name) { throw .alreadyReported }
        guard ProfileLoader.isProfileName(name) else {
            throw node.error("bad profile name \"\(name)\" (use letters, digits, \"-\", \"_\" and \".\")")
        }
        for dir in profileDirs {
            let path = dir + "/" + name + ".yaml"
            if FileManager.default.fileExists(atPath: path) {
                do {
                    let p = try ProfileLoader.load(path: path, expectedName: name)
                    profiles[name] = p
                    return p
                } catch {
                    brokenProfiles.insert(name)
                    throw error
                }
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

    /// One bus, every key checked; nil when any is at fault (recorded).
    func parseBus(_ name: String, _ node: YAMLValue) -> BusConfig? {
        let before = diagnostics.errors.count
        if !ConfigSyntax.isID(name) { diagnostics.record(node.keyError("bad bus name \"\(name)\" (use lowercase letters, digits and \"-\")")) }
        let rtuKeys = ["baud", "parity", "data_bits", "stop_bits"]
        guard let m = check({ () throws(ConfigError) in try node.map(allowed: ["tcp", "rtu", "timeout", "poll"] + rtuKeys, reporting: diagnostics) }) else { return nil }
        let timeout = (check { () throws(ConfigError) in try m["timeout"]?.duration(max: .seconds(60)) } ?? nil) ?? .milliseconds(500)
        let poll = check { () throws(ConfigError) in try m["poll"].map { n throws(ConfigError) in try Self.pollPeriod(n) } } ?? nil
        let transport = check { () throws(ConfigError) -> BusConfig.Transport in
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
                guard let (host, portText) = HostPort.split(text) else {
                    throw t.error("bad address \"\(text)\" (use host:port, e.g. \"127.0.0.1:502\" or \"[::1]:502\")")
                }
                var port = 502
                if let portText {
                    guard let p = Int(portText), (1...65535).contains(p) else { throw t.error("bad port \"\(portText)\" (1 to 65535)") }
                    port = p
                }
                return .tcp(host: host, port: port)
            case (nil, .some(let r)):
                let port = try r.string()
                let device: String
                if let path = board.serialPorts[port] {
                    device = path
                } else if port.hasPrefix("/") {
                    device = port
                } else if boardFailed {
                    throw .alreadyReported
                } else {
                    let known = board.serialPorts.keys.sorted()
                    throw r.error("\"\(port)\" is neither a serial port of board \(board.name)\(Suggest.suffix(port, among: known)) (known: \(known.isEmpty ? "none" : known.joined(separator: ", "))) nor a /dev path")
                }
                let baud = check { () throws(ConfigError) -> Int in
                    guard let b = m["baud"] else { return 19200 }
                    let baud = try b.int(in: 1...4_000_000)
                    guard ConfigLoader.standardBaudRates.contains(baud) else {
                        throw b.error("\(baud) is not a standard baud rate (use \(ConfigLoader.standardBaudRates.map(String.init).joined(separator: ", ")))")
                    }
                    return baud
                } ?? 19200
                let parity = check { () throws(ConfigError) -> Character in
                    guard let p = m["parity"] else { return "E" }
                    let t = try p.string()
                    guard ["N", "E", "O"].contains(t) else { throw p.error("bad parity \"\(t)\" (use N, E or O)") }
                    return Character(t)
                } ?? "E"
                let dataBits = (check { () throws(ConfigError) in try m["data_bits"]?.int(in: 7...8) } ?? nil) ?? 8
                let stopBits = (check { () throws(ConfigError) in try m["stop_bits"]?.int(in: 1...2) } ?? nil) ?? 1
                return .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits)
            }
        }
        guard let transport, diagnostics.errors.count == before else { return nil }
        return BusConfig(name: name, transport: transport, timeout: timeout, pollInterval: poll)
    }

    /// A `poll:` period (bus or device): 10 ms (the control loop's period) to 1 h.
    static func pollPeriod(_ node: YAMLValue) throws(ConfigError) -> Duration {
        let d = try node.duration(max: .seconds(3600))
        if d < .milliseconds(10) { throw node.error("\(ConfigSyntax.format(d)) is too short (at least 10ms, the control loop's period)") }
        return d
    }

    /// The value of `key` in the mapping `node`, if written.
    static func child(_ node: YAMLValue?, _ key: String) -> YAMLValue? {
        (try? node?.openMap())?.first { $0.key == key }?.value
    }

    /// Longest poll period of a signal I/O unit: its acknowledgement must stay younger than the
    /// controller's sensor-age limit (at most 500 ms) over two polls. (Bollards: `parseBollard`
    /// checks their period against their own max_sensor_age.)
    static let longestSafetyPoll = Duration.milliseconds(250)

    /// Every bus's load from its line (`BusLoad`): refuses a bus whose safety devices (bollards,
    /// signal I/O, presence) cannot be polled within their periods, and a signal I/O unit polled
    /// less often than `longestSafetyPoll`, naming the bus (or the `poll:` key) and the figures.
    func checkBusLoads() {
        for (busName, bus) in buses.sorted(by: { $0.key < $1.key }) {
            guard let busNode = busNodes[busName] else { continue }
            var members: [BusLoad.Device] = []
            for name in deviceOrder {
                guard let d = devices[name], case .modbus(let profileName, let b, _) = d.attachment, b == busName,
                      let profile = profiles[profileName] else { continue }
                let period = PollPeriods.period(device: d.pollPeriod, bus: bus.pollInterval, kind: profile.kind)
                if profile.kind == .signalIO, period > Self.longestSafetyPoll {
                    let at = Self.child(d.pollPeriod != nil ? deviceNodes[name] : busNode, "poll")
                    let node = at ?? deviceNodes[name] ?? busNode
                    diagnostics.record(node.error("\(name) (\(profile.kind.rawValue)) polled every \(ConfigSyntax.format(period)): "
                                                  + "a \(profile.kind.rawValue) must be polled at least every \(ConfigSyntax.format(Self.longestSafetyPoll)) "
                                                  + "(its readings must stay younger than max_sensor_age)"))
                }
                members.append(.init(name: name, kind: profile.kind, period: period, profile: profile))
            }
            let line: BusLine
            switch bus.transport {
            case .tcp: line = BusLine(.tcp)
            case .rtu(_, let baud, let parity, let dataBits, let stopBits):
                line = BusLine(.rtu(baud: baud, bitsPerCharacter: 1 + dataBits + (parity == "N" ? 0 : 1) + stopBits))
            }
            if let problem = BusLoad(line: line, timeout: bus.timeout, devices: members).problem {
                diagnostics.record(busNode.keyError(problem))
            }
        }
    }

    // MARK: devices

    mutating func parseDevices(_ node: YAMLValue?) {
        let d = diagnostics
        var units: [String: String] = [:]   // "bus/unit" -> device
        var lineUsers: [String: String] = [:]
        for (name, value) in entries(node) {
            deviceOrder.append(name)
            deviceNodes[name] = value
            let before = d.errors.count
            if let device = parseDevice(name, value, units: &units, lineUsers: &lineUsers), d.errors.count == before {
                devices[name] = device
            } else {
                brokenDevices.insert(name)
            }
        }
    }

    /// One device entry, every key checked; nil when it cannot be built (problem recorded,
    /// or follows from one recorded before).
    mutating func parseDevice(_ name: String, _ value: YAMLValue, units: inout [String: String], lineUsers: inout [String: String]) -> DeviceConfig? {
        let d = diagnostics
        if !ConfigSyntax.isID(name) {
            d.record(value.keyError("bad device name \"\(name)\" (use lowercase letters, digits and \"-\")"))
        }
        guard let m = d.check({ () throws(ConfigError) in try value.map(allowed: ["profile", "bus", "unit", "gpio", "kind", "poll"], reporting: d) }) else { return nil }
        if let g = m["gpio"], case .mapping = g.node {
            return parseGPIOPoints(name, m, g, lineUsers: &lineUsers)
        }
        if let k = m["kind"] {
            d.record(k.keyError("kind applies to a device wired point by point (gpio: {POINT: LINE, ...}); a profile says what a Modbus device is"))
            return nil
        }
        if let g = m["gpio"] {
            if let extra = ["profile", "bus", "unit", "poll"].first(where: { m.contains($0) }) {
                d.record(m.entries.first { $0.key == extra }!.value.keyError("a GPIO device has only gpio: LINE; remove \(extra)"))
                return nil
            }
            let board = board, boardPath = boardPath, boardFailed = boardFailed
            guard let line = d.check({ () throws(ConfigError) -> String in
                let line = try g.string()
                // A board that did not load was reported; its lines cannot be judged.
                guard board.lines[line] != nil || boardFailed else {
                    let known = board.lines.keys.sorted()
                    throw g.error("line \"\(line)\" is not in board \(board.name)\(Suggest.suffix(line, among: known)) (\(boardPath); lines: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
                }
                if let other = lineUsers[line] { throw g.error("line \(line) is already used by device \(other)") }
                return line
            }) else { return nil }
            lineUsers[line] = name
            return DeviceConfig(name: name, attachment: .gpio(line: line))
        }
        if !["profile", "bus", "unit"].contains(where: { m.contains($0) }) {
            d.record(value.keyError("a device needs profile, bus and unit (Modbus) or gpio: LINE (a board line)"))
            return nil
        }
        let p = d.check { () throws(ConfigError) in try self.profile(try m.required("profile")) }
        let buses = buses, brokenBuses = brokenBuses
        let bus = d.check { () throws(ConfigError) -> String in
            let busNode = try m.required("bus")
            let bus = try busNode.string()
            // A bus whose own entry is at fault was reported there; the device is judged on the rest.
            guard buses[bus] != nil || brokenBuses.contains(bus) else {
                let known = (Array(buses.keys) + brokenBuses).sorted()
                throw busNode.error("bus \"\(bus)\" is not defined under buses\(Suggest.suffix(bus, among: known)) (defined: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
            }
            return bus
        }
        let unit = d.check { () throws(ConfigError) -> Int in
            let unitNode = try m.required("unit")
            let unit = try unitNode.int(in: 1...247)
            if let bus, let other = units["\(bus)/\(unit)"] {
                throw unitNode.error("unit \(unit) on bus \(bus) is already device \(other)")
            }
            return unit
        }
        let poll = d.check { () throws(ConfigError) in try m["poll"].map { n throws(ConfigError) in try Self.pollPeriod(n) } }
        guard let p, let bus, let unit, let poll else { return nil }
        units["\(bus)/\(unit)"] = name
        return DeviceConfig(name: name, attachment: .modbus(profile: p.name, bus: bus, unit: UInt8(unit)), pollPeriod: poll)
    }

    /// A bollard or signal I/O wired to board lines, one per point:
    /// `{kind: bollard, gpio: {motor_up: LINE, ..., loop: LINE, ...}}`. Every point is a role
    /// of the kind (did you mean), the kind's required roles are there, outputs (coil roles) sit
    /// on output lines and inputs (discrete roles) on input lines, and no line serves twice.
    func parseGPIOPoints(_ name: String, _ m: YAMLMap, _ g: YAMLValue, lineUsers: inout [String: String]) -> DeviceConfig? {
        let d = diagnostics
        let before = d.errors.count
        if let extra = ["profile", "bus", "unit", "poll"].first(where: { m.contains($0) }) {
            d.record(m.entries.first { $0.key == extra }!.value.keyError("a device wired to GPIO lines has no \(extra)"))
        }
        guard let kindNode = d.check({ () throws(ConfigError) in try m.required("kind") }),
              let kindText = d.check({ () throws(ConfigError) in try kindNode.string() }) else { return nil }
        guard let kind = DeviceProfile.Kind(rawValue: kindText), kind == .bollard || kind == .signalIO else {
            d.record(kindNode.error("kind \"\(kindText)\" cannot be wired point by point\(Suggest.suffix(kindText, among: ["bollard", "signal-io"])) (use bollard or signal-io)"))
            return nil
        }
        let specs = PointRole.specs(for: kind)
        var lines: [PointRole: String] = [:]
        var mentioned: Set<PointRole> = []
        for (point, lineNode) in entries(g) {
            if let role = PointRole(pointName: point) { mentioned.insert(role) }
            guard let spec = specs.first(where: { $0.role.pointName == point }) else {
                d.record(lineNode.keyError("\(point) is not a point of a \(kind.rawValue)\(Suggest.suffix(point, among: specs.map(\.role.pointName))) (points: \(specs.map(\.role.pointName).joined(separator: ", ")))"))
                continue
            }
            let board = board, boardFailed = boardFailed
            let users = lineUsers
            guard let line = d.check({ () throws(ConfigError) -> String in
                let line = try lineNode.string()
                guard let lc = board.lines[line] else {
                    if boardFailed { throw .alreadyReported }
                    let known = board.lines.keys.sorted()
                    throw lineNode.error("line \"\(line)\" is not in board \(board.name)\(Suggest.suffix(line, among: known)) (\(boardPath))")
                }
                if let other = users[line] { throw lineNode.error("line \(line) is already used by \(other)") }
                let output = spec.tables.contains(.coil)
                if output, lc.direction != .output { throw lineNode.error("\(point) is an output: line \(line) must be an output line of board \(board.name), not an input") }
                if !output, lc.direction != .input { throw lineNode.error("\(point) is an input: line \(line) must be an input line of board \(board.name), not an output") }
                return line
            }) else { continue }
            lineUsers[line] = "\(name).\(point)"
            lines[spec.role] = line
        }
        for spec in specs where spec.required && !mentioned.contains(spec.role) {
            d.record(g.keyError("a \(kind.rawValue) wired to GPIO needs point \(spec.role.pointName) (a board line)"))
        }
        guard d.errors.count == before else { return nil }
        return DeviceConfig(name: name, attachment: .gpioPoints(kind: kind, lines: lines))
    }

    /// The device named by `node`, or an error with a "did you mean" (a device whose own
    /// entry is at fault was reported there).
    func device(_ node: YAMLValue) throws(ConfigError) -> DeviceConfig {
        let name = try node.string()
        guard let d = devices[name] else {
            if brokenDevices.contains(name) { throw .alreadyReported }
            throw node.error("\"\(name)\" is not a device\(Suggest.suffix(name, among: deviceOrder))")
        }
        return d
    }

    func kind(_ d: DeviceConfig) -> DeviceProfile.Kind? {
        switch d.attachment {
        case .modbus(let profile, _, _): return profiles[profile]?.kind
        case .gpioPoints(let kind, _): return kind
        case .gpio: return nil
        }
    }

    /// "a luminaire (profile ref-luminaire)" / "a GPIO device (line presence-a)".
    func what(_ d: DeviceConfig) -> String {
        switch d.attachment {
        case .modbus(let profile, _, _): return "a \(kind(d)?.rawValue ?? "?") device (profile \(profile))"
        case .gpio(let line): return "a GPIO device (line \(line))"
        case .gpioPoints(let kind, _): return "a \(kind.rawValue) wired to GPIO lines"
        }
    }

    /// A GPIO device on an input line (presence contact, check-in/out detector).
    func gpioInput(_ node: YAMLValue, role: String) throws(ConfigError) -> DeviceConfig {
        let d = try device(node)
        guard case .gpio(let line) = d.attachment else {
            throw node.error("\(d.name) is \(what(d)); \(role) must be a GPIO device ({gpio: LINE})")
        }
        if !boardFailed, board.lines[line]?.direction != .input {
            throw node.error("\(d.name) is on line \(line), an output of board \(board.name); \(role) needs an input line")
        }
        return d
    }

    // MARK: lighting

    func parseLighting(_ node: YAMLValue?) -> [String: LightingGroupConfig] {
        var groups: [String: LightingGroupConfig] = [:]
        var lampOwner: [String: String] = [:]
        var neighbourNodes: [(group: String, nodes: [YAMLValue])] = []
        let entries = entries(node)
        for (name, value) in entries {
            if let (group, neighbours) = parseGroup(name, value, lampOwner: &lampOwner) {
                groups[name] = group
                neighbourNodes.append((name, neighbours))
            }
        }
        let names = entries.map(\.key)
        for (group, nodes) in neighbourNodes {
            var list: [String] = []
            for item in nodes {
                let n = check { () throws(ConfigError) -> String in
                    let n = try item.string()
                    guard names.contains(n) else { throw item.error("\"\(n)\" is not a lighting group\(Suggest.suffix(n, among: names))") }
                    if n == group { throw item.error("a group cannot be its own neighbour") }
                    if list.contains(n) { throw item.error("\(n) is listed twice") }
                    return n
                }
                if let n { list.append(n) }
            }
            groups[group]?.neighbours = list
        }
        return groups
    }

    /// One lighting group, every key checked (the neighbour names are checked once all
    /// groups are known); nil when its entry is not a mapping.
    func parseGroup(_ name: String, _ value: YAMLValue, lampOwner: inout [String: String]) -> (LightingGroupConfig, [YAMLValue])? {
        if !ConfigSyntax.isID(name) {
            diagnostics.record(value.keyError("bad group name \"\(name)\" (use lowercase letters, digits and \"-\")"))
        }
        guard let m = check({ () throws(ConfigError) in
            try value.map(
                allowed: ["lamps", "presence", "base", "boost", "hold", "fade_up", "fade_down", "night", "on", "off",
                          "neighbours", "rated_w", "power_tolerance", "warm_up"],
                required: ["lamps", "base", "boost"], reporting: diagnostics)
        }) else { return nil }
        var lamps: [String] = []
        if let lampsNode = check({ () throws(ConfigError) in try m.required("lamps") }),
           let items = check({ () throws(ConfigError) in try lampsNode.list() }) {
            for item in items {
                let lamp = check { () throws(ConfigError) -> String in
                    let d = try device(item)
                    guard kind(d) == .luminaire else { throw item.error("\(d.name) is \(what(d)), not a luminaire") }
                    if lamps.contains(d.name) { throw item.error("\(d.name) is listed twice") }
                    if let other = lampOwner[d.name] { throw item.error("\(d.name) is already in group \(other); a lamp belongs to one group") }
                    return d.name
                }
                if let lamp {
                    lampOwner[lamp] = name
                    lamps.append(lamp)
                }
            }
            if items.isEmpty { diagnostics.record(lampsNode.error("a group needs at least one lamp")) }
        }
        var presence: [String] = []
        for item in check({ () throws(ConfigError) in try m["presence"]?.list() ?? [] }) ?? [] {
            let sensor = check { () throws(ConfigError) -> String in
                let d = try device(item)
                if case .gpio = d.attachment {
                    _ = try gpioInput(item, role: "a presence sensor")
                } else if kind(d) != .presence {
                    throw item.error("\(d.name) is \(what(d)), not a presence sensor")
                }
                if presence.contains(d.name) { throw item.error("\(d.name) is listed twice") }
                return d.name
            }
            if let sensor { presence.append(sensor) }
        }
        let base = check { () throws(ConfigError) in try m.required("base").int(in: 0...100) }
        let boost = check { () throws(ConfigError) -> Int in
            let boostNode = try m.required("boost")
            let boost = try boostNode.int(in: 0...100)
            if let base, boost < base { throw boostNode.error("boost \(boost) is below base \(base) (presence never lowers the light)") }
            return boost
        }
        // The luminaire's fade register counts 0.1 s in 16 bits.
        let maxFade = Duration.milliseconds(6_553_500)
        let hold = (check { () throws(ConfigError) in try m["hold"]?.duration(max: .seconds(86400)) } ?? nil) ?? .seconds(60)
        let fadeUp = (check { () throws(ConfigError) in try m["fade_up"]?.duration(allowZero: true, max: maxFade) } ?? nil) ?? .milliseconds(500)
        let fadeDown = (check { () throws(ConfigError) in try m["fade_down"]?.duration(allowZero: true, max: maxFade) } ?? nil) ?? .seconds(10)
        var night: LightingGroupConfig.Night?
        if let n = m["night"], let nm = check({ () throws(ConfigError) in try n.map(allowed: ["base", "from", "to"], required: ["base", "from", "to"], reporting: diagnostics) }) {
            let nb = check { () throws(ConfigError) -> Int in
                let nbNode = try nm.required("base")
                let nb = try nbNode.int(in: 0...100)
                if let base, nb > base { throw nbNode.error("night base \(nb) is above the group's base \(base) (night only dims)") }
                return nb
            }
            let from = check { () throws(ConfigError) in try time(try nm.required("from")) }
            let to = check { () throws(ConfigError) -> (Int, Int) in
                let toNode = try nm.required("to")
                let to = try time(toNode)
                if let from, from == to { throw toNode.error("night from and to are the same time") }
                return to
            }
            if let nb, let from, let to {
                night = .init(base: nb, fromHour: from.0, fromMinute: from.1, toHour: to.0, toMinute: to.1)
            }
        }
        let on = check { () throws(ConfigError) in try m["on"].map { (v) throws(ConfigError) in try boundary(v) } } ?? nil
        let off = check { () throws(ConfigError) in try m["off"].map { (v) throws(ConfigError) in try boundary(v) } } ?? nil
        if m["on"] != nil && m["off"] == nil { diagnostics.record(value.keyError("on is set but off is missing (set both, or neither for always on)")) }
        if m["off"] != nil && m["on"] == nil { diagnostics.record(value.keyError("off is set but on is missing (set both, or neither for always on)")) }
        let neighbours = check { () throws(ConfigError) in try m["neighbours"]?.list() ?? [] } ?? []
        let ratedW = check { () throws(ConfigError) -> Double? in
            guard let r = m["rated_w"] else { return nil }
            let ratedW = try r.double(in: 0...100_000)
            if ratedW == 0 { throw r.error("rated_w must be above 0") }
            return ratedW
        } ?? nil
        let tolerance = check { () throws(ConfigError) -> Double in
            guard let t = m["power_tolerance"] else { return 0.3 }
            let tolerance = try t.double(in: 0...1)
            if tolerance == 0 { throw t.error("power_tolerance must be above 0 (a fraction such as 0.3)") }
            return tolerance
        } ?? 0.3
        let warmUp = (check { () throws(ConfigError) in try m["warm_up"]?.duration(allowZero: true, max: .seconds(3600)) } ?? nil) ?? .seconds(60)
        let group = LightingGroupConfig(name: name, lamps: lamps, presence: presence, base: base ?? 0, boost: boost ?? 0, hold: hold,
                                        fadeUp: fadeUp, fadeDown: fadeDown, night: night, on: on, off: off, neighbours: [],
                                        powerTolerance: tolerance, warmUp: warmUp, ratedPowerW: ratedW)
        return (group, neighbours)
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
            if brokenDevices.contains(name) { throw .alreadyReported }
            throw node.keyError("\"\(name)\" is not a device\(Suggest.suffix(name, among: deviceOrder)) (bollards are keyed by their device name)")
        }
        guard kind(d) == .bollard else { throw node.keyError("\(name) is \(what(d)), not a bollard") }
        let m = try node.map(allowed: ["pre_warning", "travel_timeout", "auto_raise_after", "max_reversals", "max_sensor_age"], reporting: diagnostics)
        let pre = (check { () throws(ConfigError) in try m["pre_warning"]?.duration(max: .seconds(60)) } ?? nil) ?? .seconds(3)
        let travel = (check { () throws(ConfigError) in try m["travel_timeout"]?.duration(max: .seconds(120)) } ?? nil) ?? .seconds(8)
        let auto = check { () throws(ConfigError) in try m["auto_raise_after"]?.duration(max: .seconds(86400)) } ?? nil
        let reversals = (check { () throws(ConfigError) in try m["max_reversals"]?.int(in: 1...20) } ?? nil) ?? 3
        // Polled inputs: the limit must cover two polls (else every movement is cut), and is
        // at most 500 ms (older than that nothing may move on them).
        var period: Duration?
        if case .modbus(_, let bus, _) = d.attachment { period = PollPeriods.period(device: d.pollPeriod, bus: buses[bus]?.pollInterval, kind: .bollard) }
        if let period, period * 2 > .milliseconds(500) {
            diagnostics.record(node.keyError("bollard \(name) is polled every \(ConfigSyntax.format(period)) (poll); its inputs must be polled at least every 250ms (max_sensor_age, at most 500ms, covers two polls)"))
        }
        let maxAge = check { () throws(ConfigError) -> Duration in
            guard let a = m["max_sensor_age"] else {
                return max(BollardController.defaultMaxSensorAge, min((period ?? .zero) * 2, .milliseconds(500)))
            }
            let age = try a.duration(max: .milliseconds(500))
            if let period, age < period * 2 {
                throw a.error("\(ConfigSyntax.format(age)) is under two polls of \(name)'s bus (poll \(ConfigSyntax.format(period))): every movement would be cut")
            }
            return age
        } ?? BollardController.defaultMaxSensorAge
        return BollardConfig(name: name, preWarning: pre, travelTimeout: travel, autoRaiseAfter: auto, maxReversals: reversals, maxSensorAge: maxAge)
    }

    // MARK: priority

    func parsePriority(_ node: YAMLValue?) -> [String: ApproachConfig] {
        var approaches: [String: ApproachConfig] = [:]
        var taken: [String: String] = [:]  // "device/n" -> approach name
        for (name, value) in entries(node) {
            if let a = parseApproach(name, value, taken: &taken) { approaches[name] = a }
        }
        return approaches
    }

    /// One approach, every key checked; nil when any is at fault (recorded).
    func parseApproach(_ name: String, _ value: YAMLValue, taken: inout [String: String]) -> ApproachConfig? {
        let before = diagnostics.errors.count
        if !ConfigSyntax.isID(name) {
            diagnostics.record(value.keyError("bad approach name \"\(name)\" (use lowercase letters, digits and \"-\")"))
        }
        guard let m = check({ () throws(ConfigError) in
            try value.map(allowed: ["device", "approach", "checkin", "checkout", "max_hold", "min_interval"], required: ["device", "approach"], reporting: diagnostics)
        }) else { return nil }
        let signalIO = check { () throws(ConfigError) -> DeviceConfig in
            let devNode = try m.required("device")
            let d = try device(devNode)
            guard kind(d) == .signalIO else { throw devNode.error("\(d.name) is \(what(d)), not a signal-io device") }
            return d
        }
        let n = check { () throws(ConfigError) -> Int in
            let nNode = try m.required("approach")
            let n = try nNode.int(in: 1...8)
            guard let d = signalIO else { return n }
            if case .modbus(let profileName, _, _) = d.attachment, profiles[profileName]?.points["request_\(n)"] == nil {
                throw nNode.error("profile \(profileName) of \(d.name) has no point request_\(n)")
            }
            if case .gpioPoints(_, let lines) = d.attachment, lines[.request(n)] == nil {
                throw nNode.error("\(d.name) has no line for request_\(n) (gpio: {request_\(n): LINE})")
            }
            if let other = taken["\(d.name)/\(n)"] { throw nNode.error("approach \(n) of \(d.name) is already \(other)") }
            return n
        }
        let checkin = check { () throws(ConfigError) in try m["checkin"].map { (v) throws(ConfigError) in try gpioInput(v, role: "checkin").name } } ?? nil
        let checkout = check { () throws(ConfigError) -> String? in
            guard let checkoutNode = m["checkout"] else { return nil }
            let checkout = try gpioInput(checkoutNode, role: "checkout").name
            if let checkin, checkin == checkout { throw checkoutNode.error("checkout is the same detector as checkin") }
            return checkout
        } ?? nil
        let maxHold = (check { () throws(ConfigError) in try m["max_hold"]?.duration(max: .seconds(1800)) } ?? nil) ?? .seconds(60)
        let minInterval = (check { () throws(ConfigError) in try m["min_interval"]?.duration(allowZero: true, max: .seconds(3600)) } ?? nil) ?? .seconds(20)
        guard let signalIO, let n, diagnostics.errors.count == before else { return nil }
        taken["\(signalIO.name)/\(n)"] = name
        return ApproachConfig(name: name, device: signalIO.name, approach: n, checkin: checkin, checkout: checkout,
                              maxHold: maxHold, minInterval: minInterval)
    }

    // MARK: one namespace

    /// Devices, lighting groups and approaches publish under the same topic level
    /// (`event/<id>`, `alarm/<id>/<code>`), and commands name them as one `target`: an id
    /// means one thing. (Bollards are keyed by their device name: the same thing.)
    func checkNamespace(lighting: YAMLValue?, priority: YAMLValue?) {
        let groups = (try? lighting?.openMap()) ?? []
        let approaches = (try? priority?.openMap()) ?? []
        let deviceNames = Set(deviceOrder)
        let groupNames = Set(groups.map(\.key))
        func clash(_ what: String, _ name: String, _ value: YAMLValue, with other: String) {
            diagnostics.record(value.keyError("\(what) \"\(name)\" has the id of \(other) \(name); devices, lighting groups and approaches share one namespace (their events and alarms are published under ROOT/event/<id> and ROOT/alarm/<id>/...)"))
        }
        for (name, value) in groups where deviceNames.contains(name) { clash("lighting group", name, value, with: "device") }
        for (name, value) in approaches {
            if deviceNames.contains(name) { clash("approach", name, value, with: "device") } else if groupNames.contains(name) { clash("approach", name, value, with: "lighting group") }
        }
    }

    // MARK: control

    func parseControl(_ node: YAMLValue?) throws(ConfigError) -> AgentConfig.ControlSettings {
        guard let node else { return AgentConfig.ControlSettings() }
        let m = try node.map(allowed: ["period", "realtime_priority"], reporting: diagnostics)
        let period = (check { () throws(ConfigError) in try m["period"]?.duration(max: .seconds(1)) } ?? nil)
        let prio = (check { () throws(ConfigError) in try m["realtime_priority"]?.int(in: 0...99) } ?? nil) ?? 50
        return AgentConfig.ControlSettings(period: period, realtimePriority: prio)
    }
}
