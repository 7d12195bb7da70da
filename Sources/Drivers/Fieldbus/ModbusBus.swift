#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
public import Logging
public import Protocols

/// Which queue a write goes to: safety writes (motor off, request drop) jump every other request.
public enum WritePriority: Int, Sendable, Comparable {
    case safety = 0
    case control = 1
    public static func < (a: WritePriority, b: WritePriority) -> Bool { a.rawValue < b.rawValue }
}

/// One engineering value to write to a named point of a device's profile.
///
/// `safe` says the value is the point's safe state (a motor coil off, a priority request
/// dropped): within one write, the bus writes every safe-direction point before any other, so
/// a reversal never has both coils on and a failed write leaves only safe values applied.
/// `PointWrite(point, value)` is a write away from the safe state or of a point without one
/// (a setpoint): it goes after the safe ones.
public struct PointWrite: Sendable, Equatable {
    public var point: String
    public var value: Double
    /// The value is the point's safe state (written first).
    public var safe: Bool
    public init(_ point: String, _ value: Double, safe: Bool = false) {
        self.point = point
        self.value = value
        self.safe = safe
    }
}

/// Health counters of a bus, for status and telemetry.
public struct BusStats: Sendable {
    public var transactions: Int = 0
    public var failures: Int = 0
    public var writes: Int = 0
    public var verifyFailures: Int = 0
    /// Jobs run for devices that did not answer (probes, with the probe timeout).
    public var probes: Int = 0
    public var connected: Bool = false
}


/// One Modbus bus (a TCP endpoint or an RS-485 port), owned by one I/O thread.
///
/// The thread runs the decisions of a `BusScheduler` (see its rules): safety writes first, then
/// the safety devices' polls by earliest deadline, then control writes, other polls and probes
/// of units that do not answer, each only where it leaves the safety polls at most half a
/// period late. Each device is polled at its own period (`ModbusDeviceSpec.pollPeriod`, else
/// the bus's `pollInterval`, else its role's, `PollPeriods`), on a grid from the bus's start
/// shared by every device of that period, so polls due together run in one wake-up. Writes are
/// coalesced per device and point in a `WriteQueue` (latest value wins, safe values written
/// first, bounded by the devices' writable points). A unit that stops answering costs one response timeout, then is
/// probed with the shorter probe timeout (`BusLoad.probeTimeout`) at capped exponential backoff
/// steps with jitter, within a fifth of the bus time. A failed poll never produces values: while
/// the device is still online (one miss) nothing is delivered and the last good reading stands.
/// Writes are verified by reading the registers back. A libmodbus context is not thread-safe
/// and RS-485 is half-duplex: nothing but this thread touches the client.
///
/// Fast and slow blocks (`PointCodec.Block.Refresh`): a poll reads the blocks holding a safety
/// input every time; the slow ones (read-back, lux) only when due, every `PollPeriods.slowBlocks`
/// (every poll when the device's period is that long or longer), and always at the device's
/// first poll, at a probe, at the first poll after any write to the device (a batch, whatever
/// its outcome, so a new write is never compared with an old read-back) and at any poll after a
/// failed one. A poll that skips them says so: their roles are in `DeviceReading.unread`, absent
/// from the values, and the lines of `invalid` of their last read are carried on.
public final class ModbusBus: Sendable {
    public let name: String
    private let transport: ModbusTransport
    private let timeout: Duration
    private let pollInterval: Duration?
    private let logger: Logger
    private let cond = EdgeRuntime.Lock()
    private let state = Guarded()

    /// What the lock guards; touched only inside `cond.withLock`.
    private final class Guarded: @unchecked Sendable {
        var devices: [DeviceState] = []
        var writes = WriteQueue(devices: 0)
        var scheduler: BusScheduler?
        var running = false
        var thread: OSThread?
        var onReading: (@Sendable (DeviceReading) -> Void)?
        var stats = BusStats()
    }

    private struct DeviceState {
        let spec: ModbusDeviceSpec
        let codec: PointCodec
        /// The device's own period (nil: the bus's, else the role's).
        let pollPeriod: Duration?
        /// Its slow blocks are read at the first poll at least this long after their last read,
        /// ns: `PollPeriods.slowBlocks` less half a period, so polls on their grid read them every
        /// `slowBlocks`, not a poll later; nil: at every poll (none, or a long period).
        let slowEvery: Int64?
    }

    /// When a device's slow blocks are read next and what their last read could not use; owned
    /// by the I/O thread.
    private struct SlowBlocks {
        /// Read at the first poll at or after this (`.min`: at the next poll).
        var due = Int64.min
        var invalid: [String] = []
    }

    /// A job taken under the lock, run without it.
    private enum Work {
        case poll(Int, probe: Bool)
        case write(WriteQueue.Batch, probe: Bool)
        case stop
    }

    /// `pollInterval`: the period of every device of the bus that has none of its own (nil: by role).
    public init(name: String, transport: ModbusTransport, timeout: Duration, pollInterval: Duration? = nil, logger: Logger) {
        self.name = name
        self.transport = transport
        self.timeout = timeout
        self.pollInterval = pollInterval
        var logger = logger
        logger[metadataKey: "bus"] = "\(name)"
        self.logger = logger
    }

    /// Adds a device polled every `pollPeriod` (nil: the bus's `pollInterval`, else its role's,
    /// `PollPeriods`); call before `start()`.
    public func addDevice(_ spec: ModbusDeviceSpec, pollPeriod: Duration? = nil) {
        let codec = PointCodec(profile: spec.profile)
        let period = PollPeriods.period(device: pollPeriod, bus: pollInterval, kind: spec.profile.kind)
        let slowEvery = codec.hasSlowBlocks ? PollPeriods.slowBlockPeriod(devicePeriod: period).map { $0 - period.nanoseconds / 2 } : nil
        cond.withLock {
            state.devices.append(DeviceState(spec: spec, codec: codec, pollPeriod: pollPeriod, slowEvery: slowEvery))
            state.writes = WriteQueue(devices: state.devices.count)
        }
    }

    /// Names of the devices on this bus.
    public var deviceNames: [String] { cond.withLock { state.devices.map(\.spec.name) } }

    /// The period a device is polled at.
    private func period(_ d: DeviceState) -> Duration {
        PollPeriods.period(device: d.pollPeriod, bus: pollInterval, kind: d.spec.profile.kind)
    }

    /// The line model of this bus and its devices (probe timeout, first cost estimates).
    public var load: BusLoad {
        let devices = cond.withLock { state.devices }
        return BusLoad(line: line, timeout: timeout,
                       devices: devices.map { .init(name: $0.spec.name, kind: $0.spec.profile.kind, period: period($0), profile: $0.spec.profile) })
    }

    private var line: BusLine {
        switch transport {
        case .tcp: return BusLine(.tcp)
        case .rtu(_, let baud, let parity, let dataBits, let stopBits):
            return BusLine(.rtu(baud: baud, bitsPerCharacter: 1 + dataBits + (parity == .none ? 0 : 1) + stopBits))
        }
    }

    /// Sets the handler that receives every poll result (called on the bus thread; keep it short).
    public func onReading(_ handler: @escaping @Sendable (DeviceReading) -> Void) {
        cond.withLock { state.onReading = handler }
    }

    public var currentStats: BusStats { cond.withLock { state.stats } }

    /// Starts the I/O thread.
    public func start() {
        let load = self.load
        cond.withLock {
            guard !state.running else { return }
            let devices = state.devices.enumerated().map { i, d in
                BusScheduler.Device(period: period(d).nanoseconds, safety: PollPeriods.isSafety(d.spec.profile.kind), pollCost: load.pollCosts[i], writeCost: load.writeCosts[i])
            }
            let now = MonotonicInstant.now().nanoseconds
            state.scheduler = BusScheduler(devices: devices, settings: .init(probeTimeout: load.probeTimeout), start: now, seed: UInt64(bitPattern: now))
            state.running = true
            state.thread = OSThread.start(name: "mb-\(name)") { [self] in run() }
        }
        logger.info("bus started", metadata: ["load": "\(load.summary)"])
    }

    /// Stops after the pending safety writes are sent (one attempt each), then joins the thread.
    public func stop() {
        let t: OSThread? = cond.withLock {
            state.running = false
            cond.signal()
            defer { state.thread = nil }
            return state.thread
        }
        t?.join()
    }

    /// Queues a write of `points` to `device`. Each point replaces a pending value of the same
    /// point (whatever the priorities; see `WriteQueue`); safety writes go before every poll.
    /// `completion` is called once, on the bus thread or at once here (a point the profile
    /// cannot write, a superseded earlier write).
    public func write(device: String, points: [PointWrite], priority: WritePriority, verify: Bool = true,
                      completion: (@Sendable (Result<Void, FieldDeviceError>) -> Void)? = nil) {
        let done: [(WriteQueue.Completion, Result<Void, FieldDeviceError>)] = cond.withLock {
            guard let index = state.devices.firstIndex(where: { $0.spec.name == device }) else {
                return completion.map { [($0, .failure(FieldDeviceError(device: device, message: "not a device of bus \(name)")))] } ?? []
            }
            let codec = state.devices[index].codec
            var encoded: [(name: String, definition: DeviceProfile.Point, words: [UInt16], safe: Bool)] = []
            for p in points {
                switch Self.encode(codec, p) {
                case .success(let (definition, words)): encoded.append((p.point, definition, words, p.safe))
                case .failure(let error):
                    return completion.map { [($0, .failure(FieldDeviceError(device: device, message: "\(p.point): \(error.message)")))] } ?? []
                }
            }
            let done = state.writes.enqueue(device: index, name: device, points: encoded, priority: priority, verify: verify,
                                            now: MonotonicInstant.now().nanoseconds, completion: completion)
            cond.signal()
            return done
        }
        for (c, r) in done { c(r) }
    }

    /// One point's register words (the codec's checked conversion).
    private static func encode(_ codec: PointCodec, _ p: PointWrite) -> Result<(DeviceProfile.Point, [UInt16]), FieldDeviceError> {
        do { return .success(try codec.encode(point: p.point, value: p.value)) } catch { return .failure(error) }
    }

    // MARK: - The I/O thread

    private func run() {
        var client: ModbusClient?
        do {
            client = try ModbusClient(bus: name, transport: transport, responseTimeout: timeout, logger: logger)
        } catch {
            logger.error("cannot set up Modbus bus: \(error)")
        }
        let probeTimeout = Duration.nanoseconds(cond.withLock { state.scheduler?.settings.probeTimeout ?? timeout.nanoseconds })
        var blockBuffer: [[UInt16]] = []
        var slow = Array(repeating: SlowBlocks(), count: cond.withLock { state.devices.count })
        while true {
            switch nextWork() {
            case .stop:
                client?.close()
                return
            case .write(let batch, let probe):
                setTimeout(probe ? probeTimeout : timeout, client)
                performWrite(batch, probe: probe, client: client)
                // Whatever got through: the next poll reads the read-back afresh.
                slow[batch.device].due = .min
            case .poll(let i, let probe):
                setTimeout(probe ? probeTimeout : timeout, client)
                poll(i, probe: probe, client: client, buffer: &blockBuffer, slow: &slow[i])
            }
        }
    }

    /// Sets the client's response timeout only when it changes (each set is a libmodbus call;
    /// flat out, nearly every job has the timeout of the one before).
    private func setTimeout(_ t: Duration, _ client: ModbusClient?) {
        guard let client, client.responseTimeout != t else { return }
        client.responseTimeout = t
    }

    /// The next job, under the lock; sleeps while there is none.
    private func nextWork() -> Work {
        cond.withLock {
            while true {
                // No local copy of the scheduler: it would share its arrays (states, heaps), and the
                // decision below, made in place, would then copy them.
                guard state.scheduler != nil else { return .stop }
                if !state.running {
                    // Pending safety writes go out before the thread ends, one attempt each.
                    for d in state.devices.indices {
                        if let batch = state.writes.take(d, onlySafety: true) { return .write(batch, probe: !state.scheduler!.answers(d)) }
                    }
                    return .stop
                }
                let decision = state.scheduler!.next(now: MonotonicInstant.now().nanoseconds, pending: state.writes.pendingDevices, writes: { state.writes.summary($0) })
                switch decision {
                case .run(.poll(let d), let probe):
                    return .poll(d, probe: probe)
                case .run(.write(let d), let probe):
                    if let batch = state.writes.take(d) { return .write(batch, probe: probe) }
                case .sleep(let until):
                    if let until { cond.wait(until: MonotonicInstant(nanoseconds: until)) } else { cond.wait() }
                }
            }
        }
    }

    private func spec(_ i: Int) -> (ModbusDeviceSpec, PointCodec) {
        cond.withLock { (state.devices[i].spec, state.devices[i].codec) }
    }

    private func slowEvery(_ i: Int) -> Int64? {
        cond.withLock { state.devices[i].slowEvery }
    }

    /// Reports a finished job to the scheduler; returns the device's health change.
    private func finished(_ job: BusScheduler.Job, probe: Bool, started: Int64, outcome: BusScheduler.Outcome) -> BusScheduler.Transition? {
        let ended = MonotonicInstant.now().nanoseconds
        return cond.withLock {
            state.stats.probes += probe ? 1 : 0
            return state.scheduler?.finished(job, probe: probe, started: started, ended: ended, outcome: outcome)
        }
    }

    private func logTransition(_ t: BusScheduler.Transition?, _ spec: ModbusDeviceSpec, error: String?) {
        guard let t else { return }
        if t.wentOffline {
            logger.warning("device offline", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)", "error": "\(error ?? "no answer")"])
        } else if t.cameOnline {
            logger.notice("device online", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)"])
        }
    }

    private func poll(_ i: Int, probe: Bool, client: ModbusClient?, buffer: inout [[UInt16]], slow: inout SlowBlocks) {
        let (spec, codec) = spec(i)
        let every = slowEvery(i)
        let started = MonotonicInstant.now().nanoseconds
        // Slow blocks: when due, at every poll without a slow period, at a probe (see the rules).
        let readSlow = every == nil || probe || started >= slow.due
        var reads = 0
        var failure: ModbusError?
        if let client {
            // The block arrays are kept from poll to poll (no allocation per read); only the
            // first `codec.blocks.count` are this device's, and they are decoded only when all
            // of the poll's blocks were read (a skipped slow block's array is not looked at).
            for (k, block) in codec.blocks.enumerated() {
                if k == buffer.count { buffer.append([]) }
                if !readSlow && block.refresh == .slow { continue }
                reads += 1
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
        let ok = failure == nil && client != nil
        let transition = finished(.poll(i), probe: probe, started: started, outcome: ok ? .answered : .noAnswer)
        let (handler, online): ((@Sendable (DeviceReading) -> Void)?, Bool) = cond.withLock {
            state.stats.transactions += reads
            state.stats.connected = client?.isConnected ?? false
            if !ok { state.stats.failures += 1 }
            return (state.onReading, transition?.to == .online || transition?.to == .suspect)
        }
        let error = failure.map { "\($0)" } ?? (client == nil ? "bus \(name) could not be set up" : nil)
        logTransition(transition, spec, error: error)
        // A failed poll of a device still counted online (a single miss) delivers nothing: an empty
        // reading would read as "every input off" (a clear vehicle loop, a dark lamp) to the control loop.
        if online && !ok { return }
        var values = PointValues()
        var invalid: [String] = []
        var unread = PointRoleSet()
        if !ok {
            // Back from a failure (or still failing): the next poll reads every block.
            slow.due = .min
        } else if !codec.hasSlowBlocks {
            invalid = codec.decode(blocks: buffer, into: &values)
        } else {
            invalid = codec.decode(blocks: buffer, into: &values, refresh: .everyPoll)
            if readSlow {
                slow.invalid = codec.decode(blocks: buffer, into: &values, refresh: .slow)
                slow.due = every.map { started + $0 } ?? .min
            } else {
                unread = codec.slowRoles
            }
            if !slow.invalid.isEmpty { invalid += slow.invalid }
        }
        let reading = DeviceReading(device: spec.id, online: online, values: values, timestampNanos: started, error: error, invalid: invalid, unread: unread)
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

    /// Writes a batch request by request (safe values first, as `WriteQueue` ordered them),
    /// each verified by reading it back; the first failure ends the batch.
    private func performWrite(_ batch: WriteQueue.Batch, probe: Bool, client: ModbusClient?) {
        let (spec, _) = spec(batch.device)
        let started = MonotonicInstant.now().nanoseconds
        var written = 0
        var failure: FieldDeviceError?
        if let client {
            for request in batch.requests {
                do {
                    switch request.table {
                    case .coil:
                        if request.words.count == 1 { try client.writeCoil(unit: spec.unit, address: request.address, value: request.words[0] != 0) } else {
                            try client.writeCoils(unit: spec.unit, address: request.address, values: request.words.map { $0 != 0 })
                        }
                    case .holding:
                        if request.words.count == 1 { try client.writeRegister(unit: spec.unit, address: request.address, value: request.words[0]) } else {
                            try client.writeRegisters(unit: spec.unit, address: request.address, values: request.words)
                        }
                    case .discrete, .input:
                        failure = FieldDeviceError(device: spec.name, message: "\(request.table.rawValue) \(request.address) is read-only")
                    }
                    if failure != nil { break }
                    cond.withLock { state.stats.writes += 1; state.stats.transactions += 1 }
                    if request.verify {
                        var back: [UInt16] = []
                        try read(client, unit: spec.unit, block: .init(table: request.table, address: request.address, count: request.words.count), into: &back)
                        cond.withLock { state.stats.transactions += 1 }
                        if back != request.words {
                            cond.withLock { state.stats.verifyFailures += 1 }
                            failure = FieldDeviceError(device: spec.name, message: "write of \(request.table.rawValue) \(request.address)..\(Int(request.address) + request.words.count - 1) "
                                                       + "(\(request.points.joined(separator: ", "))) not confirmed: wrote \(request.words), read back \(back)")
                            break
                        }
                    }
                    written += 1
                } catch {
                    let loss: Bool
                    switch error.kind {
                    case .exception: loss = false
                    default: loss = true
                    }
                    failure = FieldDeviceError(device: spec.name, message: "\(error)", isCommunicationLoss: loss)
                    break
                }
            }
        } else {
            failure = FieldDeviceError(device: spec.name, message: "bus \(name) could not be set up", isCommunicationLoss: true)
        }
        let outcome: BusScheduler.Outcome = failure == nil ? .answered : (failure!.isCommunicationLoss ? .noAnswer : .refused)
        let transition = finished(.write(batch.device), probe: probe, started: started, outcome: outcome)
        let (done, handler) = cond.withLock {
            if failure != nil { state.stats.failures += 1 }
            return (state.writes.finish(batch, written: written, failure: failure), state.onReading)
        }
        if let failure {
            logger.warning("write failed", metadata: ["device": "\(spec.name)", "unit": "\(spec.unit)", "error": "\(failure.message)"])
        }
        logTransition(transition, spec, error: failure?.message)
        if transition?.wentOffline == true {
            // The control loop learns of it as from a poll: an offline reading.
            handler?(DeviceReading(device: spec.id, online: false, timestampNanos: started, error: failure?.message))
        }
        for (c, r) in done { c(r) }
    }
}
