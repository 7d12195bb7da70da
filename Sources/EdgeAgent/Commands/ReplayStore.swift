public import Foundation
public import Logging
import Synchronization

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
public final class ReplayStore: Sendable {
    static let store = "replay store"

    public let path: String
    private let skewMs: Int64
    private let logger: Logger
    private let clock: SteadyWallClock
    private let database: Mutex<SQLiteDatabase?>
    /// The damaged file moved aside at open, if that happened.
    public let recoveredFromCorruption: String?

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
        database = Mutex(db)
    }

    private static func open(_ path: String) throws(SQLiteError) -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: path, synchronous: .full)
        do {
            try db.execute("CREATE TABLE IF NOT EXISTS executed(id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID")
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
        do {
            return try withDatabase { db throws(SQLiteError) in
                try db.transaction { () throws(SQLiteError) -> Bool in
                    try db.run("DELETE FROM executed WHERE expires_ms < ?", [.int(nowMs)])
                    let verb = replace ? "INSERT OR REPLACE" : "INSERT OR IGNORE"
                    return try db.run("\(verb) INTO executed(id, expires_ms) VALUES(?, ?)", [.text(id), .int(keepUntil)]) > 0
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
