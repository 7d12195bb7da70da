// The one file that touches SQLite's C API (CSQLite): every pointer, handle and result code
// lives here. Callers see `SQLiteDatabase`, `SQLiteValue`, `SQLiteRow` and `SQLiteError`.
import EdgeRuntime
import CSQLite

/// A failed SQLite call: the primary and extended result codes, SQLite's message and the
/// database file, so a technician sees which file failed and why.
///
/// `kind` groups the codes the agent reacts to differently (disk full, corrupt file, cannot
/// open, read-only); everything else is `.other`.
public struct SQLiteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The primary result code (`SQLITE_FULL` = 13, ...).
    public var code: Int32
    /// The extended result code (`SQLITE_IOERR_FSYNC`, ...); equals `code` when there is none.
    public var extendedCode: Int32
    /// SQLite's own message for the failure.
    public var message: String
    /// The database file.
    public var path: String

    public init(code: Int32, extendedCode: Int32, message: String, path: String) {
        self.code = code
        self.extendedCode = extendedCode
        self.message = message
        self.path = path
    }

    /// What the failure means for the caller.
    public enum Kind: Sendable, Equatable {
        /// SQLITE_FULL: the file system (or a size limit) is full.
        case diskFull
        /// SQLITE_CORRUPT or SQLITE_NOTADB: the file is damaged or not a database.
        case corrupt
        /// SQLITE_CANTOPEN: the file or its folder cannot be opened/created.
        case cannotOpen
        /// SQLITE_READONLY or SQLITE_PERM: the file may not be written.
        case readOnly
        /// SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock past the busy timeout.
        case busy
        /// SQLITE_IOERR: the operating system refused a read, write or fsync.
        case ioError
        case other
    }

    public var kind: Kind {
        switch code {
        case SQLITE_FULL: return .diskFull
        case SQLITE_CORRUPT, SQLITE_NOTADB: return .corrupt
        case SQLITE_CANTOPEN: return .cannotOpen
        case SQLITE_READONLY, SQLITE_PERM: return .readOnly
        case SQLITE_BUSY, SQLITE_LOCKED: return .busy
        case SQLITE_IOERR: return .ioError
        default: return .other
        }
    }

    /// The symbolic name of the primary code, e.g. `SQLITE_FULL`.
    public var codeName: String { SQLiteError.name(of: code) }

    public var description: String { "\(path): \(message) (\(codeName), extended \(extendedCode))" }

    static func name(of code: Int32) -> String {
        let names: [Int32: String] = [
            SQLITE_OK: "SQLITE_OK", SQLITE_ERROR: "SQLITE_ERROR", SQLITE_INTERNAL: "SQLITE_INTERNAL",
            SQLITE_PERM: "SQLITE_PERM", SQLITE_ABORT: "SQLITE_ABORT", SQLITE_BUSY: "SQLITE_BUSY",
            SQLITE_LOCKED: "SQLITE_LOCKED", SQLITE_NOMEM: "SQLITE_NOMEM", SQLITE_READONLY: "SQLITE_READONLY",
            SQLITE_INTERRUPT: "SQLITE_INTERRUPT", SQLITE_IOERR: "SQLITE_IOERR", SQLITE_CORRUPT: "SQLITE_CORRUPT",
            SQLITE_NOTFOUND: "SQLITE_NOTFOUND", SQLITE_FULL: "SQLITE_FULL", SQLITE_CANTOPEN: "SQLITE_CANTOPEN",
            SQLITE_PROTOCOL: "SQLITE_PROTOCOL", SQLITE_EMPTY: "SQLITE_EMPTY", SQLITE_SCHEMA: "SQLITE_SCHEMA",
            SQLITE_TOOBIG: "SQLITE_TOOBIG", SQLITE_CONSTRAINT: "SQLITE_CONSTRAINT", SQLITE_MISMATCH: "SQLITE_MISMATCH",
            SQLITE_MISUSE: "SQLITE_MISUSE", SQLITE_NOLFS: "SQLITE_NOLFS", SQLITE_AUTH: "SQLITE_AUTH",
            SQLITE_FORMAT: "SQLITE_FORMAT", SQLITE_RANGE: "SQLITE_RANGE", SQLITE_NOTADB: "SQLITE_NOTADB",
            SQLITE_NOTICE: "SQLITE_NOTICE", SQLITE_WARNING: "SQLITE_WARNING",
        ]
        return names[code & 0xff] ?? "SQLITE_\(code)"
    }
}

/// A value bound to a statement parameter.
enum SQLiteValue {
    case int(Int64)
    case text(String)
    case blob([UInt8])
    case null
}

/// The current row of a stepping statement; valid only inside the row callback.
struct SQLiteRow: ~Copyable {
    fileprivate let statement: OpaquePointer

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(statement, column) else { return "" }
        let n = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    func blob(_ column: Int32) -> [UInt8] {
        guard let p = sqlite3_column_blob(statement, column) else { return [] }
        let n = Int(sqlite3_column_bytes(statement, column))
        return [UInt8](UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// One SQLite connection with a cache of prepared statements.
///
/// Not thread-safe: the owner serialises every call (the connection is opened with
/// `SQLITE_OPEN_NOMUTEX`). Opens in WAL mode with the given `synchronous` level and a busy
/// timeout, extended result codes on. `close()` finalises the cached statements and closes
/// the handle; using the database afterwards throws `SQLITE_MISUSE`.
final class SQLiteDatabase {
    /// `PRAGMA synchronous` levels used here.
    enum Synchronous: String {
        /// WAL: commits survive a process crash (kill -9); the WAL is fsynced at checkpoints.
        case normal = "NORMAL"
        /// WAL: every commit fsyncs the WAL; also survives power loss.
        case full = "FULL"
    }

    let path: String
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Opens (creating if missing) the database at `path`.
    ///
    /// Throws the first failing step; a file that is not a database fails here with
    /// `SQLITE_NOTADB` (`kind == .corrupt`), since setting WAL mode reads the header.
    init(path: String, synchronous: Synchronous = .normal, busyTimeout: Duration = .seconds(5)) throws(SQLiteError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let error = SQLiteError(
                code: rc & 0xff, extendedCode: db.map { sqlite3_extended_errcode($0) } ?? rc,
                message: db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc)),
                path: path)
            if let db { sqlite3_close_v2(db) }
            throw error
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        let ms = busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000
        sqlite3_busy_timeout(db, Int32(clamping: ms))
        do {
            var mode = ""
            try query("PRAGMA journal_mode=WAL", cache: false) { row in mode = row.text(0) }
            if mode.lowercased() != "wal" {
                throw SQLiteError(code: SQLITE_ERROR, extendedCode: SQLITE_ERROR, message: "cannot switch to WAL mode (journal_mode is \(mode))", path: path)
            }
            try execute("PRAGMA synchronous=\(synchronous.rawValue)")
            // Keep the WAL file from staying huge after a burst (checkpoints truncate it to this size).
            try execute("PRAGMA journal_size_limit=8388608")
        } catch {
            close()
            throw (error as? SQLiteError) ?? SQLiteError(code: SQLITE_ERROR, extendedCode: SQLITE_ERROR, message: "\(error)", path: path)
        }
    }

    deinit { close() }

    /// Finalises every cached statement and closes the connection. Idempotent.
    func close() {
        for (_, statement) in statements { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one or more statements without results (schema, pragmas).
    func execute(_ sql: String) throws(SQLiteError) {
        let db = try open()
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errmsg)
        if let errmsg { sqlite3_free(errmsg) }
        if rc != SQLITE_OK { throw lastError(rc) }
    }

    /// Runs one statement with `bindings`, stepping to completion; returns the rows changed.
    @discardableResult
    func run(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> Int {
        let db = try open()
        let statement = try prepare(sql, cache: true)
        defer { sqlite3_reset(statement); sqlite3_clear_bindings(statement) }
        try bind(bindings, to: statement)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            if rc != SQLITE_ROW { throw lastError(rc) }
        }
        return Int(sqlite3_changes64(db))
    }

    /// Runs one statement with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLiteValue] = [], cache: Bool = true, row: (borrowing SQLiteRow) throws(SQLiteError) -> Void) throws(SQLiteError) {
        _ = try open()
        let statement = try prepare(sql, cache: cache)
        defer {
            if cache { sqlite3_reset(statement); sqlite3_clear_bindings(statement) } else { sqlite3_finalize(statement) }
        }
        try bind(bindings, to: statement)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            if rc != SQLITE_ROW { throw lastError(rc) }
            try row(SQLiteRow(statement: statement))
        }
    }

    /// The first column of the first row as an integer, or nil when there is no row or it is NULL.
    func scalar(_ sql: String, _ bindings: [SQLiteValue] = []) throws(SQLiteError) -> Int64? {
        var value: Int64?
        try query(sql, bindings) { row in
            if value == nil, !row.isNull(0) { value = row.int64(0) }
        }
        return value
    }

    /// Runs `body` inside `BEGIN IMMEDIATE ... COMMIT`; rolls back when `body` or the commit fails.
    func transaction<T>(_ body: () throws(SQLiteError) -> T) throws(SQLiteError) -> T {
        try run("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            if let db = handle, sqlite3_get_autocommit(db) == 0 { _ = sqlite3_exec(db, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    // MARK: - Internals

    private func open() throws(SQLiteError) -> OpaquePointer {
        guard let handle else {
            throw SQLiteError(code: SQLITE_MISUSE, extendedCode: SQLITE_MISUSE, message: "database is closed", path: path)
        }
        return handle
    }

    private func prepare(_ sql: String, cache: Bool) throws(SQLiteError) -> OpaquePointer {
        let db = try open()
        if cache, let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, cache ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw lastError(rc) }
        if cache { statements[sql] = statement }
        return statement
    }

    private func bind(_ values: [SQLiteValue], to statement: OpaquePointer) throws(SQLiteError) {
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .int(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .text(let s): rc = sqlite3_bind_text(statement, index, s, -1, edge_sqlite_transient())
            case .blob(let bytes):
                if bytes.isEmpty {
                    rc = sqlite3_bind_zeroblob(statement, index, 0)
                } else {
                    rc = bytes.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), edge_sqlite_transient()) }
                }
            case .null: rc = sqlite3_bind_null(statement, index)
            }
            if rc != SQLITE_OK { throw lastError(rc) }
        }
    }

    private func lastError(_ rc: Int32) -> SQLiteError {
        guard let handle else {
            return SQLiteError(code: rc & 0xff, extendedCode: rc, message: String(cString: sqlite3_errstr(rc)), path: path)
        }
        let extended = sqlite3_extended_errcode(handle)
        return SQLiteError(code: rc & 0xff, extendedCode: extended, message: String(cString: sqlite3_errmsg(handle)), path: path)
    }
}
