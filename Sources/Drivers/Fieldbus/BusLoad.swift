import EdgeRuntime

/// Line time of Modbus transactions on one bus: the arithmetic behind `config check`'s load
/// figures and the scheduler's first cost estimates. Pure; all times in nanoseconds.
///
/// RTU: every byte takes one character time, `bitsPerCharacter / baud` (start + data + parity +
/// stop: 11 for 8E1); frames are separated by t3.5 (3.5 character times; 1.75 ms above 19200
/// baud, as the Modbus serial line spec fixes it); a transaction is request + t3.5 + response +
/// t3.5; devices are assumed to answer at once (no turnaround time beyond the gap).
/// TCP: a fixed cost per transaction, `tcpTransaction` (2 ms: a device or gateway on the cabinet's
/// LAN; loopback measures ~0.05 ms, a TCP-to-RTU gateway costs its serial line's time instead).
public struct BusLine: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case rtu(baud: Int, bitsPerCharacter: Int)
        case tcp
    }
    public var kind: Kind
    public static let tcpTransaction: Int64 = 2_000_000

    public init(_ kind: Kind) { self.kind = kind }

    /// One character, ns (RTU; 0 for TCP).
    public var character: Int64 {
        guard case .rtu(let baud, let bits) = kind, baud > 0 else { return 0 }
        return Int64(bits) * 1_000_000_000 / Int64(baud)
    }

    /// The inter-frame gap t3.5, ns (RTU; 0 for TCP).
    public var gap: Int64 {
        guard case .rtu(let baud, _) = kind else { return 0 }
        return baud > 19200 ? 1_750_000 : character * 7 / 2
    }

    /// One request and its answer, ns.
    public func transaction(request: Int, response: Int) -> Int64 {
        switch kind {
        case .tcp: return Self.tcpTransaction
        case .rtu: return Int64(request + response) * character + 2 * gap
        }
    }

    /// RTU frame sizes (address, function, data, CRC).
    public static func readFrames(_ table: DeviceProfile.RegisterTable, count: Int) -> (request: Int, response: Int) {
        (8, table.isBit ? 5 + (count + 7) / 8 : 5 + 2 * count)
    }

    public static func writeFrames(_ table: DeviceProfile.RegisterTable, count: Int) -> (request: Int, response: Int) {
        if count == 1 { return (8, 8) }
        return (table.isBit ? 9 + (count + 7) / 8 : 9 + 2 * count, 8)
    }

    /// One poll: every read block of the device, ns.
    public func poll(_ blocks: [PointCodec.Block]) -> Int64 {
        blocks.reduce(0) { sum, b in
            let f = Self.readFrames(b.table, count: b.count)
            return sum + transaction(request: f.request, response: f.response)
        }
    }

    /// Writing every writable point of a profile (one request per table's contiguous run) and
    /// reading each back, ns: the longest write a device's batch can be.
    public func writeAll(_ profile: DeviceProfile) -> Int64 {
        var total: Int64 = 0
        for table in DeviceProfile.RegisterTable.allCases where table == .coil || table == .holding {
            let spans = profile.points.values.filter { $0.table == table }.map { (Int($0.address), Int($0.address) + $0.width) }.sorted { $0.0 < $1.0 }
            var runs: [Int] = []
            var end = -1
            for s in spans {
                if s.0 == end, !runs.isEmpty { runs[runs.count - 1] += s.1 - s.0 } else { runs.append(s.1 - s.0) }
                end = s.1
            }
            for n in runs {
                let w = Self.writeFrames(table, count: n), r = Self.readFrames(table, count: n)
                total += transaction(request: w.request, response: w.response) + transaction(request: r.request, response: r.response)
            }
        }
        return total
    }

    /// "19200 baud" / "TCP (2 ms per transaction assumed)".
    public var summary: String {
        switch kind {
        case .rtu(let baud, _): return "\(baud) baud"
        case .tcp: return "TCP (\(BusLoad.ms(Self.tcpTransaction)) ms per transaction assumed)"
        }
    }
}

/// The load of one bus: whether its safety devices can be polled within their periods, and the
/// probe timeout the scheduler uses for units that do not answer.
///
/// Model, per the shortest safety period P (what `BusScheduler` guarantees: a safety poll starts
/// at most P / 2 after it is due, and other jobs start only if they end by then):
/// - demand D = sum over safety devices of poll_i * P / period_i: the safety polls alone must fit,
///   D <= P;
/// - the longest job J that cannot be interrupted once started (a probe, which lasts its timeout;
///   a poll or write of another device; a safety device's write of every output) must fit in what
///   a period leaves plus the tolerated lateness, D + J <= 1.5 P; otherwise it would never run
///   (lamps never written, a dead unit never probed again).
/// The probe timeout is the configured timeout, capped at P / 2 when the bus carries safety
/// devices (but never below the longest first read of a poll, so an answering unit is heard).
/// A poll is costed with every block of the device, its slow blocks too (`PointCodec`): the bus
/// reads them only every `PollPeriods.slowBlocks`, but any poll may read them all (after a write
/// or a failure), so the model stays conservative; the scheduler learns the measured cost.
public struct BusLoad: Sendable {
    public struct Device: Sendable, Equatable {
        public var name: String
        public var kind: DeviceProfile.Kind
        public var period: Duration
        public var profile: DeviceProfile
        public init(name: String, kind: DeviceProfile.Kind, period: Duration, profile: DeviceProfile) {
            self.name = name
            self.kind = kind
            self.period = period
            self.profile = profile
        }
    }

    public let line: BusLine
    /// Shortest safety period, ns (nil: no safety device).
    public let shortestSafetyPeriod: Int64?
    /// Safety polls per shortest period, ns.
    public let safetyDemand: Int64
    /// The longest uninterruptible other job, ns, and what it is.
    public let longestJob: Int64
    public let longestJobWhat: String
    /// Timeout of probes, ns.
    public let probeTimeout: Int64
    /// Poll cost per device, ns, in the order given.
    public let pollCosts: [Int64]
    /// Write cost (all writable points, read back) per device, ns.
    public let writeCosts: [Int64]
    private let safetyGroups: [(kind: DeviceProfile.Kind, period: Int64, count: Int)]

    public init(line: BusLine, timeout: Duration, devices: [Device]) {
        self.line = line
        let timeoutNanos = timeout.nanoseconds
        var polls: [Int64] = []
        var writes: [Int64] = []
        for d in devices {
            polls.append(line.poll(PointCodec(profile: d.profile).blocks))
            writes.append(line.writeAll(d.profile))
        }
        pollCosts = polls
        writeCosts = writes
        let safety = devices.indices.filter { PollPeriods.isSafety(devices[$0].kind) }
        let shortest = safety.map { devices[$0].period.nanoseconds }.min()
        shortestSafetyPeriod = shortest
        var groups: [(kind: DeviceProfile.Kind, period: Int64, count: Int)] = []
        for i in safety {
            let p = devices[i].period.nanoseconds
            if let g = groups.firstIndex(where: { $0.kind == devices[i].kind && $0.period == p }) { groups[g].count += 1 } else {
                groups.append((devices[i].kind, p, 1))
            }
        }
        safetyGroups = groups
        if let shortest {
            safetyDemand = safety.reduce(0) { $0 + Int64((Double(polls[$1]) * Double(shortest) / Double(devices[$1].period.nanoseconds)).rounded(.up)) }
            let firstRead = devices.indices.map { i -> Int64 in
                guard let b = PointCodec(profile: devices[i].profile).blocks.first else { return 0 }
                let f = BusLine.readFrames(b.table, count: b.count)
                return line.transaction(request: f.request, response: f.response)
            }.max() ?? 0
            probeTimeout = min(timeoutNanos, max(shortest / 2, firstRead))
        } else {
            safetyDemand = 0
            probeTimeout = timeoutNanos
        }
        var longest = probeTimeout
        var what = "a probe of a unit that does not answer"
        for (i, d) in devices.enumerated() {
            let safe = PollPeriods.isSafety(d.kind)
            if !safe, polls[i] > longest { longest = polls[i]; what = "a poll of \(d.name)" }
            if writes[i] > longest { longest = writes[i]; what = "a write of every output of \(d.name)" }
        }
        longestJob = longest
        longestJobWhat = what
    }

    /// Share of the shortest safety period the safety polls need (1.0 = all of it; 0 without safety devices).
    public var utilization: Double {
        guard let p = shortestSafetyPeriod, p > 0 else { return 0 }
        return Double(safetyDemand) / Double(p)
    }

    /// Why the bus cannot poll its safety devices within their periods, with the figures; nil when it can.
    public var problem: String? {
        guard let p = shortestSafetyPeriod else { return nil }
        let devices = safetyGroups.map { "\($0.count) \(Self.plural($0.kind, $0.count)) at \(Self.ms($0.period)) ms" }.joined(separator: ", ")
        let verb = safetyGroups.count == 1 && safetyGroups[0].count == 1 ? "needs" : "need"
        let figures = "\(devices) \(verb) \(Self.ms(safetyDemand)) ms of every \(Self.ms(p)) ms at \(line.summary) (\(Int((utilization * 100).rounded())) %)"
        let fix = "lengthen poll periods (poll: on the device or the bus), move devices to another bus or raise the baud rate"
        if safetyDemand > p { return "\(figures); \(fix)" }
        let room = p + p / 2 - safetyDemand
        if longestJob > room {
            return "\(figures), which leaves \(Self.ms(room)) ms (up to half a period late) for the longest other job, "
                + "\(longestJobWhat), \(Self.ms(longestJob)) ms: it would never run; \(fix)"
        }
        return nil
    }

    /// One line of figures for reports: "1 bollard at 50 ms: 24.4 ms of every 50 ms (49 %), longest other job 32 ms (a poll of lamp-01), probe timeout 25 ms".
    public var summary: String {
        guard let p = shortestSafetyPeriod else { return "no safety devices; probe timeout \(Self.ms(probeTimeout)) ms" }
        let devices = safetyGroups.map { "\($0.count) \(Self.plural($0.kind, $0.count)) at \(Self.ms($0.period)) ms" }.joined(separator: ", ")
        return "\(devices): \(Self.ms(safetyDemand)) ms of every \(Self.ms(p)) ms at \(line.summary) (\(Int((utilization * 100).rounded())) %), "
            + "longest other job \(Self.ms(longestJob)) ms (\(longestJobWhat)), probe timeout \(Self.ms(probeTimeout)) ms"
    }

    static func plural(_ kind: DeviceProfile.Kind, _ n: Int) -> String {
        let word: String
        switch kind {
        case .bollard: word = "bollard"
        case .signalIO: word = "signal I/O unit"
        case .presence: word = "presence sensor"
        case .luminaire: word = "luminaire"
        }
        return n == 1 ? word : word + "s"
    }

    /// Milliseconds with at most one decimal ("74", "2.5").
    static func ms(_ nanos: Int64) -> String {
        let tenths = (nanos + 50_000) / 100_000
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }
}

extension Duration {
    /// Whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let c = components
        let (s, o) = c.seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if o { return c.seconds < 0 ? .min : .max }
        return s &+ c.attoseconds / 1_000_000_000
    }
}
