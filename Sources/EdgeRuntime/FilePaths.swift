import Glibc

/// Path strings as the agent uses them (POSIX, `/`-separated), without Foundation's NSString:
/// the folder of a file, its last component, joining, and what a path names (stat).
public enum FilePaths {
    /// What a path names.
    public enum Kind: Sendable, Equatable {
        case file
        case directory
        case other
    }

    /// The folder of `path`, as NSString's `deletingLastPathComponent`: `/a/b` -> `/a`,
    /// `/a` -> `/`, `b` -> `` (repeated and trailing slashes ignored).
    public static func directory(of path: String) -> String {
        let parts = components(path)
        let folder = parts.dropLast().joined(separator: "/")
        return path.hasPrefix("/") ? "/" + folder : folder
    }

    /// The last component of `path`: `/a/b.yaml` -> `b.yaml`, `/` -> `/` (repeated and trailing
    /// slashes ignored).
    public static func lastComponent(_ path: String) -> String {
        components(path).last.map(String.init) ?? (path.hasPrefix("/") ? "/" : "")
    }

    private static func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// `name` inside `folder` (`name` as is when it is absolute or `folder` is empty).
    public static func join(_ folder: String, _ name: String) -> String {
        if folder.isEmpty || name.hasPrefix("/") { return name }
        return folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// What `path` names (following symbolic links), or nil when nothing is there (stat).
    public static func kind(_ path: String) -> Kind? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .directory
        default: return .other
        }
    }

    /// The whole of a /proc file (the kernel reports its size as 0: read to EOF), at most
    /// `limit` bytes; nil when it cannot be opened or read.
    public static func readProcFile(_ path: String, limit: Int = .max) -> String? {
        let fd = retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let want = min(chunk.count, limit - bytes.count)
            let n = chunk.withUnsafeMutableBytes { buffer in retryingOnInterrupt { read(fd, buffer.baseAddress, want) } }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The process's standard output and error, written with write(2): whole text, short writes
/// continued, EINTR retried (the FileHandle replacement for the daemon and the CLI).
public enum StandardStream: Int32, Sendable {
    case output = 1
    case error = 2

    /// Writes all of `text`; gives up quietly when the stream is closed.
    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        let fd = rawValue
        while offset < bytes.count {
            let n = retryingOnInterrupt { bytes[offset...].withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
            if n <= 0 { return }
            offset += n
        }
    }
}

extension String {
    /// printf-style formatting through the C library's vsnprintf: the `String(format:)`
    /// replacement (FoundationEssentials has none) for numbers and C strings. `%@` is not
    /// supported; pass Swift strings interpolated or as `%s` of a C string.
    public init(cFormat format: String, _ arguments: any CVarArg...) {
        var buffer = [CChar](repeating: 0, count: 64)
        while true {
            let needed = withVaList(arguments) { args in
                buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, $0.count, format, args) }
            }
            if needed < 0 { self = ""; return }
            if Int(needed) < buffer.count {
                self = buffer.withUnsafeBufferPointer { String(decoding: $0[..<Int(needed)].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
                return
            }
            buffer = [CChar](repeating: 0, count: Int(needed) + 1)
        }
    }
}
