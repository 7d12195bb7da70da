#if canImport(Glibc)
import Glibc
#endif
public import FoundationEssentials
import EdgeRuntime

/// Who asked for an audited action.
public enum AuditOrigin: Sendable, Equatable, CustomStringConvertible {
    /// A signed centre command, by the key id that verified it.
    case centre(keyID: String)
    /// A technician on the local control socket, by the peer's uid (SO_PEERCRED).
    case local(uid: UInt32)

    /// `centre:<kid>` or `local:uid=<uid>`.
    public var description: String {
        switch self {
        case .centre(let kid): return "centre:\(kid)"
        case .local(let uid): return "local:uid=\(uid)"
        }
    }
}

/// The outcome of an audited action: done, or refused/failed with a contract error code.
public enum AuditResult: Sendable, Equatable {
    case ok
    case error(code: CommandError.Code, message: String)
}

/// A failure writing or opening the audit log, with the file and the errno.
public struct AuditLogError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    /// The system call that failed (`open`, `write`, `fsync`).
    public var call: String
    public var errno: Int32

    public var description: String { "audit log \(path): \(call) failed: \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The append-only audit trail of commands (`<state_dir>/audit.log`): one JSON object per line,
/// written with one `write` in append mode and fsynced before `record` returns, so entries
/// survive restarts and power loss.
///
/// Line: `{"ts","origin","id","target","action","args":{...},"result":"ok"|"error","error":{"code","message"}}`
/// (`id` null for local actions without one; `error` only when the result is an error).
/// A line torn by a crash is terminated at the next open so later entries stay one per line.
/// Thread-safe; entries from concurrent callers never interleave.
public final class AuditLog: Sendable {
    public let path: String
    private let fd: Locked<Int32>

    /// Opens (creating, mode 0640) the log at `path`.
    public init(path: String) throws(AuditLogError) {
        self.path = path
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        if descriptor < 0 { throw AuditLogError(path: path, call: "open", errno: errno) }
        // Terminate a line torn by a crash.
        let size = lseek(descriptor, 0, SEEK_END)
        if size > 0 {
            var last: UInt8 = 0
            let reader = open(path, O_RDONLY | O_CLOEXEC)
            if reader >= 0 {
                if pread(reader, &last, 1, size - 1) == 1, last != UInt8(ascii: "\n") {
                    var newline = UInt8(ascii: "\n")
                    _ = write(descriptor, &newline, 1)
                    _ = fsync(descriptor)
                }
                Glibc.close(reader)
            }
        }
        fd = Locked(descriptor)
    }

    deinit { close() }

    /// Appends one entry and fsyncs it.
    /// - Parameters:
    ///   - id: the command id (centre commands always have one).
    ///   - args: the command's arguments as received.
    public func record(origin: AuditOrigin, id: String?, target: String, action: String, args: [String: ControlValue] = [:], result: AuditResult, at time: Date = Date()) throws(AuditLogError) {
        var line = "{\"ts\":\(Self.quote(RFC3339.format(time))),\"origin\":\(Self.quote(origin.description)),\"id\":\(id.map(Self.quote) ?? "null")"
        line += ",\"target\":\(Self.quote(target)),\"action\":\(Self.quote(action)),\"args\":\(Self.encode(args))"
        switch result {
        case .ok:
            line += ",\"result\":\"ok\"}"
        case .error(let code, let message):
            line += ",\"result\":\"error\",\"error\":{\"code\":\(Self.quote(code.rawValue)),\"message\":\(Self.quote(message))}}"
        }
        line += "\n"
        let bytes = Array(line.utf8)
        let path = self.path
        try fd.withLock { (descriptor: inout Int32) throws(AuditLogError) in
            guard descriptor >= 0 else { throw AuditLogError(path: path, call: "write", errno: EBADF) }
            var written = 0
            while written < bytes.count {
                let n = retryingOnInterrupt { bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } }
                if n < 0 { throw AuditLogError(path: path, call: "write", errno: errno) }
                written += n
            }
            if fsync(descriptor) != 0 { throw AuditLogError(path: path, call: "fsync", errno: errno) }
        }
    }

    /// The last `n` entries (raw JSON lines without the newline), oldest first; empty when unreadable.
    public func tail(_ n: Int) -> [String] {
        guard n > 0 else { return [] }
        let reader = open(path, O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { return [] }
        defer { Glibc.close(reader) }
        let size = Int(lseek(reader, 0, SEEK_END))
        // Read backwards in chunks until n + 1 newlines (or the start) are in hand.
        var buffer: [UInt8] = []
        var offset = size
        let chunk = 65_536
        while offset > 0 {
            let length = min(chunk, offset)
            offset -= length
            var part = [UInt8](repeating: 0, count: length)
            let got = part.withUnsafeMutableBytes { pread(reader, $0.baseAddress, length, off_t(offset)) }
            if got != length { return [] }
            buffer = part + buffer
            if buffer.lazy.filter({ $0 == UInt8(ascii: "\n") }).count > n { break }
        }
        let lines = buffer.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        return lines.suffix(n).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Closes the file; later `record` calls throw.
    public func close() {
        fd.withLock { descriptor in
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }

    /// A JSON string literal.
    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f || scalar.value == 0x2028 || scalar.value == 0x2029 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    static func encode(_ args: [String: ControlValue]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(args) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
