public import FoundationEssentials
import EdgeRuntime
public import Logging

/// How the outbox treats a message when it must drop something: telemetry goes first.
public enum OutboxPriority: Int, Sendable, Comparable {
    /// Periodic readings: the oldest are dropped first when the outbox is full.
    case telemetry = 0
    /// Events, alarms, replies and status: dropped only when no telemetry is left.
    case event = 1

    public static func < (lhs: OutboxPriority, rhs: OutboxPriority) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The outbox's delivery lanes, highest first: the drainer always takes every message of a
/// higher lane before any of a lower one; inside a lane, messages go in seq order. So the
/// gateway's status and its alarms overtake a backlog of events, and events overtake telemetry.
public enum OutboxLane: Int, Sendable, Comparable, CaseIterable {
    /// `status` and `alarm/...`: what the centre's retained view of the gateway is made of.
    case status = 0
    /// Events and replies.
    case event = 1
    /// Periodic readings.
    case telemetry = 2

    /// The lane a message goes to when the caller names none: telemetry for telemetry, events otherwise.
    public static func `default`(for priority: OutboxPriority) -> OutboxLane { priority == .telemetry ? .telemetry : .event }

    public static func < (lhs: OutboxLane, rhs: OutboxLane) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One uplink message held in the outbox until the broker acknowledges it.
///
/// `seq` is the gateway's persistent sequence number, already written into `payload`.
public struct OutboxMessage: Sendable, Equatable {
    public var seq: UInt64
    public var topic: String
    public var payload: [UInt8]
    public var qos: Int
    public var retain: Bool
    public var priority: OutboxPriority
    public var createdAt: Date
    /// The delivery lane (see `OutboxLane`).
    public var lane: OutboxLane

    public init(seq: UInt64, topic: String, payload: [UInt8], qos: Int, retain: Bool, priority: OutboxPriority, createdAt: Date, lane: OutboxLane? = nil) {
        self.lane = lane ?? .default(for: priority)
        self.seq = seq
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.priority = priority
        self.createdAt = createdAt
    }
}

/// The durable queue of uplink messages (`<state_dir>/outbox.db`, SQLite in WAL mode).
///
/// Invariants:
/// - `seq` is strictly increasing across restarts and never reused, even after every message
///   was removed or the database file was lost: the high-water mark is also reserved ahead
///   in blocks in the small file `seq` beside the database (written atomically with fsync).
/// - A message is visible to `peek` only once it is durable: committed with the WAL fsynced
///   (`synchronous=FULL`), so it survives a power cut as well as kill -9. Hence every seq the
///   centre may have seen is on the disk, and after a restart (clean, kill -9 or power cut)
///   the database's highest seq is the authority: no seq the centre saw is ever reused, and
///   seqs handed out but never committed (never published) are handed out again, so nothing
///   is skipped. Only when the database is not the one the `seq` file was written for (lost,
///   replaced, moved aside as corrupt) does numbering jump past the reservation; that range
///   is reported once in `skippedSeqs` for the agent to announce.
/// - Messages go out by lane (`OutboxLane`), each lane in seq order (`peek(lane:after:limit:)`).
/// - Bounded by count, bytes (topic + payload) and age: when over a bound the oldest
///   telemetry is dropped first; events are dropped only when no telemetry is left; messages
///   older than `maxAge` are pruned. Every drop is counted per priority, counters persisted.
/// - Ages are measured on a steady wall clock (the wall time at open plus the monotonic time
///   since, `SteadyWallClock`): a wall-clock jump while the agent runs (RTC reset, NTP step)
///   neither ages queued messages nor keeps them young; `createdAt` is on that clock.
///
/// Writes are batched: appends and removals arriving within `batchWindow` (20 ms) or up to
/// `batchLimit` (500) share one transaction. `append` returns once its message is durable
/// (concurrent callers share a commit); `appendBuffered` returns at once and its message
/// becomes durable within the window (or at `flush()`/`close()`). Removals are always
/// buffered: a removal lost by a crash only means the message is published again, which
/// the centre de-duplicates by `seq`.
///
/// Thread-safe. A background thread (`edge-outbox`) commits buffered work and prunes old
/// messages while idle; `close()` stops it and commits what is pending.
public final class Outbox: Sendable {
    private let core: OutboxCore

    /// Opens (creating if needed) the outbox database at `path` (its folder is created too).
    ///
    /// A file that is not a database or is corrupt is moved aside to
    /// `<path>.corrupt-<timestamp>` and a fresh database is started; `recoveredFromCorruption`
    /// then names the moved file so the agent can raise an alarm.
    /// - Parameters:
    ///   - maxMessages: the count bound (> 0).
    ///   - maxAge: messages older than this are pruned; `.zero` disables age pruning.
    ///   - now: the wall clock (default `Date()`). Tests inject one: without `monotonic`, ages
    ///     are then measured on it alone.
    ///   - monotonic: a monotonic reading (any origin) that ages advance with; default
    ///     CLOCK_MONOTONIC when `now` is not injected.
    /// - Throws: `OutboxError` (`cannotOpen`, `readOnly`, `diskFull`, `io`, `invalidArgument`).
    ///   - maxBytes: the size bound, topics and payloads summed (> 0; default: none to speak of).
    public init(
        path: String, maxMessages: Int, maxAge: Duration, logger: Logger, maxBytes: Int = Int.max,
        now: (@Sendable () -> Date)? = nil, monotonic: (@Sendable () -> Duration)? = nil,
        batchWindow: Duration = .milliseconds(20), batchLimit: Int = 500
    ) throws(OutboxError) {
        guard maxMessages > 0, batchLimit > 0, maxBytes > 0 else {
            throw OutboxError(code: .invalidArgument, store: "outbox", path: path, reason: "maxMessages, maxBytes and batchLimit must be > 0")
        }
        core = try OutboxCore(path: path, maxMessages: maxMessages, maxBytes: maxBytes, maxAge: maxAge, logger: logger, ageClock: SteadyWallClock(wall: now, monotonic: monotonic), window: batchWindow, batchLimit: batchLimit)
        core.startFlusher()
    }

    deinit { core.close() }

    /// Assigns the next `seq`, builds the payload with it, stores the message and returns once
    /// it is durable. `makePayload` runs under the outbox's lock: it must not call the outbox.
    /// - Throws: `OutboxError` (`diskFull`, `corrupt`, `io`, `closed`, `invalidArgument` for qos outside 0...2).
    ///   On error the message is not stored (its seq is skipped).
    /// `lane` defaults to `OutboxLane.default(for: priority)`.
    @discardableResult
    public func append(topic: String, qos: Int, retain: Bool, priority: OutboxPriority, lane: OutboxLane? = nil, makePayload: (UInt64) -> [UInt8]) throws(OutboxError) -> UInt64 {
        let (seq, generation) = try core.enqueue(topic: topic, qos: qos, retain: retain, priority: priority, lane: lane ?? .default(for: priority), durable: true, makePayload: makePayload)
        try core.waitCommitted(generation)
        return seq
    }

    /// Like `append`, but returns as soon as the seq is assigned (the `appendAsync` of the design):
    /// the message becomes durable within `batchWindow`, when `batchLimit` messages are pending
    /// (this call then commits the batch itself, which keeps a fast producer in step with the
    /// disk), or at `flush()`/`close()`. If that commit fails the message is counted as dropped
    /// and `lastError` is set.
    /// - Throws: `OutboxError` only for `closed`, an invalid qos or a failure to reserve seqs.
    @discardableResult
    public func appendBuffered(topic: String, qos: Int, retain: Bool, priority: OutboxPriority, lane: OutboxLane? = nil, makePayload: (UInt64) -> [UInt8]) throws(OutboxError) -> UInt64 {
        let (seq, _) = try core.enqueue(topic: topic, qos: qos, retain: retain, priority: priority, lane: lane ?? .default(for: priority), durable: false, makePayload: makePayload)
        return seq
    }

    /// Commits everything pending now (buffered appends and removals) and prunes old messages.
    /// - Throws: the commit's `OutboxError`.
    public func flush() throws(OutboxError) {
        try core.flush()
    }

    /// Up to `limit` durable messages with `seq` greater than `after` (all when nil), oldest
    /// first, in seq order. Messages already passed to `remove` are left out.
    public func peek(after seq: UInt64?, limit: Int) throws(OutboxError) -> [OutboxMessage] {
        try core.peek(lane: nil, after: seq, limit: limit)
    }

    /// Like `peek(after:limit:)`, within one lane (the drainer's view: it asks the lanes in
    /// order, highest first).
    public func peek(lane: OutboxLane, after seq: UInt64?, limit: Int) throws(OutboxError) -> [OutboxMessage] {
        try core.peek(lane: lane, after: seq, limit: limit)
    }

    /// Removes a message once the broker acknowledged it (PUBACK). Buffered like appends;
    /// removing an unknown or already dropped seq does nothing.
    /// - Throws: `OutboxError.closed` after `close()`.
    public func remove(seq: UInt64) throws(OutboxError) {
        try core.remove(seq: seq)
    }

    /// Messages held (commits pending work first, so it is exact).
    public var count: Int { core.count }

    /// Bytes held, topics and payloads summed (commits pending work first).
    public var byteCount: Int { core.byteCount }

    /// Seqs skipped at open because the database was not the one the `seq` file was written
    /// for (lost, replaced or moved aside as corrupt): none of them is in this database, and
    /// some may have reached the centre before. Nil when numbering simply continues.
    public var skippedSeqs: ClosedRange<UInt64>? { core.skippedSeqs }

    /// Messages dropped by the count and age bounds (and buffered appends whose commit
    /// failed), per priority, since the database was created. Persisted.
    public var droppedCount: (telemetry: Int, event: Int) { core.droppedCount }

    /// The highest seq assigned so far (it may still be in a pending buffered batch).
    public var lastSeq: UInt64 { core.lastSeq }

    /// The path of the damaged database moved aside at open (or later), if that happened.
    public var recoveredFromCorruption: String? { core.recoveredFromCorruption }

    /// The last commit failure (e.g. disk full), cleared by the next successful commit.
    public var lastError: OutboxError? { core.lastErrorValue }

    /// Sets a function called after each commit that stored new messages, with the highest
    /// durable seq. It runs on the committing thread, outside the outbox's locks: keep it short
    /// (wake the drainer). Pass nil to remove it.
    public func setCommitHandler(_ handler: (@Sendable (UInt64) -> Void)?) {
        core.setCommitHandler(handler)
    }

    /// Stops the background thread, commits what is pending and closes the database.
    /// Idempotent; later calls throw `OutboxError.closed`.
    public func close() {
        core.close()
    }
}

// MARK: - Core

/// The outbox's state and its SQLite connection.
///
/// Locking: `cond` guards the in-memory state; `dbLock` guards the connection. A thread may
/// take `cond` while holding `dbLock`, never the reverse. One committer at a time (`committing`).
final class OutboxCore: @unchecked Sendable {
    static let store = "outbox"
    /// Seqs reserved ahead in the `seq` file per write.
    static let seqBlock: UInt64 = 10_000
    /// How often the idle background thread prunes old messages.
    static let maintenanceInterval: Duration = .seconds(5)
    /// After a failed background commit, wait this long before retrying.
    static let retryDelay: Duration = .seconds(1)

    /// The `seq` file: the reservation, and the identity of the database it was written for
    /// (`<reserved> <db id>`; files of older versions hold the reservation alone).
    struct SeqFile: Equatable {
        var reserved: UInt64
        var database: Int64?

        init(reserved: UInt64, database: Int64?) {
            self.reserved = reserved
            self.database = database
        }

        init?(text: String) {
            let words = text.split(whereSeparator: \.isWhitespace)
            guard (1...2).contains(words.count), let r = UInt64(words[0]) else { return nil }
            reserved = r
            if words.count == 2 {
                guard let id = Int64(words[1]) else { return nil }
                database = id
            }
        }

        var text: String { database.map { "\(reserved) \($0)\n" } ?? "\(reserved)\n" }
    }

    private struct Pending {
        var message: OutboxMessage
        var durable: Bool
    }

    private struct Persisted: Equatable {
        var lastSeq: UInt64
        var reservedSeq: UInt64
        var droppedTelemetry: Int
        var droppedEvent: Int
    }

    private struct BatchResult {
        var count: Int
        var bytes: Int
        var droppedTelemetry = 0
        var droppedEvent = 0
        var persisted: Persisted
    }

    let path: String
    let seqPath: String
    let maxMessages: Int
    let maxBytes: Int
    let maxAgeMs: Int64
    let logger: Logger
    /// Stamps messages and measures their age (see `Outbox`).
    let ageClock: SteadyWallClock
    let window: Duration
    let batchLimit: Int
    private let clock = ContinuousClock()

    // Guarded by `cond`.
    private let cond = EdgeRuntime.Lock()
    private var nextSeq: UInt64
    private var reservedSeq: UInt64
    private var pendingInserts: [Pending] = []
    private var pendingRemovals: [UInt64] = []
    private var pendingRemovalSet: Set<UInt64> = []
    private var inflightRemovalSet: Set<UInt64> = []
    private var firstPendingAt: ContinuousClock.Instant?
    private var retryAfter: ContinuousClock.Instant?
    private var openGeneration: UInt64 = 1
    private var completedGeneration: UInt64 = 0
    private var failures: [UInt64: OutboxError] = [:]
    private var committing = false
    private var closed = false
    private var flusherRunning = false
    private var committedCount: Int
    private var committedBytes: Int
    /// The identity of the open database (`meta.db_id`), written into the `seq` file.
    private var databaseID: Int64
    private let skipped: ClosedRange<UInt64>?
    private var droppedTelemetry: Int
    private var droppedEvent: Int
    private var recovered: String?
    private var lastError: OutboxError?
    private var commitHandler: (@Sendable (UInt64) -> Void)?

    // Guarded by `dbLock`.
    private let dbLock = EdgeRuntime.Lock()
    private var db: SQLiteDatabase?
    private var persisted: Persisted

    init(path: String, maxMessages: Int, maxBytes: Int, maxAge: Duration, logger: Logger, ageClock: SteadyWallClock, window: Duration, batchLimit: Int) throws(OutboxError) {
        self.path = path
        self.seqPath = FilePaths.join(FilePaths.directory(of: path), "seq")
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.maxAgeMs = outboxMilliseconds(maxAge)
        self.logger = logger
        self.ageClock = ageClock
        self.window = window
        self.batchLimit = batchLimit

        let folder = FilePaths.directory(of: path)
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            } catch {
                throw OutboxError(code: .cannotOpen, store: Self.store, path: folder, reason: "cannot create folder: \(error)")
            }
        }

        var seqFile: SeqFile?
        if let text = try DurableFile.read(seqPath, store: Self.store) {
            if let v = SeqFile(text: text) {
                seqFile = v
            } else {
                logger.error("outbox sequence file is unreadable; relying on the database", metadata: ["file": "\(seqPath)"])
            }
        }

        let opened = try Self.openOrRecover(path: path, logger: logger, now: ageClock.wallNow())
        let state = opened.state
        // The database is the authority when it is the same one the seq file was last
        // written for (same identity; for an older file, the same recorded reservation):
        // every seq ever published is committed in it, fsynced (synchronous=FULL). Otherwise
        // (fresh, recovered, restored from elsewhere) never go below the seq file's mark,
        // and say which seqs were skipped.
        let base: UInt64
        let sameDatabase: Bool
        if opened.fresh { sameDatabase = false } else if let file = seqFile {
            sameDatabase = file.database.map { $0 == opened.id } ?? (file.reserved == state.reservedSeq)
        } else {
            sameDatabase = true
        }
        if sameDatabase {
            base = state.lastSeq
            skipped = nil
        } else {
            base = max(state.lastSeq, seqFile?.reserved ?? 0)
            skipped = base > state.lastSeq ? (state.lastSeq + 1)...base : nil
        }
        nextSeq = base + 1
        reservedSeq = base
        databaseID = opened.id
        committedCount = opened.count
        committedBytes = opened.bytes
        droppedTelemetry = state.droppedTelemetry
        droppedEvent = state.droppedEvent
        recovered = opened.recovered
        db = opened.db
        persisted = state
        if let skipped {
            logger.warning("outbox database is not the one the seq file was written for; seqs skipped", metadata: [
                "file": "\(path)", "skipped": "\(skipped.lowerBound)-\(skipped.upperBound)", "seq": "\(base + 1)",
            ])
        }
    }

    func startFlusher() {
        cond.lock()
        flusherRunning = true
        cond.unlock()
        OSThread.detached(name: "edge-outbox") { [self] in self.flusherLoop() }
    }

    // MARK: Opening and recovery

    private struct Opened {
        var db: SQLiteDatabase
        var state: Persisted
        var count: Int
        var bytes: Int
        var id: Int64
        var fresh: Bool
        var recovered: String?
    }

    private static func openOrRecover(path: String, logger: Logger, now: Date) throws(OutboxError) -> Opened {
        let existed = FileManager.default.fileExists(atPath: path)
        if !existed { DurableFile.removeOrphanedWAL(path) }
        do {
            let d = try openDatabase(path: path)
            return Opened(db: d.db, state: d.state, count: d.count, bytes: d.bytes, id: d.id, fresh: !existed, recovered: nil)
        } catch where error.kind == .corrupt {
            let aside = try DurableFile.moveAside(path, store: store, now: now)
            logger.critical("outbox database is corrupt: moved aside, starting a fresh one", metadata: ["file": "\(path)", "moved_to": "\(aside)", "error": "\(error)"])
            do {
                let d = try openDatabase(path: path)
                return Opened(db: d.db, state: d.state, count: d.count, bytes: d.bytes, id: d.id, fresh: true, recovered: aside)
            } catch {
                throw OutboxError(error, store: store)
            }
        } catch {
            throw OutboxError(error, store: store)
        }
    }

    private struct OpenedDatabase {
        var db: SQLiteDatabase
        var state: Persisted
        var count: Int
        var bytes: Int
        var id: Int64
    }

    /// Opens the database (schema 2: messages carry their lane), migrating a schema-1 file:
    /// its status and alarm topics go to the status lane, telemetry to the telemetry lane.
    private static func openDatabase(path: String) throws(SQLiteError) -> OpenedDatabase {
        let db = try SQLiteDatabase(path: path, synchronous: .full)
        do {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS messages(
                    seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                    qos INTEGER NOT NULL, retain INTEGER NOT NULL, priority INTEGER NOT NULL,
                    created_ms INTEGER NOT NULL, lane INTEGER NOT NULL DEFAULT 2);
                CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """)
            var columns: [String] = []
            try db.query("PRAGMA table_info(messages)", cache: false) { row in columns.append(row.text(1)) }
            if !columns.contains("lane") {
                try db.transaction { () throws(SQLiteError) in
                    try db.execute("ALTER TABLE messages ADD COLUMN lane INTEGER NOT NULL DEFAULT 2")
                    try db.execute("""
                        UPDATE messages SET lane = CASE WHEN priority = 0 THEN 2
                            WHEN topic LIKE '%/status' OR topic LIKE '%/alarm/%' THEN 0 ELSE 1 END
                        """)
                }
            }
            try db.execute("""
                CREATE INDEX IF NOT EXISTS messages_by_priority ON messages(priority);
                CREATE INDEX IF NOT EXISTS messages_by_age ON messages(created_ms);
                CREATE INDEX IF NOT EXISTS messages_by_lane ON messages(lane, seq);
                PRAGMA user_version=2;
                """)
            var meta: [String: Int64] = [:]
            try db.query("SELECT key, value FROM meta", cache: false) { row in meta[row.text(0)] = row.int64(1) }
            let id: Int64
            if let known = meta["db_id"] {
                id = known
            } else {
                id = Int64.random(in: 1...Int64.max)
                try db.run("INSERT INTO meta(key, value) VALUES('db_id', ?)", [.int(id)])
            }
            var count = 0
            var bytes = 0
            try db.query("SELECT count(*), total(length(topic) + length(payload)) FROM messages", cache: false) { row in
                count = Int(row.int64(0))
                bytes = Int(row.int64(1))
            }
            let maxSeq = UInt64(try db.scalar("SELECT max(seq) FROM messages") ?? 0)
            let state = Persisted(
                lastSeq: max(UInt64(meta["last_seq"] ?? 0), maxSeq),
                reservedSeq: UInt64(meta["reserved_seq"] ?? 0),
                droppedTelemetry: Int(meta["dropped_telemetry"] ?? 0),
                droppedEvent: Int(meta["dropped_event"] ?? 0))
            return OpenedDatabase(db: db, state: state, count: count, bytes: bytes, id: id)
        } catch {
            db.close()
            throw error
        }
    }

    /// Runtime corruption: move the file aside, start fresh, keep seqs and counters. Called with `dbLock` held.
    private func recoverAtRuntime(after error: OutboxError) throws(OutboxError) {
        db?.close()
        db = nil
        let aside = try DurableFile.moveAside(path, store: Self.store, now: ageClock.wallNow())
        let lost = cond.withLock { committedCount }
        logger.critical("outbox database became corrupt: moved aside, starting a fresh one", metadata: [
            "file": "\(path)", "moved_to": "\(aside)", "messages_lost": "\(lost)", "error": "\(error)",
        ])
        do {
            let fresh = try Self.openDatabase(path: path)
            db = fresh.db
            cond.withLock {
                databaseID = fresh.id
                // Make the next append write a seq file naming the new database.
                reservedSeq = nextSeq - 1
            }
        } catch {
            throw OutboxError(error, store: Self.store)
        }
        persisted = Persisted(lastSeq: 0, reservedSeq: 0, droppedTelemetry: 0, droppedEvent: 0)
        cond.withLock {
            recovered = aside
            committedCount = 0
            committedBytes = 0
        }
    }

    // MARK: Appending and removing

    func enqueue(topic: String, qos: Int, retain: Bool, priority: OutboxPriority, lane: OutboxLane, durable: Bool, makePayload: (UInt64) -> [UInt8]) throws(OutboxError) -> (UInt64, UInt64) {
        guard (0...2).contains(qos) else {
            throw OutboxError(code: .invalidArgument, store: Self.store, path: path, reason: "qos \(qos) is not 0, 1 or 2")
        }
        cond.lock()
        defer { cond.unlock() }
        if closed { throw closedError() }
        let seq = nextSeq
        if seq > reservedSeq {
            let reserve = seq + Self.seqBlock - 1
            try DurableFile.replace(seqPath, contents: SeqFile(reserved: reserve, database: databaseID).text, store: Self.store)
            reservedSeq = reserve
        }
        nextSeq += 1
        let message = OutboxMessage(seq: seq, topic: topic, payload: makePayload(seq), qos: qos, retain: retain, priority: priority, createdAt: ageClock.steadyNow(), lane: lane)
        markPendingLocked()
        pendingInserts.append(Pending(message: message, durable: durable))
        let generation = openGeneration
        if !durable, pendingInserts.count >= batchLimit, !committing {
            // Back-pressure: the producer pays for its own batch.
            cond.unlock()
            _ = commitOnce()
            cond.lock()
        }
        return (seq, generation)
    }

    func remove(seq: UInt64) throws(OutboxError) {
        cond.lock()
        defer { cond.unlock() }
        if closed { throw closedError() }
        guard !pendingRemovalSet.contains(seq) else { return }
        markPendingLocked()
        pendingRemovalSet.insert(seq)
        pendingRemovals.append(seq)
        if pendingRemovals.count >= batchLimit { cond.broadcast() }
    }

    /// Notes that work is pending; wakes the background thread when the first item arrives.
    private func markPendingLocked() {
        if firstPendingAt == nil {
            firstPendingAt = clock.now
            cond.broadcast()
        }
    }

    /// Waits until generation `generation` is committed, committing it on this thread if no
    /// other thread is; throws that commit's error.
    func waitCommitted(_ generation: UInt64) throws(OutboxError) {
        cond.lock()
        while completedGeneration < generation {
            if committing {
                cond.wait()
            } else {
                cond.unlock()
                _ = commitOnce()
                cond.lock()
            }
        }
        let failure = failures[generation]
        cond.unlock()
        if let failure { throw failure }
    }

    func flush() throws(OutboxError) {
        let generation = cond.withLock { openGeneration }
        try waitCommitted(generation)
    }

    /// Commits pending work first if there is any, ignoring failures (for the exact getters).
    private func settle() {
        let generation: UInt64? = cond.withLock {
            (pendingInserts.isEmpty && pendingRemovals.isEmpty && !committing) || closed ? nil : openGeneration
        }
        if let generation { try? waitCommitted(generation) }
    }

    // MARK: Reading

    func peek(lane: OutboxLane?, after seq: UInt64?, limit: Int) throws(OutboxError) -> [OutboxMessage] {
        guard limit > 0 else { return [] }
        dbLock.lock()
        defer { dbLock.unlock() }
        guard let db else { throw closedError() }
        let excluded = cond.withLock { pendingRemovalSet.union(inflightRemovalSet) }
        var out: [OutboxMessage] = []
        out.reserveCapacity(min(limit, 1024))
        do {
            let columns = "SELECT seq, topic, payload, qos, retain, priority, created_ms, lane FROM messages"
            let sql = lane == nil ? "\(columns) WHERE seq > ? ORDER BY seq LIMIT ?" : "\(columns) WHERE lane = ? AND seq > ? ORDER BY seq LIMIT ?"
            var bindings: [SQLiteValue] = [.int(Int64(clamping: seq ?? 0)), .int(Int64(limit + excluded.count))]
            if let lane { bindings.insert(.int(Int64(lane.rawValue)), at: 0) }
            try db.query(sql, bindings) { row in
                let s = UInt64(row.int64(0))
                guard out.count < limit, !excluded.contains(s) else { return }
                out.append(OutboxMessage(
                    seq: s, topic: row.text(1), payload: row.blob(2), qos: Int(row.int64(3)), retain: row.int64(4) != 0,
                    priority: OutboxPriority(rawValue: Int(row.int64(5))) ?? .event,
                    createdAt: Date(timeIntervalSince1970: Double(row.int64(6)) / 1000),
                    lane: OutboxLane(rawValue: Int(row.int64(7))) ?? .telemetry))
            }
        } catch {
            throw OutboxError(error, store: Self.store)
        }
        return out
    }

    var count: Int {
        settle()
        return cond.withLock { committedCount }
    }

    var droppedCount: (telemetry: Int, event: Int) {
        settle()
        return cond.withLock { (droppedTelemetry, droppedEvent) }
    }

    var byteCount: Int {
        settle()
        return cond.withLock { committedBytes }
    }

    var skippedSeqs: ClosedRange<UInt64>? { skipped }

    var lastSeq: UInt64 { cond.withLock { nextSeq - 1 } }
    var recoveredFromCorruption: String? { cond.withLock { recovered } }
    var lastErrorValue: OutboxError? { cond.withLock { lastError } }

    func setCommitHandler(_ handler: (@Sendable (UInt64) -> Void)?) {
        cond.withLock { commitHandler = handler }
    }

    // MARK: Committing

    /// Commits everything pending as one transaction (one committer at a time); returns the
    /// generation it completed. Call without holding `cond`.
    @discardableResult
    private func commitOnce() -> UInt64 {
        cond.lock()
        while committing { cond.wait() }
        let inserts = pendingInserts
        let removals = pendingRemovals
        pendingInserts = []
        pendingRemovals = []
        inflightRemovalSet = pendingRemovalSet
        pendingRemovalSet = []
        firstPendingAt = nil
        let generation = openGeneration
        openGeneration += 1
        committing = true
        let baseCount = (committedCount, committedBytes)
        let counters = (droppedTelemetry, droppedEvent)
        let reserved = reservedSeq
        cond.unlock()

        let messages = inserts.map(\.message)
        dbLock.lock()
        var result: Result<BatchResult, OutboxError>
        if db == nil {
            result = .failure(closedError())
        } else {
            result = writeBatch(messages, removals: removals, baseCount: baseCount, counters: counters, reserved: reserved)
            if case .failure(let error) = result, error.code == .corrupt {
                // Runtime corruption: start a fresh file and retry once.
                do {
                    try recoverAtRuntime(after: error)
                    result = writeBatch(messages, removals: [], baseCount: (0, 0), counters: counters, reserved: reserved)
                } catch {
                    result = .failure(error)
                }
            }
        }
        dbLock.unlock()

        cond.lock()
        committing = false
        completedGeneration = generation
        var handler: (@Sendable (UInt64) -> Void)?
        var durableSeq: UInt64 = 0
        switch result {
        case .success(let batch):
            committedCount = batch.count
            committedBytes = batch.bytes
            droppedTelemetry += batch.droppedTelemetry
            droppedEvent += batch.droppedEvent
            inflightRemovalSet = []
            retryAfter = nil
            if lastError != nil {
                logger.notice("outbox writes work again", metadata: ["file": "\(path)"])
                lastError = nil
            }
            if !messages.isEmpty {
                handler = commitHandler
                durableSeq = batch.persisted.lastSeq
            }
        case .failure(let error):
            failures[generation] = error
            if generation > 10_000 { failures = failures.filter { $0.key > generation - 10_000 } }
            if lastError == nil {
                logger.error("outbox commit failed", metadata: ["file": "\(path)", "error": "\(error)"])
            }
            lastError = error
            retryAfter = clock.now + Self.retryDelay
            // Removals are idempotent: keep them for the next commit.
            if !removals.isEmpty, !closed {
                pendingRemovals = removals + pendingRemovals
                pendingRemovalSet.formUnion(inflightRemovalSet)
                if firstPendingAt == nil { firstPendingAt = clock.now }
            }
            inflightRemovalSet = []
            // Buffered appends had no caller to tell: count them as dropped.
            for pending in inserts where !pending.durable {
                if pending.message.priority == .telemetry { droppedTelemetry += 1 } else { droppedEvent += 1 }
            }
        }
        cond.broadcast()
        cond.unlock()
        handler?(durableSeq)
        return generation
    }

    /// One transaction: inserts, removals, age pruning, count and byte bounds, counters. Called with `dbLock` held.
    private func writeBatch(_ inserts: [OutboxMessage], removals: [UInt64], baseCount: (count: Int, bytes: Int), counters: (Int, Int), reserved: UInt64) -> Result<BatchResult, OutboxError> {
        guard let db else { return .failure(closedError()) }
        let cutoff = maxAgeMs > 0 ? outboxMilliseconds(ageClock.steadyNow()) - maxAgeMs : nil
        do {
            let batch = try db.transaction { () throws(SQLiteError) -> BatchResult in
                var count = baseCount.count
                var bytes = baseCount.bytes
                for m in inserts {
                    // INSERT OR REPLACE: a retried batch may meet its own rows.
                    try db.query("DELETE FROM messages WHERE seq = ? RETURNING length(topic) + length(payload)", [.int(Int64(m.seq))]) { row in
                        count -= 1
                        bytes -= Int(row.int64(0))
                    }
                    count += try db.run(
                        "INSERT INTO messages(seq, topic, payload, qos, retain, priority, created_ms, lane) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                        [.int(Int64(m.seq)), .text(m.topic), .blob(m.payload), .int(Int64(m.qos)), .int(m.retain ? 1 : 0),
                         .int(Int64(m.priority.rawValue)), .int(outboxMilliseconds(m.createdAt)), .int(Int64(m.lane.rawValue))])
                    bytes += m.topic.utf8.count + m.payload.count
                }
                for seq in removals {
                    try db.query("DELETE FROM messages WHERE seq = ? RETURNING length(topic) + length(payload)", [.int(Int64(seq))]) { row in
                        count -= 1
                        bytes -= Int(row.int64(0))
                    }
                }
                var droppedT = 0
                var droppedE = 0
                /// Deletes by `sql` (which must return priority and size), counting what went.
                func drop(_ sql: String, _ bindings: [SQLiteValue]) throws(SQLiteError) -> Int {
                    var n = 0
                    try db.query(sql, bindings) { row in
                        if row.int64(0) == Int64(OutboxPriority.telemetry.rawValue) { droppedT += 1 } else { droppedE += 1 }
                        bytes -= Int(row.int64(1))
                        count -= 1
                        n += 1
                    }
                    return n
                }
                let returning = "RETURNING priority, length(topic) + length(payload)"
                if let cutoff {
                    _ = try drop("DELETE FROM messages WHERE created_ms < ? \(returning)", [.int(cutoff)])
                }
                let telemetry = SQLiteValue.int(Int64(OutboxPriority.telemetry.rawValue))
                if count > maxMessages {
                    _ = try drop("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE priority = ? ORDER BY seq LIMIT ?) \(returning)",
                                 [telemetry, .int(Int64(count - maxMessages))])
                }
                if count > maxMessages {
                    _ = try drop("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT ?) \(returning)",
                                 [.int(Int64(count - maxMessages))])
                }
                // The byte bound: oldest telemetry first, in chunks sized from the average message.
                var telemetryLeft = true
                while bytes > maxBytes, count > 0 {
                    let chunk = Int64(max(1, (bytes - maxBytes) / max(1, bytes / count) + 1))
                    if telemetryLeft {
                        telemetryLeft = try drop("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE priority = ? ORDER BY seq LIMIT ?) \(returning)",
                                                 [telemetry, .int(chunk)]) > 0
                    } else {
                        // No telemetry left: events, oldest first, one by one (they are worth more).
                        if try drop("DELETE FROM messages WHERE seq IN (SELECT seq FROM messages ORDER BY seq LIMIT 1) \(returning)", []) == 0 { break }
                    }
                }
                let state = Persisted(
                    lastSeq: max(persisted.lastSeq, inserts.last?.seq ?? 0),
                    reservedSeq: reserved,
                    droppedTelemetry: counters.0 + droppedT,
                    droppedEvent: counters.1 + droppedE)
                if state != persisted {
                    let upsert = "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
                    try db.run(upsert, [.text("last_seq"), .int(Int64(state.lastSeq))])
                    try db.run(upsert, [.text("reserved_seq"), .int(Int64(state.reservedSeq))])
                    try db.run(upsert, [.text("dropped_telemetry"), .int(Int64(state.droppedTelemetry))])
                    try db.run(upsert, [.text("dropped_event"), .int(Int64(state.droppedEvent))])
                }
                return BatchResult(count: count, bytes: bytes, droppedTelemetry: droppedT, droppedEvent: droppedE, persisted: state)
            }
            persisted = batch.persisted
            if batch.droppedTelemetry + batch.droppedEvent > 0 {
                logger.warning("outbox bounds dropped messages", metadata: [
                    "file": "\(path)", "telemetry": "\(batch.droppedTelemetry)", "event": "\(batch.droppedEvent)",
                ])
            }
            return .success(batch)
        } catch {
            return .failure(OutboxError(error, store: Self.store))
        }
    }

    // MARK: Background thread

    private func flusherLoop() {
        cond.lock()
        var lastMaintenance = clock.now
        while !closed {
            let now = clock.now
            let pending = pendingInserts.count + pendingRemovals.count
            if pending > 0 {
                var due = pending >= batchLimit ? now : (firstPendingAt ?? now) + window
                if let retryAfter, retryAfter > due { due = retryAfter }
                if due <= now {
                    if committing {
                        cond.wait()
                    } else {
                        cond.unlock()
                        commitOnce()
                        cond.lock()
                    }
                } else {
                    cond.wait(until: MonotonicInstant.now() + (due - now))
                }
            } else {
                let due = lastMaintenance + Self.maintenanceInterval
                if due <= now {
                    lastMaintenance = now
                    if maxAgeMs > 0, !committing {
                        cond.unlock()
                        commitOnce()
                        cond.lock()
                    }
                } else {
                    cond.wait(until: MonotonicInstant.now() + (due - now))
                }
            }
        }
        flusherRunning = false
        cond.broadcast()
        cond.unlock()
    }

    // MARK: Closing

    func close() {
        cond.lock()
        if closed {
            cond.unlock()
            return
        }
        closed = true
        cond.broadcast()
        while flusherRunning { cond.wait() }
        let generation = openGeneration
        cond.unlock()
        do {
            try waitCommitted(generation)
        } catch {
            logger.error("outbox: pending messages could not be committed at close", metadata: ["file": "\(path)", "error": "\(error)"])
        }
        dbLock.withLock {
            db?.close()
            db = nil
        }
    }

    private func closedError() -> OutboxError {
        OutboxError(code: .closed, store: Self.store, path: path, reason: "close() was called")
    }
}

/// Milliseconds since 1970 (the outbox's stored time).
func outboxMilliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }

func outboxMilliseconds(_ duration: Duration) -> Int64 {
    duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
}

func outboxSeconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
