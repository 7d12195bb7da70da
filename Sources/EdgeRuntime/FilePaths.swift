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
    /// `/a` -> `/`, `b` -> `` (trailing slashes ignored).
    public static func directory(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.last == "/" { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        var dir = p[..<slash]
        while dir.count > 1, dir.last == "/" { dir = dir.dropLast() }
        return String(dir)
    }

    /// The last component of `path`: `/a/b.yaml` -> `b.yaml` (trailing slashes ignored).
    public static func lastComponent(_ path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.last == "/" { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return String(p) }
        return p.count == 1 ? "/" : String(p[p.index(after: slash)...])
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
