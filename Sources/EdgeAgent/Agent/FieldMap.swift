import Drivers

/// The config compiled for the control step: every device gets an integer id (its index in
/// name order), its kind, and the wiring between devices and machines as arrays indexed by
/// id or by the machine's ordinal, so nothing on the hot path hashes a string.
///
/// Invariants: `names[id]` is the device's config name and `ids[name] == id`; every array
/// indexed by device id has `names.count` entries; machine ordinals index `groupNames`,
/// `bollardDevice` and `approachDevice`, in name order.
struct FieldMap: Sendable {
    /// What a device is to the control step.
    enum Kind: Sendable, Equatable {
        case luminaire, presence, bollard, signalIO
        /// A GPIO input line (presence contact, check-in/out detector) or output line.
        case gpioInput, gpioOutput
    }

    let names: [String]
    let ids: [String: Int]
    let kinds: [Kind]
    /// The device's profile (Modbus devices), for the optional points it has.
    let profiles: [DeviceProfile?]
    /// Board line of a GPIO device, and the device of each line.
    let lines: [String?]
    let idOfLine: [String: Int]
    /// Lines of a device wired point by point (a GPIO bollard or signal I/O), and the device
    /// and point of each such line.
    let pointLines: [[PointRole: String]?]
    let pointOfLine: [String: (device: Int, role: PointRole)]
    /// Which roles each device has (by id, then role raw value), worked out once.
    private let roles: [[Bool]]

    // Lighting: groups by ordinal.
    let groupNames: [String]
    let groupLamps: [[Int]]
    let groupOfLamp: [Int?]
    /// Groups each presence sensor (Modbus or GPIO) feeds, by device id.
    let groupsOfSensor: [[Int]]
    let neighbours: [[Int]]

    // Bollards: by ordinal; the ordinal of a bollard device.
    let bollardDevice: [Int]
    let bollardOfDevice: [Int?]

    // Approaches: by ordinal.
    let approachNames: [String]
    let approachDevice: [Int]
    let approachNumber: [Int]
    let approachesOfDevice: [[Int]]
    let approachOfCheckin: [Int?]
    let approachOfCheckout: [Int?]
    /// The request points of each device's approaches (by device id).
    let requestRoles: [[PointRole]]

    init(config: AgentConfig) {
        let names = config.devices.keys.sorted()
        var ids: [String: Int] = [:]
        for (i, n) in names.enumerated() { ids[n] = i }
        self.names = names
        self.ids = ids
        var kinds: [Kind] = []
        var profiles: [DeviceProfile?] = []
        var lines: [String?] = []
        var idOfLine: [String: Int] = [:]
        var pointLines: [[PointRole: String]?] = []
        var pointOfLine: [String: (device: Int, role: PointRole)] = [:]
        for (id, name) in names.enumerated() {
            if case .gpioPoints(let kind, let roleLines) = config.devices[name]!.attachment {
                profiles.append(nil)
                lines.append(nil)
                pointLines.append(roleLines)
                for (role, line) in roleLines { pointOfLine[line] = (id, role) }
                kinds.append(kind == .bollard ? .bollard : .signalIO)
                continue
            }
            pointLines.append(nil)
            switch config.devices[name]!.attachment {
            case .gpioPoints: break
            case .modbus(let profile, _, _):
                let p = config.profiles[profile]
                profiles.append(p)
                lines.append(nil)
                switch p?.kind {
                case .luminaire: kinds.append(.luminaire)
                case .presence: kinds.append(.presence)
                case .bollard: kinds.append(.bollard)
                case .signalIO, nil: kinds.append(.signalIO)
                }
            case .gpio(let line):
                profiles.append(nil)
                lines.append(line)
                idOfLine[line] = id
                kinds.append(config.board.lines[line]?.direction == .output ? .gpioOutput : .gpioInput)
            }
        }
        self.kinds = kinds
        self.profiles = profiles
        self.lines = lines
        self.idOfLine = idOfLine
        self.pointLines = pointLines
        self.pointOfLine = pointOfLine
        roles = (0..<names.count).map { id in
            PointRole.allCases.map { r in profiles[id]?.points[r.pointName] != nil || pointLines[id]?[r] != nil }
        }

        let groupNames = config.lighting.keys.sorted()
        var groupOrdinal: [String: Int] = [:]
        for (i, g) in groupNames.enumerated() { groupOrdinal[g] = i }
        var groupLamps: [[Int]] = []
        var groupOfLamp = [Int?](repeating: nil, count: names.count)
        var groupsOfSensor = [[Int]](repeating: [], count: names.count)
        var neighbours: [[Int]] = []
        for (g, name) in groupNames.enumerated() {
            let cfg = config.lighting[name]!
            let lamps = cfg.lamps.compactMap { ids[$0] }
            groupLamps.append(lamps)
            for l in lamps where groupOfLamp[l] == nil { groupOfLamp[l] = g }
            for s in cfg.presence { if let id = ids[s] { groupsOfSensor[id].append(g) } }
            neighbours.append(cfg.neighbours.compactMap { groupOrdinal[$0] })
        }
        self.groupNames = groupNames
        self.groupLamps = groupLamps
        self.groupOfLamp = groupOfLamp
        self.groupsOfSensor = groupsOfSensor
        self.neighbours = neighbours

        var bollardDevice: [Int] = []
        var bollardOfDevice = [Int?](repeating: nil, count: names.count)
        for name in config.bollards.keys.sorted() {
            guard let id = ids[name] else { continue }
            bollardOfDevice[id] = bollardDevice.count
            bollardDevice.append(id)
        }
        self.bollardDevice = bollardDevice
        self.bollardOfDevice = bollardOfDevice

        let approachNames = config.priority.keys.sorted()
        var approachDevice: [Int] = []
        var approachNumber: [Int] = []
        var approachesOfDevice = [[Int]](repeating: [], count: names.count)
        var approachOfCheckin = [Int?](repeating: nil, count: names.count)
        var approachOfCheckout = [Int?](repeating: nil, count: names.count)
        for (a, name) in approachNames.enumerated() {
            let cfg = config.priority[name]!
            let device = ids[cfg.device] ?? 0
            approachDevice.append(device)
            approachNumber.append(cfg.approach)
            approachesOfDevice[device].append(a)
            if let c = cfg.checkin, let id = ids[c] { approachOfCheckin[id] = a }
            if let c = cfg.checkout, let id = ids[c] { approachOfCheckout[id] = a }
        }
        self.approachNames = approachNames
        self.approachDevice = approachDevice
        self.approachNumber = approachNumber
        self.approachesOfDevice = approachesOfDevice
        self.approachOfCheckin = approachOfCheckin
        self.approachOfCheckout = approachOfCheckout
        requestRoles = approachesOfDevice.map { $0.map { PointRole.request(approachNumber[$0]) } }
    }

    var count: Int { names.count }

    /// Whether the device's profile has the point (optional points are written only where
    /// they exist). GPIO devices have none.
    func has(_ id: Int, _ role: PointRole) -> Bool { roles[id][role.rawValue] }

    /// Devices whose polls must be acted on at once (bollards, presence sensors, signal I/O of
    /// approaches): their readings wake the loop. Others (luminaires) wait for the next tick.
    var waking: [Bool] {
        (0..<count).map { kinds[$0] == .bollard || !groupsOfSensor[$0].isEmpty || !approachesOfDevice[$0].isEmpty }
    }
}
