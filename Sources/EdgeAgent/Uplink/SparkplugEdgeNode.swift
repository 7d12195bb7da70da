#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import Protocols

/// The Sparkplug B 3.0 dialect of the uplink (`uplink.dialect: sparkplug`, docs/SPARKPLUG.md):
/// the gateway is one edge node (`spBv1.0/<group>/.../<gateway id>`), each field device of
/// the config one Sparkplug device.
///
/// The outbox is unchanged: it keeps the contract's JSON messages with their seq. This type
/// maps them onto Sparkplug when they are published (`map`), so a backlog stored before the
/// connection is sent after the births, as DDATA/NDATA with `is_historical`. It keeps the
/// session state: bdSeq (persisted in the state folder, one per MQTT connect, carried in the
/// will), the payload seq (0-255, 0 on NBIRTH), the metric aliases, which devices are born,
/// the last value of every metric (for births), and the primary host's STATE.
///
/// Not thread-safe: the uplink calls it with its lock held and publishes what it returns in
/// that order before it lets go of the lock (seq numbers are consecutive on the wire).
final class SparkplugEdgeNode {
    static let namespace = "spBv1.0"
    let group: String
    let node: String
    let primaryHost: String?
    private let devices: Set<String>
    private let version: String
    /// The agent run's boot id (NBIRTH `Node Info/Boot ID`), set by the uplink.
    var bootID = ""
    private let bdSeqPath: String
    private let root: String

    /// bdSeq of the current (or next) MQTT CONNECT; its will carries the same.
    private(set) var bdSeq: UInt64
    private var seq: UInt64 = 0
    /// NBIRTH sent on the current connection (data may flow).
    private(set) var born = false
    /// The primary host's last STATE (true when no primary host is configured).
    private(set) var hostOnline: Bool
    /// Outbox seqs up to this one were stored before the current NBIRTH: sent as historical.
    private(set) var historicalUpTo: UInt64 = 0
    private var aliases: [String: UInt64] = [:]          // "device\u{0}metric" -> alias ("" = node)
    private var nextAlias: UInt64 = 1
    private var datatypes: [String: SparkplugPayload.DataType] = [:]
    private var lastValues: [String: [String: SparkplugPayload.Value]] = [:]   // device -> metric -> value
    private var deviceMetrics: [String: [String]] = [:]  // device -> metric names in birth order
    private var bornDevices: Set<String> = []
    private var deadDevices: Set<String> = []

    /// Engineering units of the contract's telemetry names (the metric's `engUnit` property).
    static let units: [String: String] = [
        "level": "%", "setpoint": "%", "power_w": "W", "energy_wh": "Wh", "temperature_c": "°C",
    ]
    /// Metrics every device has besides its telemetry values.
    static let deviceFixedMetrics: [(String, SparkplugPayload.DataType)] = [("Event", .string), ("Alarm", .string), ("Command", .bytes)]

    init(config: AgentConfig, version: String, root: String) {
        group = config.uplink.sparkplug.groupID
        node = config.gateway.id
        primaryHost = config.uplink.sparkplug.primaryHost
        devices = Set(config.devices.keys)
        self.version = version
        self.root = root
        hostOnline = config.uplink.sparkplug.primaryHost == nil
        bdSeqPath = config.gateway.stateDirectory + "/sparkplug-bdseq"
        let stored = (try? String(contentsOfFile: bdSeqPath, encoding: .utf8)).flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { UInt64($0) } }
        bdSeq = (stored ?? 0) % 256
        persistNextBdSeq()
    }

    /// Writes the bdSeq the next CONNECT (or the next run) uses: a restart never repeats one.
    private func persistNextBdSeq() {
        let tmp = bdSeqPath + ".tmp"
        if (try? "\((bdSeq + 1) % 256)\n".write(toFile: tmp, atomically: false, encoding: .utf8)) != nil {
            _ = rename(tmp, bdSeqPath)
        }
    }

    // MARK: Topics

    func topic(_ type: String, device: String? = nil) -> String {
        "\(Self.namespace)/\(group)/\(type)/\(node)" + (device.map { "/\($0)" } ?? "")
    }

    /// Filters to subscribe: NCMD, DCMD for every device, and the primary host's STATE.
    var subscriptions: [String] {
        [topic("NCMD"), topic("DCMD") + "/+"] + (primaryHost.map { ["\(Self.namespace)/STATE/\($0)"] } ?? [])
    }

    // MARK: Session

    static func nowMs() -> UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    /// The NDEATH for the will (and for a clean stop): the bdSeq metric only, no seq.
    func death() -> MQTTMessage {
        let p = SparkplugPayload(timestamp: Self.nowMs(), metrics: [.init(name: "bdSeq", timestamp: Self.nowMs(), datatype: .uint64, value: .long(bdSeq))])
        return MQTTMessage(topic: topic("NDEATH"), payload: p.encoded(), qos: 1, retain: false)
    }

    /// The link went down: no data until the next NBIRTH; the next CONNECT has a new bdSeq
    /// (returns the will to register for it).
    func linkDown() -> MQTTMessage {
        born = false
        bornDevices.removeAll()
        bdSeq = (bdSeq + 1) % 256
        persistNextBdSeq()
        return death()
    }

    private func nextSeq() -> UInt64 {
        defer { seq = (seq + 1) % 256 }
        return seq
    }

    private func alias(_ device: String, _ metric: String) -> UInt64 {
        let key = device + "\u{0}" + metric
        if let a = aliases[key] { return a }
        defer { nextAlias += 1 }
        aliases[key] = nextAlias
        return nextAlias
    }

    /// NBIRTH (seq 0, the current bdSeq) and a DBIRTH per live device. `outboxLastSeq`: what
    /// is stored up to now is backlog (historical). Used on connect, on the primary host
    /// coming online, and on a rebirth request.
    func births(outboxLastSeq: UInt64) -> [MQTTMessage] {
        seq = 0
        born = true
        historicalUpTo = outboxLastSeq
        bornDevices.removeAll()
        let now = Self.nowMs()
        var metrics: [SparkplugPayload.Metric] = [
            .init(name: "bdSeq", alias: alias("", "bdSeq"), timestamp: now, datatype: .uint64, value: .long(bdSeq)),
            .init(name: "Node Control/Rebirth", alias: alias("", "Node Control/Rebirth"), timestamp: now, datatype: .boolean, value: .bool(false)),
            .init(name: "Node Info/Version", alias: alias("", "Node Info/Version"), timestamp: now, datatype: .string, value: .string(version)),
            .init(name: "Node Info/Boot ID", alias: alias("", "Node Info/Boot ID"), timestamp: now, datatype: .string, value: .string(bootID)),
        ]
        for name in ["Node Control/Reply", "Node Event", "Node Alarm"] {
            var m = SparkplugPayload.Metric(name: name, alias: alias("", name), timestamp: now, datatype: .string)
            if let v = lastValues[""]?[name] { m.value = v } else { m.isNull = true }
            metrics.append(m)
        }
        metrics.append(.init(name: "Command", alias: alias("", "Command"), timestamp: now, datatype: .bytes, value: .bytes([])))
        var out = [MQTTMessage(topic: topic("NBIRTH"), payload: SparkplugPayload(timestamp: now, metrics: metrics, seq: nextSeq()).encoded(), qos: 0)]
        for d in devices.sorted() where !deadDevices.contains(d) {
            out.append(deviceBirth(d, now: now))
        }
        return out
    }

    private func deviceBirth(_ d: String, now: UInt64) -> MQTTMessage {
        bornDevices.insert(d)
        var metrics: [SparkplugPayload.Metric] = []
        for (name, type) in Self.deviceFixedMetrics {
            var m = SparkplugPayload.Metric(name: name, alias: alias(d, name), timestamp: now, datatype: type)
            if type == .bytes { m.value = .bytes([]) } else if let v = lastValues[d]?[name] { m.value = v } else { m.isNull = true }
            metrics.append(m)
        }
        for name in deviceMetrics[d] ?? [] {
            var m = SparkplugPayload.Metric(name: name, alias: alias(d, name), timestamp: now, datatype: datatypes[d + "\u{0}" + name] ?? .string)
            m.value = lastValues[d]?[name]
            if m.value == nil { m.isNull = true }
            if let unit = Self.units[name] { m.properties = [.init(key: "engUnit", type: .string, value: .string(unit))] }
            metrics.append(m)
        }
        return MQTTMessage(topic: topic("DBIRTH", device: d), payload: SparkplugPayload(timestamp: now, metrics: metrics, seq: nextSeq()).encoded(), qos: 0)
    }

    private func deviceDeath(_ d: String) -> MQTTMessage {
        bornDevices.remove(d)
        return MQTTMessage(topic: topic("DDEATH", device: d), payload: SparkplugPayload(timestamp: Self.nowMs(), seq: nextSeq()).encoded(), qos: 0)
    }

    // MARK: Outbound: an outbox message on the wire

    /// The Sparkplug messages for one stored message (possibly none: the edge `status`
    /// becomes NBIRTH/NDEATH, which the session makes itself). Call only while `born`.
    func map(_ m: OutboxMessage) -> [MQTTMessage] {
        guard m.topic.hasPrefix(root + "/"),
              case .object(let body)? = try? JSONDecoder().decode(ControlValue.self, from: Data(m.payload)) else { return [] }
        let parts = m.topic.dropFirst(root.count + 1).split(separator: "/").map(String.init)
        let historical = m.seq <= historicalUpTo
        var ts = Self.nowMs()
        if case .string(let t)? = body["ts"], let date = RFC3339.parse(t) { ts = UInt64(max(0, date.timeIntervalSince1970 * 1000)) }
        func json(_ o: [String: ControlValue]) -> String { String(decoding: ControlCoding.encodeJSON(.object(o)), as: UTF8.self) }
        var out: [MQTTMessage] = []
        switch parts.first {
        case "telemetry" where parts.count == 2:
            let d = parts[1]
            guard devices.contains(d), !deadDevices.contains(d), case .object(let values)? = body["values"] else { return [] }
            var changed: [(String, SparkplugPayload.DataType, SparkplugPayload.Value)] = []
            var newMetric = false
            for (name, raw) in values.sorted(by: { $0.key < $1.key }) {
                guard let (type, value) = Self.typed(raw) else { continue }
                let key = d + "\u{0}" + name
                if datatypes[key] == nil {
                    datatypes[key] = type
                    deviceMetrics[d, default: []].append(name)
                    newMetric = true
                }
                guard datatypes[key] == type else { continue }   // a metric keeps its birth datatype
                if !historical { lastValues[d, default: [:]][name] = value }
                changed.append((name, type, value))
            }
            // A metric not in the device's birth: birth the device again (with the new metric).
            if newMetric || !bornDevices.contains(d) { out.append(deviceBirth(d, now: Self.nowMs())) }
            let metrics = changed.map { SparkplugPayload.Metric(alias: alias(d, $0.0), timestamp: ts, datatype: $0.1, value: $0.2, isHistorical: historical ? true : nil) }
            if !metrics.isEmpty {
                out.append(MQTTMessage(topic: topic("DDATA", device: d), payload: SparkplugPayload(timestamp: Self.nowMs(), metrics: metrics, seq: nextSeq()).encoded(), qos: 0))
            }
        case "event" where parts.count == 2:
            let d = parts[1]
            let type = body["type"] ?? .string("")
            let eventData = body["data"] ?? .object([:])
            if devices.contains(d) {
                if type == .string("device.offline") {
                    deadDevices.insert(d)
                    if bornDevices.contains(d) { out.append(deviceDeath(d)) }
                    return out
                }
                if type == .string("device.online") {
                    deadDevices.remove(d)
                    out.append(deviceBirth(d, now: Self.nowMs()))
                    return out
                }
                if !deadDevices.contains(d) {
                    if !bornDevices.contains(d) { out.append(deviceBirth(d, now: Self.nowMs())) }
                    out.append(dataMessage(d, "Event", json(["type": type, "data": eventData]), ts: ts, historical: historical))
                    return out
                }
            }
            out.append(dataMessage("", "Node Event", json(["source": .string(d), "type": type, "data": eventData]), ts: ts, historical: historical))
        case "alarm" where parts.count == 3:
            let d = parts[1]
            var alarm: [String: ControlValue] = ["code": .string(parts[2])]
            for k in ["active", "severity", "message"] { alarm[k] = body[k] }
            if devices.contains(d), !deadDevices.contains(d) {
                if !bornDevices.contains(d) { out.append(deviceBirth(d, now: Self.nowMs())) }
                out.append(dataMessage(d, "Alarm", json(alarm), ts: ts, historical: historical))
            } else {
                alarm["source"] = .string(d)
                out.append(dataMessage("", "Node Alarm", json(alarm), ts: ts, historical: historical))
            }
        case "reply" where parts.count == 1:
            var reply = body
            reply["ts"] = nil
            out.append(dataMessage("", "Node Control/Reply", json(reply), ts: ts, historical: historical))
        default:
            return []   // status: NBIRTH/NDEATH stand for it
        }
        return out
    }

    /// One DDATA (device) or NDATA (`device` empty) with one String metric, by alias.
    private func dataMessage(_ device: String, _ metric: String, _ text: String, ts: UInt64, historical: Bool) -> MQTTMessage {
        if !historical { lastValues[device, default: [:]][metric] = .string(text) }
        let m = SparkplugPayload.Metric(alias: alias(device, metric), timestamp: ts, datatype: .string, value: .string(text), isHistorical: historical ? true : nil)
        let t = device.isEmpty ? topic("NDATA") : topic("DDATA", device: device)
        return MQTTMessage(topic: t, payload: SparkplugPayload(timestamp: Self.nowMs(), metrics: [m], seq: nextSeq()).encoded(), qos: 0)
    }

    /// A telemetry value's Sparkplug type: numbers Double, strings String, booleans Boolean.
    static func typed(_ raw: ControlValue) -> (SparkplugPayload.DataType, SparkplugPayload.Value)? {
        switch raw {
        case .number(let d): return (.double, .double(d))
        case .string(let s): return (.string, .string(s))
        case .bool(let b): return (.boolean, .bool(b))
        default: return nil
        }
    }

    // MARK: Inbound

    enum Inbound: Equatable {
        /// NCMD `Node Control/Rebirth` = true.
        case rebirth
        /// A `Command` bytes metric: the signed envelope of the contract, to run through the usual checks.
        case command([UInt8])
        /// Any other write: refused (reported as a reply and logged).
        case refused(String)
        /// The primary host's STATE changed.
        case hostState(Bool)
        case ignore
    }

    func handle(_ message: MQTTMessage) -> [Inbound] {
        if let host = primaryHost, message.topic == "\(Self.namespace)/STATE/\(host)" {
            // Sparkplug 3.0: JSON {"online": bool, "timestamp": ms}; older hosts: "ONLINE"/"OFFLINE".
            let online: Bool
            struct HostState: Decodable { var online: Bool }
            if let state = try? JSONDecoder().decode(HostState.self, from: Data(message.payload)) {
                online = state.online
            } else {
                online = String(decoding: message.payload, as: UTF8.self).uppercased() == "ONLINE"
            }
            hostOnline = online
            if !online { born = false }   // hold data until the host is back (then births again)
            return [.hostState(online)]
        }
        let isNCMD = message.topic == topic("NCMD")
        let isDCMD = message.topic.hasPrefix(topic("DCMD") + "/")
        guard isNCMD || isDCMD else { return [.ignore] }
        let device = isDCMD ? String(message.topic.dropFirst(topic("DCMD").count + 1)) : ""
        let where_ = isDCMD ? "DCMD to \(device)" : "NCMD"
        guard let payload = try? SparkplugPayload(decoding: message.payload) else {
            return [.refused("\(where_): the payload is not a Sparkplug B payload")]
        }
        // Names of the aliases this node gave out (a host may write by alias).
        var names: [UInt64: String] = [:]
        for (key, a) in aliases {
            let parts = key.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 && String(parts[0]) == device { names[a] = String(parts[1]) }
        }
        var result: [Inbound] = []
        var refused: [String] = []
        for m in payload.metrics {
            let name = m.name ?? m.alias.flatMap { names[$0] } ?? "alias \(m.alias.map(String.init) ?? "?")"
            switch (name, m.value) {
            case ("Node Control/Rebirth", .bool(true)) where isNCMD: result.append(.rebirth)
            case ("Command", .bytes(let b)): result.append(.command(b))
            default: refused.append(name)
            }
        }
        if !refused.isEmpty {
            result.append(.refused("\(where_): write to \(refused.joined(separator: ", ")) refused: only a signed Command (bytes metric) may actuate"))
        }
        return result
    }
}
