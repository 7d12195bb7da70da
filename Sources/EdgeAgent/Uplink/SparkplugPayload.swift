import FoundationEssentials

/// The Sparkplug B 3.0 payload (docs/sparkplug_b.proto: `org.eclipse.tahu.protobuf.Payload`)
/// and its protobuf wire encoding, for the subset the agent sends and reads: Payload
/// (timestamp, metrics, seq, uuid, body) and Metric (name, alias, timestamp, datatype,
/// is_historical, is_null, properties, scalar/string/bytes values), PropertySet and
/// PropertyValue (scalars and strings). Field numbers and wire types are those of the
/// specification's schema; decoding skips every field it does not know (DataSet, Template,
/// MetaData, extensions). Checked against an independent decoder (pysparkplug's compiled
/// Tahu schema) in SparkplugTests.
///
/// Hand-written rather than generated with swift-protobuf: swift-protobuf 1.39.0 (the one
/// version in the package mirror) needs swift-tools-version 6.1 and the package must build
/// with Swift 6.0.
struct SparkplugPayload: Equatable, Sendable {
    var timestamp: UInt64?
    var metrics: [Metric] = []
    var seq: UInt64?
    var uuid: String?
    var body: [UInt8]?

    /// Sparkplug datatype numbers (Metric.datatype, PropertyValue.type).
    enum DataType: UInt32, Sendable {
        case int8 = 1, int16, int32, int64, uint8, uint16, uint32, uint64, float, double, boolean, string, dateTime, text
        case uuid = 15, dataSet, bytes, file, template
    }

    enum Value: Equatable, Sendable {
        case int(UInt32)      // field 10/3: Int8...Int32 (two's complement in 32 bits), UInt8...UInt32
        case long(UInt64)     // field 11/4: Int64, UInt64, DateTime
        case float(Float)     // field 12/5
        case double(Double)   // field 13/6
        case bool(Bool)       // field 14/7
        case string(String)   // field 15/8: String, Text, UUID
        case bytes([UInt8])   // field 16: Bytes, File
    }

    struct Property: Equatable, Sendable {
        var key: String
        var type: DataType
        var value: Value?
    }

    struct Metric: Equatable, Sendable {
        var name: String?
        var alias: UInt64?
        var timestamp: UInt64?
        var datatype: DataType?
        var isHistorical: Bool?
        var isTransient: Bool?
        var isNull: Bool?
        var properties: [Property] = []
        var value: Value?

        init(name: String? = nil, alias: UInt64? = nil, timestamp: UInt64? = nil, datatype: DataType? = nil, value: Value? = nil,
             isHistorical: Bool? = nil, properties: [Property] = []) {
            self.name = name
            self.alias = alias
            self.timestamp = timestamp
            self.datatype = datatype
            self.value = value
            self.isHistorical = isHistorical
            self.properties = properties
        }
    }

    // MARK: Encoding

    func encoded() -> [UInt8] {
        var w = ProtoWriter()
        if let timestamp { w.varint(field: 1, timestamp) }
        for m in metrics { w.message(field: 2, m.encoded()) }
        if let seq { w.varint(field: 3, seq) }
        if let uuid { w.bytes(field: 4, Array(uuid.utf8)) }
        if let body { w.bytes(field: 5, body) }
        return w.out
    }

    // MARK: Decoding

    struct DecodeError: Error, CustomStringConvertible {
        var description: String
    }

    init(timestamp: UInt64? = nil, metrics: [Metric] = [], seq: UInt64? = nil) {
        self.timestamp = timestamp
        self.metrics = metrics
        self.seq = seq
    }

    init(decoding bytes: [UInt8]) throws(DecodeError) {
        var r = ProtoReader(bytes)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 0): timestamp = try r.varint()
            case (2, 2): metrics.append(try Metric(decoding: try r.lengthDelimited()))
            case (3, 0): seq = try r.varint()
            case (4, 2): uuid = String(decoding: try r.lengthDelimited(), as: UTF8.self)
            case (5, 2): body = try r.lengthDelimited()
            default: try r.skip(wire)
            }
        }
    }
}

extension SparkplugPayload.Metric {
    func encoded() -> [UInt8] {
        var w = ProtoWriter()
        if let name { w.bytes(field: 1, Array(name.utf8)) }
        if let alias { w.varint(field: 2, alias) }
        if let timestamp { w.varint(field: 3, timestamp) }
        if let datatype { w.varint(field: 4, UInt64(datatype.rawValue)) }
        if let isHistorical { w.varint(field: 5, isHistorical ? 1 : 0) }
        if let isTransient { w.varint(field: 6, isTransient ? 1 : 0) }
        if let isNull { w.varint(field: 7, isNull ? 1 : 0) }
        if !properties.isEmpty {
            var set = ProtoWriter()
            for p in properties { set.bytes(field: 1, Array(p.key.utf8)) }
            for p in properties {
                var v = ProtoWriter()
                v.varint(field: 1, UInt64(p.type.rawValue))
                if let value = p.value { v.value(value, base: 3) } else { v.varint(field: 2, 1) }
                set.message(field: 2, v.out)
            }
            w.message(field: 9, set.out)
        }
        if let value { w.value(value, base: 10) }
        return w.out
    }

    init(decoding bytes: [UInt8]) throws(SparkplugPayload.DecodeError) {
        var r = ProtoReader(bytes)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 2): name = String(decoding: try r.lengthDelimited(), as: UTF8.self)
            case (2, 0): alias = try r.varint()
            case (3, 0): timestamp = try r.varint()
            case (4, 0): datatype = SparkplugPayload.DataType(rawValue: UInt32(truncatingIfNeeded: try r.varint()))
            case (5, 0): isHistorical = try r.varint() != 0
            case (6, 0): isTransient = try r.varint() != 0
            case (7, 0): isNull = try r.varint() != 0
            case (9, 2): properties = try Self.properties(try r.lengthDelimited())
            case (10, 0): value = .int(UInt32(truncatingIfNeeded: try r.varint()))
            case (11, 0): value = .long(try r.varint())
            case (12, 5): value = .float(Float(bitPattern: try r.fixed32()))
            case (13, 1): value = .double(Double(bitPattern: try r.fixed64()))
            case (14, 0): value = .bool(try r.varint() != 0)
            case (15, 2): value = .string(String(decoding: try r.lengthDelimited(), as: UTF8.self))
            case (16, 2): value = .bytes(try r.lengthDelimited())
            default: try r.skip(wire)
            }
        }
    }

    private static func properties(_ bytes: [UInt8]) throws(SparkplugPayload.DecodeError) -> [SparkplugPayload.Property] {
        var keys: [String] = []
        var values: [(SparkplugPayload.DataType, SparkplugPayload.Value?)] = []
        var r = ProtoReader(bytes)
        while let (field, wire) = try r.key() {
            switch (field, wire) {
            case (1, 2): keys.append(String(decoding: try r.lengthDelimited(), as: UTF8.self))
            case (2, 2):
                var v = ProtoReader(try r.lengthDelimited())
                var type = SparkplugPayload.DataType.string
                var value: SparkplugPayload.Value?
                while let (f, w) = try v.key() {
                    switch (f, w) {
                    case (1, 0): type = SparkplugPayload.DataType(rawValue: UInt32(truncatingIfNeeded: try v.varint())) ?? .string
                    case (3, 0): value = .int(UInt32(truncatingIfNeeded: try v.varint()))
                    case (4, 0): value = .long(try v.varint())
                    case (5, 5): value = .float(Float(bitPattern: try v.fixed32()))
                    case (6, 1): value = .double(Double(bitPattern: try v.fixed64()))
                    case (7, 0): value = .bool(try v.varint() != 0)
                    case (8, 2): value = .string(String(decoding: try v.lengthDelimited(), as: UTF8.self))
                    default: try v.skip(w)
                    }
                }
                values.append((type, value))
            default: try r.skip(wire)
            }
        }
        return zip(keys, values).map { SparkplugPayload.Property(key: $0, type: $1.0, value: $1.1) }
    }
}

/// Protobuf wire format writer (varint, fixed32/64, length-delimited).
struct ProtoWriter {
    var out: [UInt8] = []

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
    mutating func key(_ field: Int, _ wire: UInt64) { rawVarint(UInt64(field) << 3 | wire) }
    mutating func varint(field: Int, _ v: UInt64) { key(field, 0); rawVarint(v) }
    mutating func bytes(field: Int, _ b: [UInt8]) { key(field, 2); rawVarint(UInt64(b.count)); out += b }
    mutating func message(field: Int, _ b: [UInt8]) { bytes(field: field, b) }
    mutating func fixed32(field: Int, _ v: UInt32) { key(field, 5); for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func fixed64(field: Int, _ v: UInt64) { key(field, 1); for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }

    /// A oneof value; `base` is the field number of its int_value (Metric 10, PropertyValue 3).
    mutating func value(_ value: SparkplugPayload.Value, base: Int) {
        switch value {
        case .int(let v): varint(field: base, UInt64(v))
        case .long(let v): varint(field: base + 1, v)
        case .float(let v): fixed32(field: base + 2, v.bitPattern)
        case .double(let v): fixed64(field: base + 3, v.bitPattern)
        case .bool(let v): varint(field: base + 4, v ? 1 : 0)
        case .string(let v): bytes(field: base + 5, Array(v.utf8))
        case .bytes(let v): bytes(field: base + 6, v)
        }
    }
}

/// Protobuf wire format reader; every read is bounds-checked (bad input throws, never traps).
struct ProtoReader {
    private let bytes: [UInt8]
    private var i = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func key() throws(SparkplugPayload.DecodeError) -> (Int, UInt64)? {
        guard i < bytes.count else { return nil }
        let k = try varint()
        let field = k >> 3
        guard field > 0, field < 1 << 29 else { throw .init(description: "bad field number \(field)") }
        return (Int(field), k & 7)
    }

    mutating func varint() throws(SparkplugPayload.DecodeError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard i < bytes.count else { throw .init(description: "truncated varint") }
            let b = bytes[i]
            i += 1
            guard shift < 64 else { throw .init(description: "varint too long") }
            v |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
        }
    }

    mutating func fixed32() throws(SparkplugPayload.DecodeError) -> UInt32 {
        guard bytes.count - i >= 4 else { throw .init(description: "truncated fixed32") }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[i + k]) << (8 * UInt32(k)) }
        i += 4
        return v
    }

    mutating func fixed64() throws(SparkplugPayload.DecodeError) -> UInt64 {
        guard bytes.count - i >= 8 else { throw .init(description: "truncated fixed64") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        i += 8
        return v
    }

    mutating func lengthDelimited() throws(SparkplugPayload.DecodeError) -> [UInt8] {
        let n = try varint()
        guard n <= UInt64(bytes.count - i) else { throw .init(description: "length \(n) beyond the payload") }
        defer { i += Int(n) }
        return Array(bytes[i..<(i + Int(n))])
    }

    mutating func skip(_ wire: UInt64) throws(SparkplugPayload.DecodeError) {
        switch wire {
        case 0: _ = try varint()
        case 1: _ = try fixed64()
        case 2: _ = try lengthDelimited()
        case 5: _ = try fixed32()
        default: throw .init(description: "unsupported wire type \(wire)")
        }
    }
}
