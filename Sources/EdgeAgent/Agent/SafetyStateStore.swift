import FoundationEssentials
import Logging
public import EdgeRuntime

/// Safety state that outlives a control core: what a reload carries from the old core to the
/// new one (`ControlCore.exportSafetyState()`, `ControlCore(..., restoring:)`), and the part
/// of it that protects people, which `SafetyStateStore` keeps in `state_dir` for a restart.
///
/// Keyed by config id (device or lighting group name). Rules:
/// - A reload carries every entry whose id is still configured with the same kind (a bollard
///   id that is still a bollard, a group still a group, a lamp still a grouped luminaire);
///   devices removed by the reload drop their state, and a device whose kind changed starts
///   clean (its entry is looked up only in its old kind's table).
/// - Durations (hold, override, boost) are what was left at `takenAt`; the new core counts the
///   time from `takenAt` to its first step off them (nil `takenAt`: from its first step).
/// - A restart keeps only the bollards' emergency latch, latched faults and hold
///   (`BollardController.CarryOver.durable`); lamp and group overrides and the lighting boost
///   are not kept (lamps fall back to schedule and presence after a restart).
public struct SafetyState: Sendable, Equatable {
    /// A lamp's own override (a `set_level` on one luminaire).
    public struct LampOverride: Sendable, Equatable {
        public var level: Int
        public var remaining: Duration
        public init(level: Int, remaining: Duration) {
            self.level = level
            self.remaining = remaining
        }
    }

    public var bollards: [String: BollardController.CarryOver] = [:]
    public var groups: [String: LightingGroup.CarryOver] = [:]
    public var lamps: [String: LampOverride] = [:]
    /// The instant the durations count from; nil: from the first step of the core built from it.
    public var takenAt: MonotonicInstant?
    /// Read back after a restart: every bollard may have been moving (see `BollardController`
    /// "Carry-over": one found between its end positions is lowered).
    public var afterRestart = false
    /// Why the kept state could not be read. Every configured bollard then starts with its
    /// emergency latched (lowered, `raise` refused until `clear_emergency`) and the gateway
    /// alarm `safety_state_lost` is raised: a lost emergency latch must never let a bollard
    /// rise or stay up.
    public var unreadable: String?

    public init(bollards: [String: BollardController.CarryOver] = [:], groups: [String: LightingGroup.CarryOver] = [:],
                lamps: [String: LampOverride] = [:], takenAt: MonotonicInstant? = nil, afterRestart: Bool = false, unreadable: String? = nil) {
        self.bollards = bollards
        self.groups = groups
        self.lamps = lamps
        self.takenAt = takenAt
        self.afterRestart = afterRestart
        self.unreadable = unreadable
    }

    /// The part a restart keeps (bollards' `durable` entries only).
    public var durable: SafetyState {
        SafetyState(bollards: bollards.compactMapValues(\.durable), takenAt: takenAt)
    }
}

/// Keeps the people-protecting part of the safety state (`SafetyState.durable`) in
/// `<state_dir>/safety-state.json` and reads it back at start.
///
/// Writes happen on a thread of the store ("safety-state"), never on the control loop: the
/// loop hands over the new state (latest wins) with the replies of the commands that changed
/// it, and those replies are sent once the file is durable (written to a temporary file,
/// fsynced, renamed over the old one, folder fsynced: `DurableFile.replace`), so an `ok` to
/// `emergency_lower` or `hold_down` survives a power cut. A write that fails is logged, still
/// answers, and shows in `failure` (the core raises `safety_state_unsaved`).
///
/// The file: `{"format":1,"written_at":RFC 3339,"bollards":{"<id>":{"emergency":true,
/// "fault":"travel_timeout_raising"|"travel_timeout_lowering"|"motor_fault","hold_until":RFC 3339}}}`;
/// the hold is stored as its wall-clock end (a monotonic deadline means nothing after a
/// reboot). A hold read back ends at most 24 h from the start (a wall clock set back cannot
/// make it longer), and a hold whose end has passed is dropped (a wall clock set forward ends
/// it early; the bollard still stays down, since a restart never keeps the commanded mode).
/// A missing file is a first start (nothing kept). A file that cannot be read or parsed is
/// moved aside (`.corrupt-<UTC time>`), and `load` returns `unreadable` (every bollard latched).
final class SafetyStateStore: Sendable {
    static let fileName = "safety-state.json"
    let path: String
    private let logger: Logger

    private struct Pending {
        var text: String?
        var completions: [@Sendable () -> Void] = []
        var stopping = false
        var started = false
        var stopped = false
        /// The reason the last write failed; nil once one succeeds.
        var failure: String?
        /// The last text written (or being written), to skip identical rewrites.
        var lastText: String?
    }
    /// The writer thread waits on it for work; `stop` waits on it for `stopped`.
    private let pending = Locked(Pending())

    init(directory: String, logger: Logger) {
        path = FilePaths.join(directory, Self.fileName)
        self.logger = logger
    }

    /// Why the last write failed; nil when it succeeded (or none was made).
    var failure: String? { pending.withLock { $0.failure } }

    // MARK: - Reading back

    /// The state kept by the last run, as of `wall` (durations from the core's first step).
    /// Never throws: a missing file is an empty state; a damaged one is moved aside and reported
    /// in `unreadable`. Either way `afterRestart` is set.
    func load(wall: Date = Date()) -> SafetyState {
        let text: String?
        do {
            text = try DurableFile.read(path, store: "safety state")
        } catch {
            return unreadable("\(error)", wall: wall)
        }
        guard let text else { return SafetyState(afterRestart: true) }
        do {
            var state = try Self.decode(text, wall: wall)
            state.afterRestart = true
            if !state.bollards.isEmpty {
                logger.notice("safety state read back", metadata: ["path": "\(path)", "bollards": "\(state.bollards.keys.sorted())"])
            }
            return state
        } catch {
            return unreadable(error.description, wall: wall)
        }
    }

    private func unreadable(_ reason: String, wall: Date) -> SafetyState {
        let aside = try? DurableFile.moveAside(path, store: "safety state", now: wall)
        let message = "\(path): \(reason)"
        logger.critical("safety state unreadable; every bollard starts with its emergency latched (lowered, raise refused until clear_emergency)",
                        metadata: ["error": "\(message)", "moved_to": "\(aside ?? "-")"])
        return SafetyState(afterRestart: true, unreadable: message)
    }

    /// A damaged or unexpected file: what is wrong with it.
    struct DecodeError: Error, CustomStringConvertible {
        var description: String
    }

    private struct File: Codable {
        struct Bollard: Codable {
            var emergency: Bool?
            var fault: String?
            var holdUntil: String?
            enum CodingKeys: String, CodingKey { case emergency, fault, holdUntil = "hold_until" }
        }
        var format: Int
        var writtenAt: String?
        var bollards: [String: Bollard]
        enum CodingKeys: String, CodingKey { case format, writtenAt = "written_at", bollards }
    }

    /// The file's state as of `wall`: durations counted from the core's first step.
    static func decode(_ text: String, wall: Date) throws(DecodeError) -> SafetyState {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(text.utf8))
        } catch {
            throw DecodeError(description: "not a safety state file (\(error))")
        }
        guard file.format == 1 else { throw DecodeError(description: "format \(file.format) is not 1") }
        var state = SafetyState()
        for (id, b) in file.bollards {
            var c = BollardController.CarryOver(emergencyLatched: b.emergency ?? false)
            if let f = b.fault {
                guard let fault = BollardController.LatchedFault(rawValue: f) else { throw DecodeError(description: "bollards.\(id).fault: unknown fault \(f)") }
                c.latchedFault = fault
            }
            if let h = b.holdUntil {
                guard let end = RFC3339.parse(h) else { throw DecodeError(description: "bollards.\(id).hold_until: not an RFC 3339 time: \(h)") }
                let left = end.timeIntervalSince(wall)
                if left > 0 { c.holdRemaining = min(.milliseconds(Int64((left * 1000).rounded(.up))), BollardController.maxHold) }
            }
            state.bollards[id] = c
        }
        return state
    }

    /// The file's text for the durable part of `state`, taken at `wall`.
    static func encode(_ state: SafetyState, wall: Date) -> String {
        var bollards: [String: File.Bollard] = [:]
        for (id, c) in state.bollards {
            guard let d = c.durable else { continue }
            bollards[id] = File.Bollard(emergency: d.emergencyLatched ? true : nil, fault: d.latchedFault?.rawValue,
                                        holdUntil: d.holdRemaining.map { RFC3339.format(wall.addingTimeInterval($0.seconds)) })
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(File(format: 1, writtenAt: RFC3339.format(wall), bollards: bollards))) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    // MARK: - Writing

    /// Hands over a new state taken at `wall` (latest wins) and what to run once it is durable
    /// (or failed). Called on the loop thread: encodes and queues, never waits on the disk.
    func save(_ state: SafetyState, wall: Date, then completions: [@Sendable () -> Void] = []) {
        let text = Self.encode(state, wall: wall)
        enum Next { case start, wake, writeHere }
        let next = pending.withLock { p -> Next in
            if p.stopped {
                // Stopped earlier (the field stopped and starts again): a new writer.
                p.stopped = false
                p.stopping = false
                p.started = false
            }
            if p.stopping { return .writeHere }
            p.text = text
            p.completions += completions
            defer { p.started = true }
            return p.started ? .wake : .start
        }
        switch next {
        case .start: startWriter(); pending.broadcast()
        case .wake: pending.broadcast()
        case .writeHere:
            // While `stop` runs: written on the caller's thread, never dropped.
            write(text)
            for c in completions { c() }
        }
    }

    /// Waits until everything handed over is written (or failed).
    func flush() {
        let done = Event()
        let running = pending.withLock { p -> Bool in
            guard p.started, !p.stopped else { return false }
            p.completions.append { done.set() }
            return true
        }
        guard running else { return }
        pending.broadcast()
        done.wait()
    }

    /// Writes what is pending, then ends the writer thread (a later `save` starts a new one).
    /// Waits at most `timeout` (a disk that hangs in fsync must not hold the shutdown).
    func stop(timeout: Duration = .seconds(2)) {
        let running = pending.withLock { p -> Bool in
            p.stopping = true
            return p.started && !p.stopped
        }
        guard running else { return }
        pending.broadcast()
        if pending.wait(until: MonotonicInstant.now() + timeout, { $0.stopped ? true : nil }) == nil {
            logger.critical("safety state write still in progress at stop; the last change may not be on disk", metadata: ["path": "\(path)"])
        }
    }

    private func startWriter() {
        OSThread.detached(name: "safety-state") { [self] in
            while true {
                guard let work = pending.wait({ p -> (String?, [@Sendable () -> Void], Bool)? in
                    guard p.text != nil || !p.completions.isEmpty || p.stopping else { return nil }
                    var text = p.text
                    if text == p.lastText { text = nil }
                    if text != nil { p.lastText = text }
                    defer { p.text = nil; p.completions = [] }
                    return (text, p.completions, p.stopping)
                }) else { continue }
                let (text, completions, stopping) = work
                if let text { write(text) }
                for c in completions { c() }
                if stopping {
                    // Anything handed over meanwhile is written before the thread ends.
                    let ended = pending.withLock { p -> Bool in
                        guard p.text == nil, p.completions.isEmpty else { return false }
                        p.stopped = true
                        return true
                    }
                    if ended {
                        pending.broadcast()
                        return
                    }
                }
            }
        }
    }

    private func write(_ text: String) {
        do {
            try DurableFile.replace(path, contents: text, store: "safety state")
            let was = pending.withLock { p -> String? in
                defer { p.failure = nil }
                return p.failure
            }
            if was != nil { logger.notice("safety state written again", metadata: ["path": "\(path)"]) }
        } catch {
            pending.withLock { p in p.failure = "\(error)"; p.lastText = nil }
            logger.critical("safety state not written; a restart now would lose the latest emergency latches and holds", metadata: ["error": "\(error)"])
        }
    }
}
