public import FoundationEssentials
public import Logging
import EdgeRuntime

/// The ids of centre commands already executed, remembered across restarts
/// (`<state_dir>/replay.db`, SQLite WAL, every write fsynced), so a replayed command is refused.
///
/// An id is kept until its command's expiry plus `skew` has passed: after that the verifier
/// refuses the command as expired anyway, so the store stays small. "Passed" means on the wall
/// clock and on a steady wall clock (`SteadyWallClock`: the wall time at open plus the
/// monotonic time since), so a wall-clock jump forward (RTC reset, NTP step) does not forget
/// ids whose commands become valid again when the clock is set back. Record an id *before*
/// actuating (`recordIfNew`), so a crash between the two can never let a replay actuate twice.
/// A corrupt file is moved aside to `replay.db.corrupt-<timestamp>` and a fresh one started
/// (`recoveredFromCorruption`): commands still within their validity could then be replayed,
/// so the agent should raise an alarm. Thread-safe.
///
/// When the state disk fails, commands toward the safe state must still run: `recordInMemory`
/// then keeps the id in memory (checked by `hasSeen` like a stored one) with its outcome, and
/// `persistMemory()` writes them once the disk accepts writes again. A store that cannot be
/// opened at all is made with `init(unavailableAt:)`: memory only.
public final class ReplayStore: Sendable {
    static let store = "replay store"

    public let path: String
    private let skewMs: Int64
    private let logger: Logger
    private let clock: SteadyWallClock
    private let database: Locked<SQLiteDatabase?>
    /// Ids recorded while the disk refused writes (id -> record), until `persistMemory`.
    private let memory = Locked<[String: MemoryRecord]>([:])
    private let memoryOnly: Bool
    /// The damaged file moved aside at open, if that happened.
    public let recoveredFromCorruption: String?

    private struct MemoryRecord: Sendable {
        var keepUntilMs: Int64
        var receivedMs: Int64
        var outcome: String?
        var outcomeMs: Int64?
    }

    /// A store without a database (the file could not be opened): ids are kept in memory only,
    /// for the commands toward the safe state that run regardless.
    public init(unavailableAt path: String, skew: Duration = .seconds(30), logger: Logger = Logger(label: "edge-agent.replay")) {
        self.path = path
        self.skewMs = outboxMilliseconds(skew)
        self.logger = logger
        self.clock = SteadyWallClock(wall: nil, monotonic: nil)
        database = Locked(nil)
        memoryOnly = true
        recoveredFromCorruption = nil
    }

    /// Opens (creating if needed) the store at `path`.
    /// - Parameters:
    ///   - now: the wall clock (default `Date()`); tests inject one, and without `monotonic`
    ///     pruning then follows it alone.
    ///   - monotonic: a monotonic reading (any origin); default CLOCK_MONOTONIC when `now` is not injected.
    /// - Throws: `OutboxError` (store `replay store`): `cannotOpen`, `readOnly`, `diskFull`, `io`.
    public init(path: String, skew: Duration = .seconds(30), logger: Logger = Logger(label: "edge-agent.replay"), now: (@Sendable () -> Date)? = nil, monotonic: (@Sendable () -> Duration)? = nil) throws(OutboxError) {
        self.path = path
        self.skewMs = outboxMilliseconds(skew)
        self.logger = logger
        let clock = SteadyWallClock(wall: now, monotonic: monotonic)
        self.clock = clock
        let existed = FileManager.default.fileExists(atPath: path)
        if !existed { DurableFile.removeOrphanedWAL(path) }
        var recovered: String?
        let db: SQLiteDatabase
        do {
            db = try Self.open(path)
        } catch where error.kind == .corrupt {
            let aside = try DurableFile.moveAside(path, store: Self.store, now: clock.wallNow())
            logger.critical("replay store is corrupt: moved aside, starting a fresh one; commands still valid could be replayed", metadata: [
                "file": "\(path)", "moved_to": "\(aside)", "error": "\(error)",
            ])
            recovered = aside
            do { db = try Self.open(path) } catch { throw OutboxError(error, store: Self.store) }
        } catch {
            throw OutboxError(error, store: Self.store)
        }
        recoveredFromCorruption = recovered
        database = Locked(db)
        memoryOnly = false
    }

    private static func open(_ path: String) throws(SQLiteError) -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: path, synchronous: .full)
        do {
            try db.execute("CREATE TABLE IF NOT EXISTS executed(id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL, received_ms INTEGER, outcome TEXT, outcome_ms INTEGER) WITHOUT ROWID")
            // Stores written before outcomes were kept: add the columns (their rows say "outcome not recorded").
            var columns: [String] = []
            try db.query("PRAGMA table_info(executed)", cache: false) { row in columns.append(row.text(1)) }
            if !columns.contains("received_ms") { try db.execute("ALTER TABLE executed ADD COLUMN received_ms INTEGER") }
            if !columns.contains("outcome") { try db.execute("ALTER TABLE executed ADD COLUMN outcome TEXT") }
            if !columns.contains("outcome_ms") { try db.execute("ALTER TABLE executed ADD COLUMN outcome_ms INTEGER") }
            _ = try db.scalar("SELECT count(*) FROM executed")
        } catch {
            db.close()
            throw error
        }
        return db
    }

    /// True when `id` was recorded and has not been pruned. On a storage failure this answers
    /// true (refuse: the safe side for actuating commands) and logs the error.
    public func hasSeen(_ id: String) -> Bool {
        if memory.withLock({ $0[id] != nil }) { return true }
        if memoryOnly { return false }
        do {
            return try withDatabase { db throws(SQLiteError) in
                try db.scalar("SELECT 1 FROM executed WHERE id = ?", [.text(id)]) != nil
            }
        } catch {
            logger.error("replay store read failed; refusing the command", metadata: ["file": "\(path)", "error": "\(error)"])
            return true
        }
    }

    /// Records `id` as executed until `expires` + skew (durable when this returns).
    public func record(_ id: String, expires: Date) throws(OutboxError) {
        _ = try insert(id, expires: expires, replace: true)
    }

    /// Records `id` unless it is already there, atomically; false means it was seen before (a replay).
    public func recordIfNew(_ id: String, expires: Date) throws(OutboxError) -> Bool {
        try insert(id, expires: expires, replace: false)
    }

    /// Records `id` in memory only (the disk refused `recordIfNew`); false when it was seen
    /// before. Written to the file by `persistMemory()`.
    public func recordInMemory(_ id: String, expires: Date) -> Bool {
        if !memoryOnly, hasSeen(id) { return false }
        let wall = outboxMilliseconds(clock.wallNow())
        return memory.withLock { m in
            if m[id] != nil { return false }
            m[id] = MemoryRecord(keepUntilMs: outboxMilliseconds(expires) + skewMs, receivedMs: wall)
            return true
        }
    }

    /// Ids held in memory, not yet in the file.
    public var heldInMemory: Int { memory.withLock { $0.count } }

    /// Writes the ids held in memory (with their outcomes) to the file; returns how many are
    /// still held (0 once all are stored). Nothing to do for a memory-only store.
    @discardableResult
    public func persistMemory() -> Int {
        if memoryOnly { return heldInMemory }
        let held = memory.withLock { $0 }
        for (id, r) in held {
            do {
                _ = try withDatabase { db throws(SQLiteError) in
                    try db.run("INSERT OR REPLACE INTO executed(id, expires_ms, received_ms, outcome, outcome_ms) VALUES(?, ?, ?, ?, ?)",
                               [.text(id), .int(r.keepUntilMs), .int(r.receivedMs), r.outcome.map { .text($0) } ?? .null, r.outcomeMs.map { .int($0) } ?? .null])
                }
                memory.withLock { $0[id] = nil }
            } catch {
                break
            }
        }
        return heldInMemory
    }

    /// What became of a spent id: when it was received, and `executed` or `refused: <contract
    /// code>` and when; nil fields when not known (before the outcome, an agent stopped in
    /// between, or a store written by an older version).
    public struct Use: Sendable, Equatable {
        public var receivedAt: Date?
        public var outcome: String?
        public var at: Date?
    }

    /// The recorded use of `id`, or nil when it is not remembered (or the store cannot be read).
    public func use(of id: String) -> Use? {
        if let r = memory.withLock({ $0[id] }) {
            return Use(receivedAt: Self.date(r.receivedMs), outcome: r.outcome, at: r.outcomeMs.map(Self.date))
        }
        return try? withDatabase { db throws(SQLiteError) -> Use? in
            var found: Use?
            try db.query("SELECT received_ms, outcome, outcome_ms FROM executed WHERE id = ?", [.text(id)]) { row in
                let received: Int64? = row.isNull(0) ? nil : row.int64(0)
                let outcome: String? = row.isNull(1) ? nil : row.text(1)
                let at: Int64? = row.isNull(2) ? nil : row.int64(2)
                found = Use(receivedAt: received.map(Self.date), outcome: outcome, at: at.map(Self.date))
            }
            return found
        }
    }

    private static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    /// Records what became of `id` (recorded before by `recordIfNew`), at `at`.
    public func recordOutcome(_ id: String, outcome: String, at: Date) throws(OutboxError) {
        let inMemory = memory.withLock { m -> Bool in
            guard m[id] != nil else { return false }
            m[id]!.outcome = outcome
            m[id]!.outcomeMs = outboxMilliseconds(at)
            return true
        }
        if inMemory { return }
        do {
            _ = try withDatabase { db throws(SQLiteError) in
                try db.run("UPDATE executed SET outcome = ?, outcome_ms = ? WHERE id = ?", [.text(outcome), .int(outboxMilliseconds(at)), .text(id)])
            }
        } catch {
            throw OutboxError(error, store: Self.store)
        }
    }

    /// The refusal message for a spent id: "id c-7 already used (refused: interlock at
    /// 2026-12-04T10:00:00.000Z)", "(executed at ...)", or "(received at ..., no outcome
    /// recorded)" while it runs or when the agent stopped before it ended.
    public func replayMessage(for id: String) -> String {
        guard let use = use(of: id) else { return "id \(id) already used" }
        if let outcome = use.outcome, let at = use.at { return "id \(id) already used (\(outcome) at \(RFC3339.format(at)))" }
        if let received = use.receivedAt { return "id \(id) already used (received at \(RFC3339.format(received)), no outcome recorded)" }
        return "id \(id) already used"
    }

    /// How many ids are remembered.
    public var count: Int {
        (try? withDatabase { db throws(SQLiteError) in Int(try db.scalar("SELECT count(*) FROM executed") ?? 0) }) ?? 0
    }

    /// Closes the database; later calls fail (`hasSeen` answers true).
    public func close() {
        database.withLock { db in
            db?.close()
            db = nil
        }
    }

    private func insert(_ id: String, expires: Date, replace: Bool) throws(OutboxError) -> Bool {
        // Prune only what has expired on both clocks: a jump forward must not forget live ids.
        let nowMs = min(outboxMilliseconds(clock.wallNow()), outboxMilliseconds(clock.steadyNow()))
        let skew = skewMs
        let keepUntil = outboxMilliseconds(expires) + skew
        let receivedMs = outboxMilliseconds(clock.wallNow())
        do {
            return try withDatabase { db throws(SQLiteError) in
                try db.transaction { () throws(SQLiteError) -> Bool in
                    try db.run("DELETE FROM executed WHERE expires_ms < ?", [.int(nowMs)])
                    let verb = replace ? "INSERT OR REPLACE" : "INSERT OR IGNORE"
                    return try db.run("\(verb) INTO executed(id, expires_ms, received_ms) VALUES(?, ?, ?)", [.text(id), .int(keepUntil), .int(receivedMs)]) > 0
                }
            }
        } catch {
            throw OutboxError(error, store: Self.store)
        }
    }

    private func withDatabase<T: Sendable>(_ body: (SQLiteDatabase) throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try database.withLock { (db) throws(SQLiteError) -> T in
            guard let db else {
                throw SQLiteError(code: 21, extendedCode: 21, message: "replay store is closed", path: path)
            }
            return try body(db)
        }
    }
}
