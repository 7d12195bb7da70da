#if canImport(Glibc)
import Glibc
#endif
public import Logging
public import Protocols

/// Which queue a write goes to: safety writes (motor off, request drop) jump every other request.
public enum WritePriority: Int, Sendable, Comparable {
    case safety = 0
    case control = 1
    public static func < (a: WritePriority, b: WritePriority) -> Bool { a.rawValue < b.rawValue }
}

/// One engineering value to write to a named point of a device's profile.
public struct PointWrite: Sendable, Equatable {
    public var point: String
    public var value: Double
    public init(_ point: String, _ value: Double) {
        self.point = point
        self.value = value
    }
}

/// Health counters of a bus, for status and telemetry.
public struct BusStats: Sendable {
    public var transactions: Int = 0
    public var failures: Int = 0
    public var writes: Int = 0
    public var verifyFailures: Int = 0
    public var connected: Bool = false
}

/// One Modbus bus (a TCP endpoint or an RS-485 port), owned by one I/O thread.
///
/// The thread serves a priority queue: safety writes first, then control writes, then polls of
/// due devices (each device's readable points in as few requests as its profile allows).
/// A device that stops answering, or answers its polls with Modbus exceptions, is marked offline
/// and retried with capped exponential backoff, so a dead unit costs at most one response timeout
/// per backoff period and never stalls the other units. A failed poll never produces values: while
/// the device is still online (one miss) nothing is delivered and the last good reading stands.
/// Writes are verified by reading the registers back. A libmodbus context is not
/// thread-safe and RS-485 is half-duplex: nothing but this thread touches the client.
public final class ModbusBus: @unchecked Sendable {
    public let name: String
    private let transport: ModbusTransport
    private let timeout: Duration
    private let pollInterval: Duration
    private let logger: Logger
    private let cond = MonotonicCondition()

    // Guarded by `cond`.
    private var devices: [DeviceState] = []
    private var queue: [[PendingWrite]] = [[], []]
    private var running = false
    private var thread: pthread_t?
    private var onReading: (@Sendable (DeviceReading) -> Void)?
    private var stats = BusStats()

    /// Offline after this many consecutive failed polls; backoff 1 s doubling to 30 s.
    static let failuresBeforeOffline = 2
    static let backoffStart: Int64 = 1_000_000_000
    static let backoffMax: Int64 = 30_000_000_000

    private struct DeviceState {
        let spec: ModbusDeviceSpec
        let codec: PointCodec
        var nextPoll: Int64 = 0
        var failures = 0
        /// False until the device has answered once: an unknown device is never written to.
        var online = false
        var backoff: Int64 = ModbusBus.backoffStart
        var everAnswered = false
    }

    private struct PendingWrite {
        var device: Int
        var points: [PointWrite]
        var verify: Bool
        var completion: (@Sendable (Result<Void, FieldDeviceError>) -> Void)?
    }

    public init(name: String, transport: ModbusTransport, timeout: Duration, pollInterval: Duration, logger: Logger) {
        self.name = name
        self.transport = transport
        self.timeout = timeout
        self.pollInterval = pollInterval
        var logger = logger
        logger[metadataKey: "bus"] = "\(name)"
        self.logger = logger
    }

    /// Adds a device; call before `start()`.
    public func addDevice(_ spec: ModbusDeviceSpec) {
        cond.withLock { devices.append(DeviceState(spec: spec, codec: PointCodec(profile: spec.profile))) }
    }

    /// Names of the devices on this bus.
    public var deviceNames: [String] { cond.withLock { devices.map(\.spec.name) } }

    /// Sets the handler that receives every poll result (called on the bus thread; keep it short).
    public func onReading(_ handler: @escaping @Sendable (DeviceReading) -> Void) {
        cond.withLock { onReading = handler }
    }

    public var currentStats: BusStats { cond.withLock { stats } }

    /// Starts the I/O thread.
    public func start() {
        cond.withLock {
            guard !running else { return }
            running = true
            thread = startNamedThread(name: "mb-\(name)") { [self] in run() }
        }
    }

    /// Stops after the write queue is flushed (safety first), then joins the thread.
    public func stop() {
        let t: pthread_t? = cond.withLock {
            running = false
            cond.signal()
            defer { thread = nil }
            return thread
        }
        if let t { pthread_join(t, nil) }
    }

    /// Queues a write of `points` to `device`. Later control writes to the same device and
    /// points replace queued ones (the latest setpoint wins); safety writes keep their order.
    public func write(device: String, points: [PointWrite], priority: WritePriority, verify: Bool = true,
                      completion: (@Sendable (Result<Void, FieldDeviceError>) -> Void)? = nil) {
        let error: FieldDeviceError? = cond.withLock {
            guard let index = devices.firstIndex(where: { $0.spec.name == device }) else {
                return FieldDeviceError(device: device, message: "not a device of bus \(name)")
            }
            let pending = PendingWrite(device: index, points: points, verify: verify, completion: completion)
            let q = priority.rawValue
            if priority == .control, let i = queue[q].firstIndex(where: { $0.device == index && $0.points.map(\.point) == points.map(\.point) }) {
                let replaced = queue[q][i]
                queue[q][i] = pending
                replaced.completion?(.success(()))
            } else {
                queue[q].append(pending)
            }
            cond.signal()
            return nil
        }
        if let error { completion?(.failure(error)) }
    }

    // MARK: - The I/O thread

    private func run() {
        var client: ModbusClient?
        do {
            client = try ModbusClient(bus: name, transport: transport, responseTimeout: timeout, logger: logger)
        } catch {
            logger.error("cannot set up Modbus bus: \(error)")
        }
        var blockBuffer: [[UInt16]] = []
        while true {
            // Pick the next job under the lock.
            enum Job { case write(PendingWrite), poll(Int), stop }
            let job: Job = cond.withLock {
                while true {
                    if !running {
                        // Flush queued safety writes before stopping.
                        if !queue[0].isEmpty { return .write(queue[0].removeFirst()) }
                        return .stop
                    }
                    for q in 0..<queue.count where !queue[q].isEmpty { return .write(queue[q].removeFirst()) }
                    let now = monotonicNanos()
                    var due: Int?
                    var earliest: Int64?
                    for (i, d) in devices.enumerated() {
                        if d.nextPoll <= now, due == nil || d.nextPoll < devices[due!].nextPoll { due = i }
                        earliest = min(earliest ?? d.nextPoll, d.nextPoll)
                    }
                    if let due { return .poll(due) }
                    cond.wait(untilMonotonicNanos: earliest)
                }
            }
            switch job {
            case .stop:
                client?.close()
                return
            case .write(let w):
                performWrite(w, client: client)
            case .poll(let i):
                poll(i, client: client, buffer: &blockBuffer)
            }
        }
    }

    private func spec(_ i: Int) -> (ModbusDeviceSpec, PointCodec) {
        cond.withLock { (devices[i].spec, devices[i].codec) }
    }

    private func poll(_ i: Int, client: ModbusClient?, buffer: inout [[UInt16]]) {
        let (spec, codec) = spec(i)
        let started = monotonicNanos()
        var failure: ModbusError?
        if let client {
            // The block arrays are kept from poll to poll (no allocation per read); only the
            // first `codec.blocks.count` are this device's, and they are decoded only when all
            // of them were read.
            for (k, block) in codec.blocks.enumerated() {
                if k == buffer.count { buffer.append([]) }
                do {
                    try read(client, unit: spec.unit, block: block, into: &buffer[k])
                } catch {
                    // An exception answer (device failure, busy, a register the device lacks) leaves
                    // the poll without data, like a timeout: it counts toward offline.
                    failure = error
                    break
                }
            }
        }
        let reading: DeviceReading
        var values = PointValues()
        var invalid: [String] = []
        if failure == nil, client != nil {
            invalid = codec.decode(blocks: buffer, into: &values)
        }
        let (handler, wentOffline, cameOnline, online): ((@Sendable (DeviceReading) -> Void)?, Bool, Bool, Bool) = cond.withLock {
            stats.transactions += codec.blocks.count
            stats.connected = client?.isConnected ?? false
            var wentOffline = false, cameOnline = false
            // In place (no copy of the device's entry, which holds its spec and codec).
            if failure == nil && client != nil {
                if !devices[i].online { cameOnline = true }
                devices[i].online = true
                devices[i].failures = 0
                devices[i].backoff = ModbusBus.backoffStart
                devices[i].everAnswered = true
                devices[i].nextPoll = started + pollInterval.nanosecondsValue
            } else {
                stats.failures += 1
                devices[i].failures += 1
                if !devices[i].everAnswered || devices[i].failures >= ModbusBus.failuresBeforeOffline {
                    if devices[i].online { wentOffline = true }
                    devices[i].online = false
                    devices[i].nextPoll = monotonicNanos() + devices[i].backoff
                    devices[i].backoff = min(devices[i].backoff * 2, ModbusBus.backoffMax)
                } else {
                    devices[i].nextPoll = monotonicNanos() + pollInterval.nanosecondsValue
                }
            }
            return (onReading, wentOffline, cameOnline, devices[i].online)
        }
        if wentOffline {
            logger.warning("device offline", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)", "error": "\(failure.map { "\($0)" } ?? "no client")"])
        } else if cameOnline {
            logger.notice("device back online", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)"])
        }
        // A failed poll of a device still online (a single miss) delivers nothing: an empty reading
        // would read as "every input off" (a clear vehicle loop, a dark lamp) to the control loop.
        if online && (failure != nil || client == nil) { return }
        reading = DeviceReading(device: spec.id, online: online, values: values, timestampNanos: started,
                                error: failure.map { "\($0)" } ?? (client == nil ? "bus \(name) could not be set up" : nil), invalid: invalid)
        handler?(reading)
    }

    private func read(_ client: ModbusClient, unit: UInt8, block: PointCodec.Block, into values: inout [UInt16]) throws(ModbusError) {
        let table: ModbusTable
        switch block.table {
        case .coil: table = .coil
        case .discrete: table = .discrete
        case .holding: table = .holding
        case .input: table = .input
        }
        try client.read(table, unit: unit, address: block.address, count: block.count, into: &values)
    }

    private func performWrite(_ w: PendingWrite, client: ModbusClient?) {
        let (spec, codec) = spec(w.device)
        func fail(_ message: String, loss: Bool) {
            cond.withLock { stats.failures += 1 }
            logger.warning("write failed", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)", "error": "\(message)"])
            w.completion?(.failure(FieldDeviceError(device: spec.name, message: message, isCommunicationLoss: loss)))
        }
        guard let client else { return fail("bus \(name) could not be set up", loss: true) }
        // Encode and group contiguous points of one table into single requests.
        var encoded: [(DeviceProfile.Point, [UInt16])] = []
        for p in w.points {
            do { encoded.append(try codec.encode(point: p.point, value: p.value)) } catch {
                return fail("\(p.point): \(error.message)", loss: false)
            }
        }
        encoded.sort { ($0.0.table.rawValue, $0.0.address) < ($1.0.table.rawValue, $1.0.address) }
        var requests: [(DeviceProfile.RegisterTable, UInt16, [UInt16])] = []
        for (point, words) in encoded {
            if let last = requests.last, last.0 == point.table, Int(last.1) + last.2.count == Int(point.address) {
                requests[requests.count - 1].2 += words
            } else {
                requests.append((point.table, point.address, words))
            }
        }
        for (table, address, words) in requests {
            do {
                switch table {
                case .coil:
                    if words.count == 1 { try client.writeCoil(unit: spec.unit, address: address, value: words[0] != 0) } else {
                        try client.writeCoils(unit: spec.unit, address: address, values: words.map { $0 != 0 })
                    }
                case .holding:
                    if words.count == 1 { try client.writeRegister(unit: spec.unit, address: address, value: words[0]) } else {
                        try client.writeRegisters(unit: spec.unit, address: address, values: words)
                    }
                case .discrete, .input:
                    return fail("\(table.rawValue) \(address) is read-only", loss: false)
                }
                cond.withLock { stats.writes += 1; stats.transactions += 1 }
                if w.verify {
                    var back: [UInt16] = []
                    try read(client, unit: spec.unit, block: .init(table: table, address: address, count: words.count), into: &back)
                    cond.withLock { stats.transactions += 1 }
                    if back != words {
                        cond.withLock { stats.verifyFailures += 1 }
                        return fail("write of \(table.rawValue) \(address)..\(Int(address) + words.count - 1) not confirmed: wrote \(words), read back \(back)", loss: false)
                    }
                }
            } catch {
                let loss: Bool
                switch error.kind {
                case .exception: loss = false
                default: loss = true
                }
                return fail("\(error)", loss: loss)
            }
        }
        w.completion?(.success(()))
    }
}

extension Duration {
    var nanosecondsValue: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
