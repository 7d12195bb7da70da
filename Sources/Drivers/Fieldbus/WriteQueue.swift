/// The pending writes of one bus, coalesced per device and point, and the order they go out in.
///
/// Rules:
/// - One pending value per device and point: a later write of a point replaces the pending
///   one whatever the priorities (a pending motor-off is replaced, never duplicated; a request
///   drop replaces a pending request-on and the reverse). The point keeps the higher of the two
///   priorities, so a safety write never loses its place to the control write that replaced it.
/// - Bounded by construction: at most one entry per writable point of each device, and at most
///   one live ticket per entry. Nothing is ever dropped to make room; a write is refused only
///   when it cannot be encoded (unknown or read-only point, value out of range), and then its
///   completion says so at once.
/// - A write request (`ticket`) completes once each of its points is written, failed or
///   superseded: with the first failure if any point failed; `.success` if at least one point was
///   written and none failed; `FieldDeviceError.superseded` when every point was replaced by a
///   later write before going out (the later write's completion reports what became of the value).
/// - `take` hands out every pending point of one device as one batch, ordered for safety: every
///   point going to its safe value first (by table and address), then the others in the order
///   they were last written (the caller's order: warning lights before a motor coil, so nothing
///   of the write lands after the motor is energised); neighbours in that order at contiguous
///   addresses are merged into one request. A failed request ends the batch;
///   the points after it are not written (so a failure leaves only safe values applied) and
///   their tickets fail.
struct WriteQueue {
    /// One pending point value.
    struct Entry {
        var point: String
        var definition: DeviceProfile.Point
        var words: [UInt16]
        var safe: Bool
        var priority: WritePriority
        var verify: Bool
        var ticket: Int
        var queuedAt: Int64
    }

    /// One Modbus write request of a batch: contiguous points of one table.
    struct Request: Equatable {
        var table: DeviceProfile.RegisterTable
        var address: UInt16
        var words: [UInt16]
        var verify: Bool
        /// Whether these points go to their safe values.
        var safe: Bool
        /// Names of the points, for errors and tests.
        var points: [String]
    }

    /// Every pending point of one device, in the order they are to be written.
    struct Batch {
        var device: Int
        var requests: [Request]
        fileprivate var entries: [[Entry]]
    }

    typealias Completion = @Sendable (Result<Void, FieldDeviceError>) -> Void

    private struct Ticket {
        var device: String
        var completion: Completion?
        var unresolved: Int
        var written = 0
        var failure: FieldDeviceError?
    }

    private var pending: [[Entry]]
    /// Exactly the devices with at least one pending entry (kept on `enqueue` and `take`).
    private var withPending: DeviceSet
    private var tickets: [Int: Ticket] = [:]
    private var nextTicket = 0

    init(devices: Int) {
        pending = Array(repeating: [], count: devices)
        withPending = DeviceSet(count: devices)
    }

    /// The devices that have pending writes, in no particular order (for `BusScheduler.next`,
    /// which then looks only at these).
    var pendingDevices: [Int] { withPending.members }

    /// Pending entries in all (for the bound: never more than the devices' writable points).
    var count: Int { pending.reduce(0) { $0 + $1.count } }
    /// Live tickets (never more than `count`).
    var ticketCount: Int { tickets.count }

    func summary(_ device: Int) -> WriteSummary? {
        let entries = pending[device]
        guard !entries.isEmpty else { return nil }
        var s = WriteSummary(safety: false, oldestQueuedAt: .max)
        for e in entries {
            if e.priority == .safety { s.safety = true }
            s.oldestQueuedAt = min(s.oldestQueuedAt, e.queuedAt)
        }
        return s
    }

    /// Queues encoded points for `device`; returns the completions to call now (tickets whose
    /// every point was superseded), each with its result. Call them outside any lock.
    mutating func enqueue(device: Int, name: String, points: [(name: String, definition: DeviceProfile.Point, words: [UInt16], safe: Bool)],
                          priority: WritePriority, verify: Bool, now: Int64, completion: Completion?) -> [(Completion, Result<Void, FieldDeviceError>)] {
        let ticket = nextTicket
        nextTicket &+= 1
        var done: [(Completion, Result<Void, FieldDeviceError>)] = []
        var fresh = 0
        for p in points {
            if let i = pending[device].firstIndex(where: { $0.point == p.name }) {
                // Replaced, and moved to the end: the pending order is the order of the latest writes.
                let old = pending[device].remove(at: i)
                pending[device].append(Entry(point: p.name, definition: p.definition, words: p.words, safe: p.safe,
                                             priority: min(old.priority, priority), verify: verify || old.verify, ticket: ticket,
                                             queuedAt: min(old.queuedAt, now)))
                if old.ticket != ticket {
                    fresh += 1
                    if let r = resolve(old.ticket, .superseded) { done.append(r) }
                }
            } else {
                pending[device].append(Entry(point: p.name, definition: p.definition, words: p.words, safe: p.safe,
                                             priority: priority, verify: verify, ticket: ticket, queuedAt: now))
                fresh += 1
            }
        }
        if !pending[device].isEmpty { withPending.insert(device) }
        if fresh > 0 {
            tickets[ticket] = Ticket(device: name, completion: completion, unresolved: fresh)
        } else if let completion {
            // An empty write: nothing to do.
            done.append((completion, .success(())))
        }
        return done
    }

    /// Removes and returns every pending point of `device` (only the safety ones when
    /// `onlySafety`), ordered safe values first; nil when there is none.
    mutating func take(_ device: Int, onlySafety: Bool = false) -> Batch? {
        var taken: [Entry] = []
        pending[device].removeAll { e in
            guard !onlySafety || e.priority == .safety else { return false }
            taken.append(e)
            return true
        }
        if pending[device].isEmpty { withPending.remove(device) }
        guard !taken.isEmpty else { return nil }
        var requests: [Request] = []
        var groups: [[Entry]] = []
        for safe in [true, false] {
            var group = taken.filter { $0.safe == safe }
            if safe {
                group.sort { ($0.definition.table.rawValue, $0.definition.address) < ($1.definition.table.rawValue, $1.definition.address) }
            }
            for e in group {
                if let last = requests.last, last.safe == safe, last.table == e.definition.table,
                   Int(last.address) + last.words.count == Int(e.definition.address),
                   last.words.count + e.words.count <= WriteQueue.maxWords(e.definition.table) {
                    requests[requests.count - 1].words += e.words
                    requests[requests.count - 1].points.append(e.point)
                    requests[requests.count - 1].verify = last.verify || e.verify
                    groups[groups.count - 1].append(e)
                } else {
                    requests.append(Request(table: e.definition.table, address: e.definition.address, words: e.words, verify: e.verify,
                                            safe: safe, points: [e.point]))
                    groups.append([e])
                }
            }
        }
        return Batch(device: device, requests: requests, entries: groups)
    }

    /// Reports how a batch went: its first `written` requests were written; request `written`
    /// failed with `failure` (nil: all written). Returns the completions to call, outside any lock.
    mutating func finish(_ batch: Batch, written: Int, failure: FieldDeviceError?) -> [(Completion, Result<Void, FieldDeviceError>)] {
        var done: [(Completion, Result<Void, FieldDeviceError>)] = []
        for (k, group) in batch.entries.enumerated() {
            let outcome: Outcome
            if k < written {
                outcome = .written
            } else if k == written, let failure {
                outcome = .failed(failure)
            } else {
                let points = batch.requests[written].points.joined(separator: ", ")
                outcome = .failed(FieldDeviceError(device: failure?.device ?? "", message: "not written: the write of \(points) failed before it (safe values go first)",
                                                   isCommunicationLoss: failure?.isCommunicationLoss ?? false))
            }
            for e in group {
                if let r = resolve(e.ticket, outcome) { done.append(r) }
            }
        }
        return done
    }

    private enum Outcome {
        case written, superseded, failed(FieldDeviceError)
    }

    /// One point of `ticket` is resolved; returns its completion when that was the last.
    private mutating func resolve(_ ticket: Int, _ outcome: Outcome) -> (Completion, Result<Void, FieldDeviceError>)? {
        guard var t = tickets[ticket] else { return nil }
        t.unresolved -= 1
        switch outcome {
        case .written: t.written += 1
        case .superseded: break
        case .failed(let e): if t.failure == nil { t.failure = e }
        }
        guard t.unresolved == 0 else {
            tickets[ticket] = t
            return nil
        }
        tickets[ticket] = nil
        guard let completion = t.completion else { return nil }
        if var failure = t.failure {
            if failure.device.isEmpty { failure.device = t.device }
            return (completion, .failure(failure))
        }
        return (completion, t.written > 0 ? .success(()) : .failure(.superseded(device: t.device)))
    }

    /// Modbus limits per write request: 1968 coils, 123 registers.
    static func maxWords(_ table: DeviceProfile.RegisterTable) -> Int { table.isBit ? 1968 : 123 }
}

extension FieldDeviceError {
    /// Message prefix of `superseded(device:)`.
    static let supersededMessage = "superseded by a later write of the same points before it went out"

    /// The outcome of a write whose every point was replaced by a later write before it was sent
    /// (the later write reports what became of the values); not a device fault.
    public static func superseded(device: String) -> FieldDeviceError {
        FieldDeviceError(device: device, message: supersededMessage, isCommunicationLoss: false)
    }

    /// True for `superseded(device:)`: the write was replaced, not refused by the device.
    public var isSuperseded: Bool { message == Self.supersededMessage }
}
