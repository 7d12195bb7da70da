#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
public import Logging
import Foundation
import Protocols

/// The simulator could not start (address in use, serial port missing, socket path too long...).
public struct SimError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The field as the agent sees it: the reference devices of CONTRACT.md section 2 with physics,
/// served on Modbus TCP and/or RTU, simulated GPIO lines, and a control socket for tests and scripts.
///
/// All device state sits behind one lock; Modbus requests (both servers), the physics step and
/// control commands each run under it, so a write is seen by the physics at once and a `get`
/// never sees half a step.
///
/// Control protocol (unix stream socket, one text command per line, one JSON line per reply,
/// `{"ok":true,...}` or `{"ok":false,"error":"..."}`):
/// - `set <device> <signal> <value>`: luminaire `lamp_failure|driver_fault|over_temperature 0|1`;
///   presence `presence 0|1`, `lux N`; bollard `loop|photocell|emergency|motor_fault 0|1`;
///   signal-io `degraded 0|1`; any device `offline 0|1` (the unit stops answering Modbus).
/// - `get <device>`: `{"ok":true,"device","type","unit","offline", ...state}`.
/// - `stats`: `{"ok":true,"safety_violations":N,"violations":[...],"writes":N}`; `reset-stats`.
/// - `list`: the devices. `get-gpio`: `{"ok":true,"lines":{"presence-a":0,...}}`.
/// - `gpio <line> 0|1`: sets a simulated line (inputs as seen by the agent).
/// - `gpio-watch`: the connection becomes a GPIO link: the simulator sends
///   `{"line":"presence-a","value":0}` for every line, then one such line per change made by
///   others. The peer may send `gpio-out <line> 0|1` on it (no reply; visible in `get-gpio`;
///   unknown lines are added as outputs).
/// - `fault <device> none|exception <code>|slow <ms>|silent-after <n>`: injects a Modbus fault
///   into one unit (see `UnitFault`): every request answered with that exception, every answer
///   sent `ms` late, or the next `n` requests answered and then none. The reply names the new and
///   the previous mode and how many requests the previous one affected (`"hits"`); `get` shows
///   `"fault"` while one is set.
/// - `power-cycle <device>`: the unit restarts between two requests (too fast for a poll to
///   miss): its coils go off and its holding registers to 0, as at power-on, and its physics
///   sees that as a write (a running motor stops).
public final class FieldSimulator: @unchecked Sendable {
    /// How the physics advances: by a thread every `tick` of real time, or only by `advance(by:)`.
    public enum Physics: Sendable {
        case realTime, manual
    }

    public let config: SimConfig
    private let logger: Logger
    private let lock = EdgeRuntime.Lock()
    private let world = SimWorld()
    private let devices: [any SimDevice]
    private let byName: [String: any SimDevice]
    private let byUnit: [UInt8: any SimDevice]
    private var gpioLines: [SimConfig.GPIOLine]
    private var gpioValues: [String: Int] = [:]
    private var faults: [UInt8: UnitFaultState] = [:]
    private var servers: [ModbusServer] = []
    private var control: ControlSocketServer?
    private var physicsLoop: PhysicsLoop?
    private var running = false
    /// `--request-log`: one line per Modbus request and per `set` (see `logRequests(to:)`).
    private var requestLog: UnsafeMutablePointer<FILE>?

    /// Builds the devices of `config`; opens nothing until `start`.
    public init(config: SimConfig, logger: Logger = Logger(label: "edge.sim")) {
        self.config = config
        self.logger = logger
        var devices: [any SimDevice] = []
        for unit in config.units {
            switch unit.type {
            case .luminaire: devices.append(LuminaireSim(unit))
            case .presence: devices.append(PresenceSim(unit))
            case .bollard: devices.append(BollardSim(unit))
            case .signalIO: devices.append(SignalIOSim(unit))
            }
        }
        self.devices = devices
        byName = Dictionary(devices.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        byUnit = Dictionary(devices.map { ($0.unit, $0) }, uniquingKeysWith: { first, _ in first })
        gpioLines = config.gpio
        for line in config.gpio { gpioValues[line.name] = 0 }
    }

    deinit {
        stop()
        if let requestLog { fclose(requestLog) }
    }

    /// Appends one line per Modbus request served (before faults apply: what reached the unit)
    /// and per control `set` to `path`, with the simulator's CLOCK_MONOTONIC time in ns:
    /// `<t_ns> req <unit> <function> <address> <count>[ coils=<bits>]` (coils: the unit's coils
    /// after a coil write, `1010`), and `<t_ns> set <device> <signal> <value>`. Call before `start`.
    public func logRequests(to path: String) throws(SimError) {
        guard let f = fopen(path, "a") else { throw SimError("cannot open request log \(path): \(String(cString: strerror(errno)))") }
        setvbuf(f, nil, _IOLBF, 0)
        lock.withLock { requestLog = f }
    }

    /// One log line (lock held).
    private func logLineLocked(_ text: String) {
        guard let requestLog else { return }
        fputs("\(MonotonicInstant.now().nanoseconds) \(text)\n", requestLog)
    }

    /// Starts the Modbus servers, the control socket and (for `.realTime`) the physics thread.
    /// On failure everything already started is stopped again.
    public func start(physics: Physics = .realTime) throws(SimError) {
        guard !lock.withLock({ running }) else { return }
        let banks = Dictionary(devices.map { ($0.unit, $0.bank) }, uniquingKeysWith: { first, _ in first })
        let handler: ModbusServer.Handler = { [weak self] request, answer in
            self?.serve(request, answer)
        }
        var transports: [(String, ModbusTransport)] = []
        if let tcp = config.tcp { transports.append(("sim-tcp", .tcp(host: tcp.host, port: tcp.port))) }
        if let rtu = config.rtu { transports.append(("sim-rtu", rtu.transport)) }
        var started: [ModbusServer] = []
        do {
            for (name, transport) in transports {
                let server = try ModbusServer(bus: name, transport: transport, units: banks, logger: logger, handler: handler)
                try server.start()
                started.append(server)
            }
        } catch {
            started.forEach { $0.stop() }
            throw SimError("cannot serve Modbus: \(error)")
        }
        var controlServer: ControlSocketServer?
        if let path = config.control {
            do {
                let c = try ControlSocketServer(path: path, logger: logger, simulator: self)
                c.start()
                controlServer = c
            } catch {
                started.forEach { $0.stop() }
                throw error
            }
        }
        lock.withLock {
            servers = started
            control = controlServer
            running = true
        }
        if physics == .realTime {
            let loop = PhysicsLoop(tick: config.tick) { [weak self] dt in self?.step(dt) }
            loop.start()
            lock.withLock { physicsLoop = loop }
        }
        logger.info("simulator running", metadata: ["ready": .string(readyLine)])
    }

    /// Stops physics, servers and the control socket (its path is removed). Idempotent.
    public func stop() {
        let (loop, servers, control) = lock.withLock { () -> (PhysicsLoop?, [ModbusServer], ControlSocketServer?) in
            defer { physicsLoop = nil; self.servers = []; self.control = nil; running = false }
            return (physicsLoop, self.servers, self.control)
        }
        loop?.stop()
        servers.forEach { $0.stop() }
        control?.stop()
    }

    /// The TCP port Modbus is served on (the real one when the config said port 0).
    public var tcpPort: Int? {
        lock.withLock { servers.first { if case .tcp = $0.transport { return true } else { return false } } }?.port
    }

    /// The control socket path, if any.
    public var controlPath: String? { config.control }

    /// `edge-sim ready tcp=127.0.0.1:PORT rtu=PATH control=PATH` (parts present as configured).
    public var readyLine: String {
        var line = "edge-sim ready"
        if let tcp = config.tcp { line += " tcp=\(SimConfig.Endpoint(host: tcp.host, port: tcpPort ?? tcp.port))" }
        if let rtu = config.rtu { line += " rtu=\(rtu.device)" }
        if let control = config.control { line += " control=\(control)" }
        return line
    }

    /// Advances the physics by `duration` in steps of at most one tick (virtual time: for tests in
    /// `.manual` mode; also works alongside `.realTime`).
    public func advance(by duration: Duration) {
        lock.withLock {
            var remaining = duration
            while remaining > .zero {
                let dt = min(config.tick, remaining)
                stepLocked(dt)
                remaining -= dt
            }
        }
    }

    /// Runs one control command in-process (the same text protocol as the control socket, except
    /// `gpio-watch`) and returns its one-line JSON reply.
    public func command(_ line: String) -> String {
        switch handleControl(line, peer: nil) {
        case let .reply(text): return text
        case .silent: return JSON.ok()
        }
    }

    // MARK: Internals

    private func step(_ dt: Duration) {
        lock.withLock { stepLocked(dt) }
    }

    private func stepLocked(_ dt: Duration) {
        world.now += dt
        for device in devices { device.step(dt, world: world) }
    }

    /// The Modbus servers' hook: offline units stay silent, injected faults apply (`UnitFault`);
    /// writes reach the physics at once.
    private func serve(_ request: ModbusRequest, _ answer: ModbusAnswer) {
        lock.lock()
        defer { lock.unlock() }
        if requestLog != nil { logLineLocked("req \(request.unit) \(request.function) \(request.address) \(request.count)") }
        guard let device = byUnit[request.unit], !device.offline else { return }
        switch faults[request.unit]?.mode ?? .none {
        case .none:
            break
        case let .exception(code):
            faults[request.unit]?.hits += 1
            answer.exception(code)
            return
        case let .silentAfter(n):
            guard n > 0 else {
                faults[request.unit]?.hits += 1
                return
            }
            faults[request.unit]?.mode = .silentAfter(n - 1)
        case let .slow(delay):
            faults[request.unit]?.hits += 1
            // Wait without the lock: physics and control commands go on meanwhile.
            lock.unlock()
            MonotonicInstant.sleep(for: delay)
            lock.lock()
            guard !device.offline else { return }
        }
        answer()
        if request.isWrite, let table = request.table, Int(request.address) + request.count <= device.bank.count(table) {
            world.writes += 1
            device.didWrite(request, world: world)
            if requestLog != nil, table == .coil {
                let coils = (0..<device.bank.count(.coil)).map { device.bank[coil: $0] ? "1" : "0" }.joined()
                logLineLocked("wrote \(request.unit) \(request.function) \(request.address) \(request.count) coils=\(coils)")
            }
        }
    }

    enum ControlOutcome {
        case reply(String)
        /// Nothing is sent back (gpio-watch set-up, gpio-out on a watch link).
        case silent
    }

    /// Executes one command line from `peer` (nil: in-process).
    func handleControl(_ line: String, peer: ControlPeer?) -> ControlOutcome {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let verb = words.first else { return .reply(JSON.failure("empty command")) }
        lock.lock()
        defer { lock.unlock() }
        do {
            return try executeLocked(verb, Array(words.dropFirst()), peer: peer)
        } catch {
            if peer?.isWatcher == true {
                logger.warning("GPIO link command refused", metadata: ["command": .string(line), "error": .string(error.message)])
                return .silent
            }
            return .reply(JSON.failure(error.message))
        }
    }

    private func device(_ name: String) throws(ControlError) -> any SimDevice {
        guard let d = byName[name] else {
            throw ControlError("unknown device \(name) (known: \(devices.map(\.name).joined(separator: ", ")))")
        }
        return d
    }

    private func executeLocked(_ verb: String, _ args: [String], peer: ControlPeer?) throws(ControlError) -> ControlOutcome {
        func expect(_ n: Int, _ usage: String) throws(ControlError) {
            guard args.count == n else { throw ControlError("usage: \(usage)") }
        }
        switch verb {
        case "set":
            try expect(3, "set <device> <signal> <value>")
            let d = try device(args[0])
            if args[1] == "offline" {
                d.offline = try parseFlag(args[2], "offline")
                logger.info("device \(d.offline ? "offline" : "online")", metadata: ["device": .string(d.name)])
            } else {
                try d.set(args[1], args[2], world: world)
            }
            logLineLocked("set \(d.name) \(args[1]) \(args[2])")
            return .reply(JSON.ok([("device", .string(d.name)), ("signal", .string(args[1])), ("value", .string(args[2]))]))
        case "get":
            try expect(1, "get <device>")
            let d = try device(args[0])
            var fault: [(String, JSON)] = []
            if let f = faults[d.unit], f.mode != .none { fault = [("fault", .string(f.mode.description)), ("fault_hits", .int(f.hits))] }
            return .reply(JSON.ok([("device", .string(d.name)), ("type", .string(d.type.rawValue)), ("unit", .int(Int(d.unit))),
                                   ("offline", .bool(d.offline))] + fault + d.state()))
        case "fault":
            guard args.count >= 2 else { throw ControlError("usage: \(UnitFault.usage)") }
            let d = try device(args[0])
            let mode = try UnitFault.parse(Array(args.dropFirst()))
            let previous = faults[d.unit] ?? UnitFaultState()
            faults[d.unit] = mode == .none ? nil : UnitFaultState(mode: mode)
            logger.info("unit fault set", metadata: ["device": .string(d.name), "fault": .string(mode.description)])
            return .reply(JSON.ok([("device", .string(d.name)), ("fault", .string(mode.description)),
                                   ("previous", .string(previous.mode.description)), ("hits", .int(previous.hits))]))
        case "power-cycle":
            try expect(1, "power-cycle <device>")
            let d = try device(args[0])
            let coils = d.bank.count(.coil), holding = d.bank.count(.holding)
            for i in 0..<coils { d.bank[coil: i] = false }
            for i in 0..<holding { d.bank[holding: i] = 0 }
            if coils > 0 { d.didWrite(ModbusRequest(unit: d.unit, function: 15, table: .coil, address: 0, count: coils, isWrite: true), world: world) }
            if holding > 0 { d.didWrite(ModbusRequest(unit: d.unit, function: 16, table: .holding, address: 0, count: holding, isWrite: true), world: world) }
            logger.info("unit power-cycled", metadata: ["device": .string(d.name)])
            logLineLocked("power-cycle \(d.name)")
            return .reply(JSON.ok([("device", .string(d.name))]))
        case "list":
            try expect(0, "list")
            let items = devices.map { JSON.object([("device", .string($0.name)), ("type", .string($0.type.rawValue)), ("unit", .int(Int($0.unit)))]) }
            return .reply(JSON.ok([("devices", .array(items))]))
        case "stats":
            try expect(0, "stats")
            return .reply(JSON.ok([("safety_violations", .int(world.violationCount)),
                                   ("violations", .array(world.violations.map { .string($0) })),
                                   ("writes", .int(world.writes)), ("time_s", .number(world.now.seconds))]))
        case "reset-stats":
            try expect(0, "reset-stats")
            world.violationCount = 0
            world.violations = []
            world.writes = 0
            return .reply(JSON.ok())
        case "get-gpio":
            try expect(0, "get-gpio")
            return .reply(JSON.ok([("lines", .object(gpioLines.map { ($0.name, .int(gpioValues[$0.name] ?? 0)) }))]))
        case "gpio":
            try expect(2, "gpio <line> 0|1")
            guard gpioValues[args[0]] != nil else {
                throw ControlError("unknown GPIO line \(args[0]) (known: \(gpioLines.map(\.name).joined(separator: ", ")))")
            }
            let value = try parseFlag(args[1], "gpio") ? 1 : 0
            setLineLocked(args[0], value, from: peer)
            return .reply(JSON.ok([("line", .string(args[0])), ("value", .int(value))]))
        case "gpio-out":
            try expect(2, "gpio-out <line> 0|1")
            let value = try parseFlag(args[1], "gpio-out") ? 1 : 0
            if gpioValues[args[0]] == nil {
                guard args[0].unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }), !args[0].isEmpty else {
                    throw ControlError("bad GPIO line name \(args[0])")
                }
                gpioLines.append(SimConfig.GPIOLine(name: args[0], direction: .output))
                logger.notice("GPIO output line added by the agent", metadata: ["line": .string(args[0])])
            }
            setLineLocked(args[0], value, from: peer)
            if peer?.isWatcher == true { return .silent }
            return .reply(JSON.ok([("line", .string(args[0])), ("value", .int(value))]))
        case "gpio-watch":
            try expect(0, "gpio-watch")
            guard let peer, let control else { throw ControlError("gpio-watch works only on the control socket") }
            let initial = gpioLines.map { Self.lineEvent($0.name, gpioValues[$0.name] ?? 0) }
            control.addWatcher(peer, initial: initial)
            return .silent
        default:
            throw ControlError("unknown command \(verb) (set, get, fault, power-cycle, list, stats, reset-stats, gpio, get-gpio, gpio-watch, gpio-out)")
        }
    }

    private func setLineLocked(_ name: String, _ value: Int, from peer: ControlPeer?) {
        guard gpioValues[name] != value else { return }
        gpioValues[name] = value
        logger.debug("GPIO line changed", metadata: ["line": .string(name), "value": .stringConvertible(value)])
        control?.broadcast(Self.lineEvent(name, value), except: peer)
    }

    static func lineEvent(_ name: String, _ value: Int) -> String {
        JSON.object([("line", .string(name)), ("value", .int(value))]).text
    }
}

/// The real-time physics thread: steps every `tick` on absolute CLOCK_MONOTONIC deadlines, with
/// the measured elapsed time (capped at one second after a stall).
private final class PhysicsLoop: Sendable {
    private let tick: Duration
    private let body: @Sendable (Duration) -> Void
    private struct State {
        var stopping = false
        var thread: OSThread?
    }
    private let state = Locked(State())

    init(tick: Duration, body: @escaping @Sendable (Duration) -> Void) {
        self.tick = tick
        self.body = body
    }

    func start() {
        let thread = OSThread.start(name: "sim-physics") { [self] in
            let tickNanos = max(Int64(tick.seconds * 1e9), 1_000_000)
            var last = MonotonicInstant.now().nanoseconds
            var next = last + tickNanos
            while !state.withLock({ $0.stopping }) {
                MonotonicInstant.sleep(until: MonotonicInstant(nanoseconds: next))
                let now = MonotonicInstant.now().nanoseconds
                body(.nanoseconds(min(now - last, 1_000_000_000)))
                last = now
                next += tickNanos
                if next <= now { next = now + tickNanos }
            }
        }
        state.withLock { $0.thread = thread }
    }

    func stop() {
        let thread = state.withLock { s -> OSThread? in
            s.stopping = true
            defer { s.thread = nil }
            return s.thread
        }
        thread?.join()
    }
}
