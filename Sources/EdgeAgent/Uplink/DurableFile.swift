#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import FoundationEssentials

/// Small durable-file helpers for the state folder: atomic replace with fsync (the outbox's
/// `seq` high-water file) and moving a damaged database aside.
enum DurableFile {
    /// Replaces `path` with `contents` atomically: write `path.tmp`, fsync, rename, fsync the folder.
    static func replace(_ path: String, contents: String, store: String) throws(OutboxError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        if fd < 0 { throw error(errno, "open", tmp, store) }
        let bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let n = retryingOnInterrupt { bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
            if n < 0 {
                let e = errno
                close(fd)
                unlink(tmp)
                throw error(e, "write", tmp, store)
            }
            written += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd)
            unlink(tmp)
            throw error(e, "fsync", tmp, store)
        }
        close(fd)
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw error(e, "rename", path, store)
        }
        syncFolder(of: path)
    }

    /// The file's text, or nil when it does not exist.
    static func read(_ path: String, store: String) throws(OutboxError) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else {
            if !FileManager.default.fileExists(atPath: path) { return nil }
            throw OutboxError(code: .io, store: store, path: path, reason: "cannot read")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// fsyncs the folder holding `path` so a rename or create in it is durable.
    static func syncFolder(of path: String) {
        let dir = FilePaths.directory(of: path)
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    /// Moves a damaged SQLite database and its WAL aside to `<path>.corrupt-<UTC timestamp>`
    /// (and `...-wal`), deletes its shared-memory file, and returns the new name.
    static func moveAside(_ path: String, store: String, now: Date) throws(OutboxError) -> String {
        var aside = "\(path).corrupt-\(compactTimestamp(now))"
        var n = 1
        while FileManager.default.fileExists(atPath: aside) {
            aside = "\(path).corrupt-\(compactTimestamp(now))-\(n)"
            n += 1
        }
        if rename(path, aside) != 0, errno != ENOENT { throw error(errno, "rename", path, store) }
        if rename(path + "-wal", aside + "-wal") != 0, errno != ENOENT { throw error(errno, "rename", path + "-wal", store) }
        if unlink(path + "-shm") != 0, errno != ENOENT { throw error(errno, "unlink", path + "-shm", store) }
        syncFolder(of: path)
        return aside
    }

    /// Deletes a WAL and shared-memory file left without their database (never replay them into a new one).
    static func removeOrphanedWAL(_ path: String) {
        _ = unlink(path + "-wal")
        _ = unlink(path + "-shm")
    }

    /// `20261123T063000Z`
    static func compactTimestamp(_ date: Date) -> String {
        let t = RFC3339.format(date, milliseconds: false)
        return t.filter { $0 != "-" && $0 != ":" }
    }

    static func error(_ code: Int32, _ call: String, _ path: String, _ store: String) -> OutboxError {
        let name = errnoName(code)
        let kind: OutboxError.Code
        switch code {
        case ENOSPC, EDQUOT: kind = .diskFull
        case EROFS, EACCES, EPERM: kind = code == EROFS ? .readOnly : .cannotOpen
        case ENOENT, ENOTDIR: kind = .cannotOpen
        default: kind = .io
        }
        let reason = kind == .diskFull ? name : "\(call): \(name) \(String(cString: strerror(code)))"
        return OutboxError(code: kind, store: store, path: path, reason: reason)
    }

    static func errnoName(_ code: Int32) -> String {
        switch code {
        case ENOSPC: return "ENOSPC"
        case EDQUOT: return "EDQUOT"
        case EROFS: return "EROFS"
        case EACCES: return "EACCES"
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case ENOTDIR: return "ENOTDIR"
        case EIO: return "EIO"
        default: return "errno \(code)"
        }
    }
}
