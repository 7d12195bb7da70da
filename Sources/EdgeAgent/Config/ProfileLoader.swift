public import ConfigToolkit
public import Drivers

/// Loads and validates device profiles (`Profiles/*.yaml`): the register map of one kind
/// of field device.
///
/// File shape: `name`, `kind` (luminaire | presence | bollard | signal-io), `description`,
/// `points: {NAME: {table: coil|discrete|holding|input, address: N, type: bool|uint16|int16|uint32|int32,
/// scale: 0.1, offset: 0, word_order: high_first|low_first, bits: {0: lamp_failure}}}`.
///
/// Checks: the points each kind's driver looks up are present and in a table the driver can
/// use (a setpoint must be writable, an end-position input must be a discrete input);
/// addresses fit 0-65535; no two points of one table overlap; bit tables hold `bool`
/// points; status bits name bits of a 16-bit register.
public enum ProfileLoader {
    /// Loads one profile file. The `name:` inside must be the file name without `.yaml`
    /// when `expectedName` is given (profiles are looked up by file name).
    public static func load(path: String, expectedName: String? = nil) throws(ConfigError) -> DeviceProfile {
        let text = try YAMLFile.read(path)
        return try parse(text, file: path, expectedName: expectedName)
    }

    /// Parses profile text; `file` names it in errors.
    public static func parse(_ text: String, file: String, expectedName: String? = nil) throws(ConfigError) -> DeviceProfile {
        let root = try YAMLFile.parse(text, file: file)
        let top = try root.map(allowed: ["name", "kind", "description", "points"], required: ["name", "kind", "points"])
        let nameNode = try top.required("name")
        let name = try nameNode.string()
        guard isProfileName(name) else {
            throw nameNode.error("bad profile name \"\(name)\" (use letters, digits, \"-\", \"_\" and \".\")")
        }
        if let expectedName, name != expectedName {
            throw nameNode.error("the profile is named \"\(name)\" but its file is \(expectedName).yaml (they must match)")
        }
        let kindNode = try top.required("kind")
        let kindText = try kindNode.string()
        guard let kind = DeviceProfile.Kind(rawValue: kindText) else {
            let all = DeviceProfile.Kind.allCases.map(\.rawValue)
            throw kindNode.error("unknown kind \"\(kindText)\"\(Suggest.suffix(kindText, among: all)) (use \(all.joined(separator: ", ")))")
        }
        let description = try top["description"]?.string() ?? ""
        let pointsNode = try top.required("points")
        var points: [String: DeviceProfile.Point] = [:]
        var placed: [(name: String, point: DeviceProfile.Point)] = []
        for (pointName, value) in try pointsNode.openMap() {
            guard isPointName(pointName) else {
                throw value.keyError("bad point name \"\(pointName)\" (use lowercase letters, digits and \"_\")")
            }
            let (point, addressNode) = try parsePoint(value, name: pointName)
            // No two points share a register (or bit) of one table.
            let lo = Int(point.address), hi = Int(point.address) + point.width - 1
            if let other = placed.first(where: { $0.point.table == point.table && Int($0.point.address) <= hi && lo <= Int($0.point.address) + $0.point.width - 1 }) {
                throw addressNode.error("\(point.table.rawValue) \(span(point)) overlaps point \(other.name) (\(point.table.rawValue) \(span(other.point)))")
            }
            placed.append((pointName, point))
            points[pointName] = point
        }
        let profile = DeviceProfile(name: name, kind: kind, description: description, points: points)
        try checkRoles(profile, pointsNode: pointsNode, entries: try pointsNode.openMap())
        return profile
    }

    // MARK: Points

    static func parsePoint(_ value: YAMLValue, name: String) throws(ConfigError) -> (DeviceProfile.Point, YAMLValue) {
        let m = try value.map(allowed: ["table", "address", "type", "scale", "offset", "word_order", "bits"], required: ["table", "address"])
        let tableNode = try m.required("table")
        let tableText = try tableNode.string()
        guard let table = DeviceProfile.RegisterTable(rawValue: tableText) else {
            let all = DeviceProfile.RegisterTable.allCases.map(\.rawValue)
            throw tableNode.error("unknown table \"\(tableText)\"\(Suggest.suffix(tableText, among: all)) (use \(all.joined(separator: ", ")))")
        }
        let addressNode = try m.required("address")
        let address = try addressNode.int(in: 0...65535)
        var type: DeviceProfile.DataType = table.isBit ? .bool : .uint16
        if let typeNode = m["type"] {
            let t = try typeNode.string()
            guard let parsed = DeviceProfile.DataType(rawValue: t) else {
                let all = DeviceProfile.DataType.allCases.map(\.rawValue)
                throw typeNode.error("unknown type \"\(t)\"\(Suggest.suffix(t, among: all)) (use \(all.joined(separator: ", ")))")
            }
            if table.isBit && parsed != .bool {
                throw typeNode.error("a \(table.rawValue) is a single bit: type must be bool")
            }
            type = parsed
        }
        if address + type.registerCount - 1 > 65535 {
            throw addressNode.error("a \(type.rawValue) at \(address) runs past register 65535")
        }
        var scale = 1.0
        if let s = m["scale"] {
            scale = try s.double(in: -1e9...1e9)
            if scale == 0 { throw s.error("scale must not be 0") }
        }
        let offset = try m["offset"]?.double(in: -1e12...1e12) ?? 0
        var wordOrder = DeviceProfile.WordOrder.highFirst
        if let w = m["word_order"] {
            let t = try w.string()
            guard let parsed = DeviceProfile.WordOrder(rawValue: t) else {
                throw w.error("unknown word order \"\(t)\" (use high_first or low_first)")
            }
            guard type.registerCount == 2 else { throw w.error("word_order applies to uint32/int32 points only (this one is \(type.rawValue))") }
            wordOrder = parsed
        }
        var bits: [Int: String] = [:]
        if let b = m["bits"] {
            guard !table.isBit, type == .uint16 || type == .int16 else {
                throw b.error("bits apply to 16-bit registers (uint16/int16) only")
            }
            var seen: Set<String> = []
            for (k, v) in try b.openMap() {
                guard let bit = ConfigScalars.integer(k), (0...15).contains(bit) else {
                    throw v.keyError("bit \"\(k)\" is not a bit number 0-15")
                }
                let bitName = try v.string()
                guard isPointName(bitName) else { throw v.error("bad bit name \"\(bitName)\" (use lowercase letters, digits and \"_\")") }
                guard seen.insert(bitName).inserted else { throw v.error("bit name \"\(bitName)\" is used twice") }
                bits[bit] = bitName
            }
        }
        let point = DeviceProfile.Point(table: table, address: UInt16(address), type: type, scale: scale, offset: offset, wordOrder: wordOrder, bits: bits)
        return (point, addressNode)
    }

    static func span(_ p: DeviceProfile.Point) -> String {
        p.width == 1 ? "\(p.address)" : "\(p.address)-\(Int(p.address) + p.width - 1)"
    }

    // MARK: Roles per kind (PointRole.specs, shared with the codec)

    static func checkRoles(_ profile: DeviceProfile, pointsNode: YAMLValue, entries: [(key: String, value: YAMLValue)]) throws(ConfigError) {
        for spec in PointRole.specs(for: profile.kind) {
            let name = spec.role.pointName
            guard let point = profile.points[name] else {
                if spec.required {
                    throw ConfigError(file: pointsNode.file, line: pointsNode.ownerLine, key: pointsNode.childPath(name),
                                      message: "a \(profile.kind.rawValue) profile needs point \"\(name)\" (\(spec.tables.map(\.rawValue).joined(separator: " or ")))")
                }
                continue
            }
            if !spec.tables.contains(point.table) {
                let node = entries.first { $0.key == name }!.value
                let tableNode = (try? node.map(allowed: ["table", "address", "type", "scale", "offset", "word_order", "bits"]))?["table"] ?? node
                throw tableNode.error("\(name) must be in the \(spec.tables.map(\.rawValue).joined(separator: " or ")) table, not \(point.table.rawValue)")
            }
        }
        if profile.kind == .signalIO {
            for n in 1...8 where profile.points["ack_\(n)"] != nil && profile.points["request_\(n)"] == nil {
                throw ConfigError(file: pointsNode.file, line: pointsNode.ownerLine, key: pointsNode.childPath("request_\(n)"),
                                  message: "ack_\(n) has no matching request_\(n) (coil)")
            }
        }
    }

    static func isProfileName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 64 && !s.hasPrefix(".") && s.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "."
        }
    }

    static func isPointName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return s.count <= 64 && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }
}
