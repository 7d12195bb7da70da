/// A failure of the durable stores under the state folder (outbox, replay store, sequence file).
///
/// The description names the store and the file, says what is wrong in a technician's words,
/// and ends with the C-level reason: `outbox /var/lib/edge-agent/outbox.db: disk full (SQLITE_FULL)`.
public struct OutboxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong, grouped by what an operator does about it.
    public enum Code: String, Sendable, Equatable {
        /// No space left (SQLITE_FULL, ENOSPC): free space on the state folder's file system.
        case diskFull = "disk full"
        /// The database file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB).
        case corrupt = "corrupt database"
        /// The file or its folder cannot be opened or created (SQLITE_CANTOPEN, ENOENT, EACCES).
        case cannotOpen = "cannot open"
        /// The file or file system is read-only (SQLITE_READONLY, EROFS).
        case readOnly = "read-only"
        /// Another process holds the database lock past the busy timeout.
        case busy = "busy"
        /// The operating system refused a read, write or fsync (SQLITE_IOERR, EIO).
        case io = "I/O error"
        /// `close()` was called.
        case closed = "closed"
        /// A caller passed a value outside the documented range.
        case invalidArgument = "invalid argument"
        case other = "error"
    }

    public var code: Code
    /// Which store: `outbox` or `replay store`.
    public var store: String
    /// The file at fault.
    public var path: String
    /// The C-level reason: `SQLITE_FULL`, `ENOSPC`, `SQLITE_NOTADB: file is not a database`.
    public var reason: String
    /// SQLite's extended result code when SQLite reported the failure.
    public var sqliteCode: Int32?

    public init(code: Code, store: String, path: String, reason: String, sqliteCode: Int32? = nil) {
        self.code = code
        self.store = store
        self.path = path
        self.reason = reason
        self.sqliteCode = sqliteCode
    }

    init(_ error: SQLiteError, store: String) {
        let code: Code
        switch error.kind {
        case .diskFull: code = .diskFull
        case .corrupt: code = .corrupt
        case .cannotOpen: code = .cannotOpen
        case .readOnly: code = .readOnly
        case .busy: code = .busy
        case .ioError: code = .io
        case .other: code = .other
        }
        let reason = code == .diskFull ? error.codeName : "\(error.codeName): \(error.message)"
        self.init(code: code, store: store, path: error.path, reason: reason, sqliteCode: error.extendedCode)
    }

    public var description: String { "\(store) \(path): \(code.rawValue) (\(reason))" }
}
