import EdgeRuntime
@testable import EdgeAgent
import Drivers
import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

/// The control step's wiring, in-process on a virtual clock: readings in, writes out through
/// a recording `FieldPort` that refuses what a real bus would (points the profile lacks),
/// events collected. No threads, no sockets, no sleeps.
final class CoreRig: Sendable {
    /// One write the step sent, in order.
    struct Write: Sendable, Equatable {
        var device: String
        var points: [PointWrite]
        var priority: WritePriority
    }

    /// Records writes; refuses points a device's profile lacks, as the bus's encoder does.
    final class RecordingField: FieldPort {
        let names: [String]
        let codecs: [PointCodec?]
        let writes = Mutex<[Write]>([])
        /// Devices whose writes fail (a device that does not answer).
        let failing = Mutex<Set<String>>([])
        init(map: FieldMap) {
            names = map.names
            codecs = map.profiles.map { $0.map(PointCodec.init) }
        }
        func write(device: Int, points: [PointWrite], priority: WritePriority, completion: @escaping @Sendable (Result<Void, FieldDeviceError>) -> Void) {
            writes.withLock { $0.append(Write(device: names[device], points: points, priority: priority)) }
            if failing.withLock({ $0.contains(names[device]) }) {
                return completion(.failure(FieldDeviceError(device: names[device], message: "timeout")))
            }
            if let codec = codecs[device] {
                for p in points {
                    do { _ = try codec.encode(point: p.point, value: p.value) } catch {
                        return completion(.failure(FieldDeviceError(device: names[device], message: error.message)))
                    }
                }
            }
            completion(.success(()))
        }
    }

    let dir = ScratchDir("core-rig")
    let config: AgentConfig
    let core: ControlCore
    let inbox = ControlInbox()
    let field: RecordingField
    /// Events the step handed to the uplink.
    final class EventLog: Sendable { let events = Mutex<[AgentEvent]>([]) }
    let log = EventLog()
    let clock = Mutex(MonotonicInstant(nanoseconds: 10_000_000_000_000))

    /// `devices`, `extra` sections and extra profile files (name -> YAML) on a TCP bus polled every 50 ms.
    /// `restoring`, `safetyStore`: as `ControlCore`'s; `start`: the virtual clock's start (to go on from another rig's).
    init(devices: String, extra: String = "", profiles: [String: String] = [:], board: String? = nil, wall: Date = Date(timeIntervalSince1970: 1_764_806_400),
         restoring: SafetyState? = nil, safetyStore: SafetyStateStore? = nil, start: MonotonicInstant? = nil) throws {
        if let start { clock.withLock { $0 = start } }
        let profileDir = dir.file("Profiles")
        try FileManager.default.createDirectory(atPath: profileDir, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: ConfigFixture.profiles) where file.hasSuffix(".yaml") {
            try FileManager.default.copyItem(atPath: ConfigFixture.profiles + "/" + file, toPath: profileDir + "/" + file)
        }
        for (name, text) in profiles { _ = dir.write("Profiles/\(name).yaml", text) }
        let dir = self.dir
        var boardPath = ConfigFixture.simBoard
        if let board { boardPath = dir.write("board.yaml", board) }
        let text = """
        gateway: {id: rig, location: {lat: 47.32, lon: 5.04}, timezone: Europe/Paris, state_dir: state, control_socket: run/c.sock}
        uplink: {broker: "mqtt://127.0.0.1:1883", telemetry_interval: 60s}
        board: \(boardPath)
        profiles_dir: \(profileDir)
        buses:
          field: {tcp: "127.0.0.1:1502", timeout: 200ms, poll: 50ms}
        devices:
        \(devices)
        \(extra)
        """
        config = try ConfigLoader.load(text: text, path: dir.file("agent.yaml"))
        let map = FieldMap(config: config)
        field = RecordingField(map: map)
        let log = self.log
        core = ControlCore(config: config, field: field, inbox: inbox, logger: Logger(label: "test.core"), wallClock: { wall },
                           restoring: restoring, safetyStore: safetyStore, onEvents: { e in
            log.events.withLock { $0 += e }
        })
    }

    var now: MonotonicInstant { clock.withLock { $0 } }
    func id(_ name: String) -> Int { core.map.ids[name]! }

    /// A poll of `device` begun at `at` (default now) with these values; `unread`: the roles of
    /// the blocks it did not read (a poll between two reads of the slow blocks).
    func poll(_ device: String, _ values: [PointRole: Double], online: Bool = true, invalid: [String] = [], at: MonotonicInstant? = nil,
              unread: PointRoleSet = PointRoleSet()) {
        var v = PointValues()
        for (r, x) in values where !unread.contains(r) { v[r] = x }
        inbox.post(.reading(DeviceReading(device: id(device), online: online, values: online ? v : PointValues(),
                                          timestampNanos: (at ?? now).nanoseconds, error: online ? nil : "timeout", invalid: invalid,
                                          unread: online ? unread : PointRoleSet())))
    }

    /// Advances the clock by `d` and runs one step.
    func step(_ d: Duration = .milliseconds(10)) {
        let t = clock.withLock { $0 = $0 + d; return $0 }
        core.step(now: t)
    }

    /// Runs the step every 10 ms for `d`, calling `each` first (a poll, say) every `every`.
    func run(_ d: Duration, every: Duration = .milliseconds(50), _ each: () -> Void = {}) {
        var elapsed = Duration.zero
        var sincePoll = every
        while elapsed < d {
            if sincePoll >= every { each(); sincePoll = .zero }
            step()
            elapsed += .milliseconds(10)
            sincePoll += .milliseconds(10)
        }
    }

    /// An edge of a board line, at now.
    func edge(_ line: String, _ value: Bool, initial: Bool = false) {
        inbox.post(.edge(GPIOEdge(line: line, value: value, timestamp: now, initial: initial)))
    }

    /// A command as the control socket sends it: parsed by the one parser, then run by the step's executor.
    func command(_ action: String, _ target: String, _ args: [String: ControlValue] = [:]) -> ControlResponse {
        switch CommandAction.parse(action: action, args: args, target: target, targetKind: CommandAction.TargetKind(of: target, in: config), source: .local) {
        case .success(let a): return core.execute(AgentCommand(origin: .local(uid: 0), id: "t", target: target, action: a, args: args), now: now)
        case .failure(let e): return e.response
        }
    }

    var writes: [Write] { field.writes.withLock { $0 } }
    func writes(to device: String) -> [Write] { writes.filter { $0.device == device } }
    func clearWrites() { field.writes.withLock { $0.removeAll() } }

    var alarms: [(String, String, Bool)] {
        log.events.withLock { $0 }.compactMap { e in
            if case .control(let c) = e, case .alarm(let a) = c.kind { return (c.source, a.code.rawValue, a.active) }
            return nil
        }
    }

    var telemetry: [(String, [String: ControlValue])] {
        log.events.withLock { $0 }.compactMap { e in
            if case .telemetry(let d, let v) = e { return (d, v) }
            return nil
        }
    }
}

@Suite struct ControlWiringTests {
    static let bollardDown: [PointRole: Double] = [.atTop: 0, .atBottom: 1, .loop: 0, .photocell: 0, .motorFault: 0, .emergency: 0]
    static let bollardMidway: [PointRole: Double] = [.atTop: 0, .atBottom: 0, .loop: 0, .photocell: 0, .motorFault: 0, .emergency: 0]

    static func values(_ w: CoreRig.Write) -> [String: Double] {
        Dictionary(w.points.map { ($0.point, $0.value) }, uniquingKeysWith: { _, b in b })
    }

    /// A vendor bollard whose motor_down coil sits below motor_up, without a buzzer, with a
    /// traffic light: the reversal writes motor_up off before motor_down on; no buzzer is
    /// ever written (the bollard moves at all); the traffic light follows the controller.
    @Test func vendorBollardWritesOffBeforeOnOnlyItsPointsAndTheTrafficLight() throws {
        let vendor = """
        name: vendor-bollard
        kind: bollard
        points:
          motor_down:  {table: coil, address: 0}
          motor_up:    {table: coil, address: 1}
          warning:     {table: coil, address: 2}
          traffic:     {table: coil, address: 3}
          at_top:      {table: discrete, address: 0}
          at_bottom:   {table: discrete, address: 1}
          loop:        {table: discrete, address: 2}
          photocell:   {table: discrete, address: 3}
          emergency:   {table: discrete, address: 5}
        """
        let rig = try CoreRig(devices: "  b1: {profile: vendor-bollard, bus: field, unit: 30}",
                              extra: "bollards:\n  b1: {pre_warning: 300ms, travel_timeout: 5s}", profiles: ["vendor-bollard": vendor])
        rig.poll("b1", Self.bollardDown)
        rig.step()
        let atRest = try #require(rig.writes(to: "b1").last)
        #expect(Self.values(atRest)["traffic"] == 1, "confirmed down: green written")
        #expect(rig.command("raise", "b1").ok)
        rig.run(.milliseconds(500)) { rig.poll("b1", Self.bollardDown) }
        #expect(rig.writes.allSatisfy { !$0.points.contains { $0.point == "buzzer" } }, "no buzzer point: never written")
        #expect(rig.writes(to: "b1").contains { Self.values($0)["motor_up"] == 1 }, "the bollard moves")
        let rising = try #require(rig.writes(to: "b1").last { Self.values($0)["motor_up"] == 1 })
        #expect(Self.values(rising)["traffic"] == 0, "red while raising")
        rig.clearWrites()
        var occupied = Self.bollardMidway
        occupied[.loop] = 1
        rig.poll("b1", occupied)
        rig.step()
        let reversal = try #require(rig.writes(to: "b1").first)
        let order = reversal.points.map(\.point)
        #expect(Self.values(reversal)["motor_up"] == 0 && Self.values(reversal)["motor_down"] == 1)
        #expect(order.firstIndex(of: "motor_up")! < order.firstIndex(of: "motor_down")!, "off before on: \(order)")
        #expect(reversal.priority == .safety)
    }

    /// A luminaire reporting its status as int16 -1 (0xFFFF) or a value that is not finite
    /// does not crash the agent: the values are dropped, `invalid_value` is raised and
    /// cleared, and no lamp alarm is judged on them.
    @Test func invalidRegisterValuesRaiseAnAlarmAndAreNotJudged() throws {
        let odd = """
        name: odd-luminaire
        kind: luminaire
        points:
          setpoint: {table: holding, address: 0}
          level:    {table: input, address: 0}
          power_w:  {table: input, address: 1}
          status:   {table: input, address: 4, type: int16, bits: {0: lamp_failure, 1: driver_fault}}
        """
        let rig = try CoreRig(devices: "  l1: {profile: odd-luminaire, bus: field, unit: 1}",
                              extra: "lighting:\n  g: {lamps: [l1], base: 30, boost: 100}", profiles: ["odd-luminaire": odd])
        let codec = PointCodec(profile: rig.config.profiles["odd-luminaire"]!)
        var values = PointValues()
        let invalid = codec.decode(blocks: codec.blocks.map { [UInt16](repeating: 0xFFFF, count: $0.count) }, into: &values)
        #expect(invalid.contains("status: -1 is out of range (0 to 65535)"), "\(invalid)")
        #expect(values[.status] == nil && values[.lampFailure] == nil, "a bad status word gives no bits either")
        #expect(values[.level] == nil, "65535 % is out of range too")
        #expect(values[.powerW] == Double(65535))
        // A profile the loader would refuse (a scale that overflows): still no trap, no infinity.
        var wild = rig.config.profiles["odd-luminaire"]!
        wild.points["power_w"]!.scale = 1e308
        wild.points["level"]!.scale = .nan
        let wildCodec = PointCodec(profile: wild)
        var wildValues = PointValues()
        let wildInvalid = wildCodec.decode(blocks: wildCodec.blocks.map { [UInt16](repeating: 0xFFFF, count: $0.count) }, into: &wildValues)
        #expect(wildInvalid.contains { $0.hasPrefix("power_w: inf is not a finite number") }, "\(wildInvalid)")
        #expect(wildInvalid.contains { $0.hasPrefix("level: nan is not a finite number") }, "\(wildInvalid)")
        #expect(wildValues.isEmpty)
        rig.inbox.post(.reading(DeviceReading(device: rig.id("l1"), online: true, values: values, timestampNanos: rig.now.nanoseconds, invalid: invalid)))
        rig.step()
        #expect(rig.alarms.map { "\($0.0)/\($0.1)=\($0.2)" } == ["l1/invalid_value=true"])
        rig.poll("l1", [.level: 30, .setpoint: 30, .status: 0, .lampFailure: 0, .driverFault: 0])
        rig.step()
        #expect(rig.alarms.map { "\($0.0)/\($0.1)=\($0.2)" } == ["l1/invalid_value=true", "l1/invalid_value=false"])
    }

    /// A presence sensor that answers again while it still detects is taken at its word.
    @Test func aPresenceSensorBackOnlineWhileDetectingBoosts() throws {
        let rig = try CoreRig(devices: "  l1: {profile: ref-luminaire, bus: field, unit: 1}\n  p1: {profile: ref-presence, bus: field, unit: 20}",
                              extra: "lighting:\n  g: {lamps: [l1], presence: [p1], base: 30, boost: 100, hold: 1s, fade_up: 0ms, fade_down: 0ms}")
        rig.poll("l1", [.level: 30, .setpoint: 30])
        rig.poll("p1", [.presence: 1])
        rig.step()
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.level == 100)
        rig.poll("p1", [:], online: false)
        rig.run(.seconds(3))
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.level == 100, "an offline sensor counts as detecting")
        // Back online, still detecting, polled as usual: the group must know it detects, not
        // start its hold from the return and go dark under a person.
        rig.run(.seconds(3)) { rig.poll("p1", [.presence: 1]) }
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.level == 100, "back online and detecting: still boosted")
        rig.run(.seconds(3)) { rig.poll("p1", [.presence: 0]) }
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.level == 30, "nobody, hold over: base")
    }

    /// A driver that reports 0 % while commanded and draws nothing has failed.
    @Test func lampFailureIsJudgedOnTheCommandedLevel() throws {
        let rig = try CoreRig(devices: "  l1: {profile: ref-luminaire, bus: field, unit: 1}",
                              extra: "lighting:\n  g: {lamps: [l1], base: 80, boost: 100, rated_w: 60, warm_up: 1s}")
        rig.poll("l1", [.level: 0, .setpoint: 0, .powerW: 0, .status: 0, .lampFailure: 0])
        rig.step()
        #expect(rig.writes(to: "l1").contains { Self.values($0)["setpoint"] == 80 })
        rig.run(.seconds(3)) { rig.poll("l1", [.level: 0, .setpoint: 80, .powerW: 0, .status: 0, .lampFailure: 0]) }
        #expect(rig.alarms.contains { $0 == ("l1", "lamp_failure", true) }, "\(rig.alarms)")
    }

    /// Request on and off go through one queue, in order.
    @Test func priorityRequestOnAndOffShareOneQueue() throws {
        let rig = try CoreRig(devices: "  j: {profile: ref-signal-io, bus: field, unit: 40}",
                              extra: "priority:\n  north: {device: j, approach: 1, max_hold: 60s, min_interval: 0s}")
        rig.poll("j", [.ack1: 0, .degraded: 0, .request1: 0])
        rig.step()
        #expect(rig.command("priority_request", "north", ["vehicle": .string("bus-1")]).ok)
        rig.step()
        rig.step()
        #expect(rig.command("priority_cancel", "north", ["vehicle": .string("bus-1")]).ok)
        rig.step()
        let requests = rig.writes(to: "j").filter { $0.points.contains { $0.point == "request_1" } }
        #expect(requests.map { Self.values($0)["request_1"] } == [0, 1, 0])
        #expect(requests.allSatisfy { $0.priority == .safety }, "\(requests.map(\.priority))")
    }

    /// The acknowledgement's age: a signal I/O not polled for longer than `signalMaxAge` counts
    /// as offline for its approaches (a request is refused, not sent to a controller whose
    /// state is unknown) until a fresh poll.
    @Test func aSignalIONotPolledInTimeCountsAsOffline() throws {
        let rig = try CoreRig(devices: "  j: {profile: ref-signal-io, bus: field, unit: 40}",
                              extra: "priority:\n  north: {device: j, approach: 1, min_interval: 0s}")
        rig.poll("j", [.ack1: 0, .degraded: 0, .request1: 0])
        rig.step()
        rig.step(ControlCore.signalMaxAge + .milliseconds(10))
        #expect(rig.command("priority_request", "north", ["vehicle": .string("bus-1")]).code == .deviceOffline)
        rig.poll("j", [.ack1: 0, .degraded: 0, .request1: 0])
        rig.step()
        #expect(rig.command("priority_request", "north", ["vehicle": .string("bus-1")]).ok)
    }

    /// Maintenance: `io write bollard motor_down 1` during a rise never leaves both coils on
    /// (motor_up off first, in the same write), and the automation stays off the device until
    /// maintenance ends; then it is written again.
    @Test func aMaintenanceWriteDuringARiseCannotEnergiseBothCoils() throws {
        let rig = try CoreRig(devices: "  b1: {profile: ref-bollard, bus: field, unit: 30}",
                              extra: "bollards:\n  b1: {pre_warning: 300ms, travel_timeout: 5s}")
        rig.poll("b1", Self.bollardDown)
        rig.step()
        #expect(rig.command("raise", "b1").ok)
        rig.run(.milliseconds(500)) { rig.poll("b1", Self.bollardDown) }
        #expect(rig.writes(to: "b1").last.map { Self.values($0)["motor_up"] } == 1)
        #expect(rig.command("maintenance", "", ["on": .bool(true)]).ok)
        rig.clearWrites()
        #expect(rig.command("io_write", "b1", ["point": .string("motor_down"), "value": .number(1)]).ok)
        let w = try #require(rig.writes(to: "b1").first)
        let order = w.points.map(\.point)
        #expect(Self.values(w)["motor_up"] == 0 && Self.values(w)["motor_down"] == 1)
        #expect(order.firstIndex(of: "motor_up")! < order.firstIndex(of: "motor_down")!, "\(order)")
        rig.clearWrites()
        rig.run(.seconds(1)) { rig.poll("b1", Self.bollardMidway) }
        #expect(rig.writes(to: "b1").isEmpty, "automation paused: \(rig.writes(to: "b1"))")
        #expect(rig.core.snapshot(now: rig.now).devices["b1"]?.manual == true)
        #expect(rig.command("io_write", "b1", ["point": .string("motor_up"), "value": .number(1)]).code == .interlock)
        #expect(rig.command("raise", "b1").code == .interlock)
        #expect(rig.command("maintenance", "", ["on": .bool(false)]).ok)
        rig.step()
        #expect(!rig.writes(to: "b1").isEmpty, "maintenance over: the automation writes again")
    }

    /// Offline -> alarm and device event; a device that comes back with other outputs than
    /// written (it rebooted) is written again; telemetry passes its deadband.
    @Test func offlineRebootAndTelemetryDeadband() throws {
        let rig = try CoreRig(devices: "  l1: {profile: ref-luminaire, bus: field, unit: 1}",
                              extra: "lighting:\n  g: {lamps: [l1], base: 30, boost: 100}")
        rig.poll("l1", [.level: 30, .setpoint: 30, .powerW: 10])
        rig.step()
        rig.poll("l1", [:], online: false)
        rig.step()
        #expect(rig.core.snapshot(now: rig.now).alarms.contains { $0.device == "l1" && $0.code == "comm_lost" })
        rig.clearWrites()
        rig.poll("l1", [.level: 0, .setpoint: 0, .powerW: 0])   // rebooted: setpoint lost
        rig.step()
        #expect(rig.writes(to: "l1").contains { Self.values($0)["setpoint"] == 30 }, "written again after the reboot")
        // Telemetry: a 1 % change within 60 s is held back; a 50 % one goes out (after 1 s).
        let before = rig.telemetry.count
        rig.run(.seconds(2)) { rig.poll("l1", [.level: 30, .setpoint: 30, .powerW: 10.1]) }
        rig.run(.seconds(2)) { rig.poll("l1", [.level: 30, .setpoint: 30, .powerW: 10.05]) }
        let held = rig.telemetry.count
        rig.run(.seconds(2)) { rig.poll("l1", [.level: 30, .setpoint: 30, .powerW: 15]) }
        #expect(held - before <= 1, "within the deadband: \(rig.telemetry.suffix(3))")
        #expect(rig.telemetry.count > held, "beyond the deadband: sent")
    }
}

/// Bollards and signal I/O wired to GPIO lines, one line per point: the same interlocks.
@Suite struct GPIOWiredDeviceTests {
    static let board = """
    name: wired
    gpio:
      backend: simulated
      lines:
        b-up:     {chip: c, offset: 0, direction: output}
        b-down:   {chip: c, offset: 1, direction: output}
        b-warn:   {chip: c, offset: 2, direction: output}
        b-top:    {chip: c, offset: 3, direction: input}
        b-bottom: {chip: c, offset: 4, direction: input}
        b-loop:   {chip: c, offset: 5, direction: input}
        b-photo:  {chip: c, offset: 6, direction: input}
        b-key:    {chip: c, offset: 7, direction: input}
        j-req:    {chip: c, offset: 8, direction: output}
        j-ack:    {chip: c, offset: 9, direction: input}
    """
    static let devices = """
      b1: {kind: bollard, gpio: {motor_up: b-up, motor_down: b-down, warning: b-warn, at_top: b-top, at_bottom: b-bottom, loop: b-loop, photocell: b-photo, emergency: b-key}}
      j: {kind: signal-io, gpio: {request_1: j-req, ack_1: j-ack}}
    """
    static let extra = """
    bollards:
      b1: {pre_warning: 300ms, travel_timeout: 5s}
    priority:
      north: {device: j, approach: 1, min_interval: 0s}
    """

    @Test func aGPIOBollardRaisesOnlyWithClearInputsAndReversesOffBeforeOn() throws {
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, board: Self.board)
        for (line, v) in [("b-top", false), ("b-bottom", true), ("b-loop", false), ("b-photo", false)] { rig.edge(line, v, initial: true) }
        rig.step()
        #expect(rig.command("raise", "b1").code == .deviceOffline, "not every input known yet")
        rig.edge("b-key", false, initial: true)
        rig.step()
        rig.edge("b-loop", true)
        rig.step()
        #expect(rig.command("raise", "b1").code == .interlock, "a vehicle on the loop")
        rig.edge("b-loop", false)
        rig.step()
        #expect(rig.command("raise", "b1").ok)
        rig.run(.milliseconds(400))
        let up = try #require(rig.writes(to: "b1").last)
        #expect(ControlWiringTests.values(up)["motor_up"] == 1)
        #expect(!up.points.contains { $0.point == "buzzer" || $0.point == "traffic" }, "points without a line are not written")
        rig.edge("b-bottom", false)
        rig.step()
        rig.clearWrites()
        rig.edge("b-photo", true)
        rig.step()
        let reversal = try #require(rig.writes(to: "b1").first)
        let order = reversal.points.map(\.point)
        #expect(order.first == "motor_up" && order.last == "motor_down", "off first, the motor last: \(order)")
        #expect(ControlWiringTests.values(reversal)["motor_up"] == 0 && ControlWiringTests.values(reversal)["motor_down"] == 1)
    }

    @Test func aGPIOSignalIOCarriesThePriorityRequestAndItsAcknowledgement() throws {
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, board: Self.board)
        rig.edge("j-ack", false, initial: true)
        rig.step()
        #expect(rig.command("priority_request", "north", ["vehicle": .string("bus-9")]).ok)
        rig.step()
        #expect(rig.writes(to: "j").last.map { ControlWiringTests.values($0)["request_1"] } == 1)
        rig.edge("j-ack", true)
        rig.step()
        let events = rig.log.events.withLock { $0 }
        #expect(events.contains { if case .control(let c) = $0 { return c.type == "priority.granted" } else { return false } })
    }

    /// FieldIO drives the lines in the order given (off before on) on the board's backend.
    @Test func fieldIOWritesAGPIOBollardsLinesInOrder() throws {
        let rig = try CoreRig(devices: Self.devices, extra: Self.extra, board: Self.board)
        let field = FieldIO(config: rig.config, logger: Logger(label: "test"))
        try field.start(onReading: { _ in }, onEdge: { _ in })
        defer { field.stop() }
        let sim = try #require(field.gpio as? SimulatedGPIOBackend)
        let done = Mutex<[Bool]>([])
        field.write(device: "b1", points: [PointWrite("motor_up", 1), PointWrite("warning", 1)], priority: .safety) { r in
            done.withLock { if case .success = r { $0.append(true) } else { $0.append(false) } }
        }
        #expect(sim.level(of: "b-up") == true && sim.level(of: "b-warn") == true && sim.level(of: "b-down") == false)
        field.write(device: "b1", points: [PointWrite("motor_up", 0), PointWrite("motor_down", 1)], priority: .safety) { r in
            done.withLock { if case .success = r { $0.append(true) } else { $0.append(false) } }
        }
        #expect(sim.level(of: "b-up") == false && sim.level(of: "b-down") == true)
        field.write(device: "b1", points: [PointWrite("buzzer", 1)], priority: .safety) { r in
            done.withLock { if case .success = r { $0.append(true) } else { $0.append(false) } }
        }
        #expect(done.withLock { $0 } == [true, true, false], "a point without a line is refused")
    }
}

/// Random register blocks through decode and the control step (the fuzz target
/// FuzzFieldData does the same with libFuzzer's inputs): nothing traps, no write carries a
/// value that is not a number, coils get 0 or 1, a bollard's motor coils are never both on.
@Suite struct FieldDataPropertyTests {
    @Test func randomRegisterBlocksNeverCrashOrActuateNonsense() throws {
        let rig = try CoreRig(devices: """
          l1: {profile: ref-luminaire, bus: field, unit: 1}
          p1: {profile: ref-presence, bus: field, unit: 20}
          b1: {profile: ref-bollard, bus: field, unit: 30}
          j: {profile: ref-signal-io, bus: field, unit: 40}
        """, extra: """
        lighting:
          g: {lamps: [l1], presence: [p1], base: 30, boost: 100, hold: 1s, rated_w: 60}
        bollards:
          b1: {pre_warning: 100ms, travel_timeout: 2s}
        priority:
          north: {device: j, approach: 1, max_hold: 5s, min_interval: 0s}
        """)
        var rng = ControlTest.SplitMix64(seed: 0xF1E1_D0DA)
        let devices = ["l1", "p1", "b1", "j"]
        let codecs = devices.map { PointCodec(profile: rig.config.profiles[rig.config.devices[$0]!.attachment.profileName!]!) }
        var invalidSeen = 0
        for i in 0..<5_000 {
            let k = rng.int(0...3)
            let codec = codecs[k]
            // The bollard mostly reports a plausible world (down, clear), so that it moves at
            // times; everything else, and the bollard otherwise, is random.
            if k == 2, rng.chance(0.7) {
                var v = PointValues()
                for (r, x) in ControlWiringTests.bollardDown { v[r] = x }
                rig.inbox.post(.reading(DeviceReading(device: rig.id("b1"), online: true, values: v, timestampNanos: rig.now.nanoseconds)))
                rig.step(.milliseconds(Int64(rng.int(1...60))))
                continue
            }
            let blocks = codec.blocks.map { b in (0..<b.count).map { _ in
                switch rng.int(0...3) {
                case 0: UInt16(rng.int(0...1))
                case 1: UInt16.max
                case 2: UInt16(rng.int(0...120))
                default: UInt16(truncatingIfNeeded: rng.next())
                }
            } }
            var values = PointValues()
            let invalid = codec.decode(blocks: blocks, into: &values)
            if !invalid.isEmpty { invalidSeen += 1 }
            let online = rng.chance(0.9)
            rig.inbox.post(.reading(DeviceReading(device: rig.id(devices[k]), online: online, values: online ? values : PointValues(),
                                                  timestampNanos: rig.now.nanoseconds - Int64(rng.int(0...400)) * 1_000_000, invalid: online ? invalid : [])))
            if i % 7 == 0 { _ = rig.command(["raise", "lower", "emergency_lower", "clear_emergency"][rng.int(0...3)], "b1") }
            if i % 11 == 0 { _ = rig.command("priority_request", "north", ["vehicle": .string("v\(i % 3)")]) }
            rig.step(.milliseconds(Int64(rng.int(1...80))))
        }
        #expect(invalidSeen > 100, "the random blocks must reach the invalid paths")
        for w in rig.writes {
            for p in w.points {
                #expect(p.value.isFinite, "\(w)")
                if ["motor_up", "motor_down", "warning", "buzzer", "traffic", "request_1"].contains(p.point) { #expect(p.value == 0 || p.value == 1, "\(w)") }
            }
            let v = ControlWiringTests.values(w)
            #expect(!(v["motor_up"] == 1 && v["motor_down"] == 1), "both coils in one write: \(w)")
        }
        #expect(rig.writes(to: "b1").contains { ControlWiringTests.values($0)["motor_up"] == 1 }, "the walk must move the bollard at times")
    }
}

extension DeviceConfig.Attachment {
    var profileName: String? {
        if case .modbus(let p, _, _) = self { return p }
        return nil
    }
}

/// The status snapshot built by hand for the control protocol equals its Codable form.
@Suite struct StatusSnapshotTests {
    @Test func theHandBuiltValueEqualsTheCodableForm() throws {
        let rig = try CoreRig(devices: """
          l1: {profile: ref-luminaire, bus: field, unit: 1}
          b1: {profile: ref-bollard, bus: field, unit: 30}
          j: {profile: ref-signal-io, bus: field, unit: 40}
          p2: {gpio: presence-a}
        """, extra: """
        lighting:
          g: {lamps: [l1], presence: [p2], base: 30, boost: 100}
        bollards:
          b1: {pre_warning: 300ms, travel_timeout: 5s}
        priority:
          north: {device: j, approach: 1}
        """)
        rig.poll("l1", [.level: 30, .setpoint: 30, .status: 0, .lampFailure: 0])
        rig.poll("b1", ControlWiringTests.bollardDown)
        rig.poll("j", [:], online: false)
        rig.step()
        _ = rig.command("set_level", "g", ["level": .number(50), "duration_s": .number(60)])
        rig.step()
        let s = rig.core.snapshot(now: rig.now)
        #expect(s.controlValue == s.encodedControlValue)
        #expect(s.controlValue.object?["bollards"]?.object?["b1"]?.object?["motor_up"] == .bool(false))
    }
}

/// A local command either runs or is reported as not run, never both: the waiter that gives
/// up withdraws the command before the loop claims it, and the loop skips a withdrawn one;
/// a command the loop has claimed is waited for to its real outcome.
@Suite struct PendingCommandTests {
    static func rig() throws -> CoreRig {
        let rig = try CoreRig(devices: """
          l1: {profile: ref-luminaire, bus: field, unit: 1}
        """, extra: """
        lighting:
          g: {lamps: [l1], base: 30, boost: 100}
        """)
        rig.poll("l1", [.level: 30, .setpoint: 30, .status: 0, .lampFailure: 0])
        rig.step()
        return rig
    }

    static func setLevel(_ level: Int) -> AgentCommand {
        AgentCommand(origin: .local(uid: 0), id: "t", target: "g", action: .setLevel(level: level, duration: .seconds(60)), args: [:])
    }

    /// The loop is busy (it does not step) past the waiter's patience: the technician is told
    /// `timeout`, and when the loop steps later the command does not run.
    @Test func aCommandAnsweredTimeoutNeverRunsLater() throws {
        let rig = try Self.rig()
        let pending = PendingCommand(Self.setLevel(80))
        rig.inbox.post(.command(pending))
        let response = pending.wait(timeout: .zero)
        #expect(response.code == .timeout)
        #expect(response.message?.contains("not run") == true)
        rig.step()
        rig.step()
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.override == nil, "a command answered `timeout` ran anyway")
        #expect(!rig.writes(to: "l1").contains { $0.points.contains { $0.value == 80 } })
    }

    /// The loop took it first: the waiter gets the real outcome, whatever its timeout.
    @Test func aCommandTheLoopTookIsAnsweredWithItsOutcome() throws {
        let rig = try Self.rig()
        let pending = PendingCommand(Self.setLevel(70))
        rig.inbox.post(.command(pending))
        rig.step()
        #expect(pending.wait(timeout: .zero) == .success())
        #expect(rig.core.snapshot(now: rig.now).lighting["g"]?.override == 70)
    }

    /// A loop thread stepping while waiters give up at random instants: every answer is
    /// either `timeout` (and that level never shows) or the outcome (and it ran).
    @Test func racingWaitersAndTheLoopNeverAnswerBoth() throws {
        let rig = try Self.rig()
        let ran = Mutex<[Int]>([])
        let answeredRun = Mutex<[Int]>([])
        let stop = Mutex(false)
        let stopped = DispatchSemaphore(value: 0)
        let loop = Thread {
            while !stop.withLock({ $0 }) {
                rig.step(.milliseconds(1))
                if let o = rig.core.snapshot(now: rig.now).lighting["g"]?.override { ran.withLock { if $0.last != o { $0.append(o) } } }
            }
            stopped.signal()
        }
        loop.start()
        for i in 0..<60 {
            let level = 20 + i
            let pending = PendingCommand(Self.setLevel(level))
            rig.inbox.post(.command(pending))
            let r = pending.wait(timeout: .microseconds(Int64(i % 4) * 50))
            if r.ok { answeredRun.withLock { $0.append(level) } } else { #expect(r.code == .timeout) }
        }
        // Let the loop drain what is left, then stop it.
        let last = PendingCommand(Self.setLevel(99))
        rig.inbox.post(.command(last))
        #expect(last.wait(timeout: .seconds(60)).ok)
        stop.withLock { $0 = true }
        stopped.wait()
        // One command at most runs per step here (each waiter has its answer before the next
        // is posted), so every override that ran shows: exactly those answered ok.
        let seen = Set(ran.withLock { $0 })
        let answered = Set(answeredRun.withLock { $0 }).union([99])
        #expect(seen == answered, "ran but answered timeout: \(seen.subtracting(answered).sorted()); answered ok but not run: \(answered.subtracting(seen).sorted())")
    }
}
