import CSystemShims
#if canImport(Glibc)
import Glibc
#endif

/// Gives back the code and read-only data pages the process touched only while starting (argument
/// parsing, the config file, profile loading, first connections), so its resident memory is what
/// it runs, not what it ran once.
///
/// How: the heap's free memory goes back first (`malloc_trim`: start-up parses and builds much
/// that it frees), then `madvise(MADV_DONTNEED)` over every mapping that is private, not writable, backed by a
/// file and holds no page of its own (smaps `Anonymous: 0 kB`). Such a page is the file's content
/// as the page cache has it; the next access maps it again from the page cache (a minor fault, no
/// disk read while the page stays cached). Never touched: writable mappings, shared ones, locked
/// ones, the kernel's (`[vdso]`, `[vvar]`, ...), and any mapping with a copy-on-write copy: the
/// RELRO data a loader relocated and then made read-only is such a copy, and dropping it would
/// bring back the file's unrelocated bytes.
public enum ResidentPages {
    /// One mapping that may be released.
    public struct Mapping: Sendable, Equatable {
        public var start: UInt
        public var end: UInt
        public var path: String
        /// Resident KiB when the smaps text was read.
        public var residentKB: Int
        public init(start: UInt, end: UInt, path: String, residentKB: Int) {
            self.start = start
            self.end = end
            self.path = path
            self.residentKB = residentKB
        }
    }

    /// The mappings of `smaps` (the text of /proc/PID/smaps) that may be released, by the rules
    /// above; mappings with nothing resident are left out.
    public static func releasable(smaps: String) -> [Mapping] {
        var found: [Mapping] = []
        var current: Mapping?
        var eligible = false
        var anonymous = 0
        var locked = 0
        func close() {
            if let c = current, eligible, anonymous == 0, locked == 0, c.residentKB > 0 { found.append(c) }
            current = nil
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard current != nil, fields.count >= 2 else { continue }
                switch first {
                case "Rss:": current?.residentKB = Int(fields[1]) ?? 0
                case "Anonymous:": anonymous = Int(fields[1]) ?? 1
                case "Locked:": locked = Int(fields[1]) ?? 1
                case "VmFlags:": if fields.contains("lo") { locked = max(locked, 1) }
                default: break
                }
                continue
            }
            // A mapping's header: "start-end perms offset dev inode [path]".
            close()
            let range = first.split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  fields.count >= 2 else { continue }
            let perms = Array(fields[1].utf8)
            let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
            eligible = perms.count == 4 && perms[0] == UInt8(ascii: "r") && perms[1] == UInt8(ascii: "-")
                && perms[3] == UInt8(ascii: "p") && path.hasPrefix("/")
            anonymous = 0
            locked = 0
            current = Mapping(start: start, end: end, path: path, residentKB: 0)
        }
        close()
        return found
    }

    /// What one release did.
    public struct Released: Sendable, Equatable {
        /// Mappings released.
        public var mappings: Int
        /// KiB that were resident in them.
        public var residentKB: Int
        /// Mappings the kernel refused (left as they were).
        public var refused: Int
    }

    /// Releases this process's start-up pages (see the type's rules). Returns nil when
    /// /proc/self/smaps cannot be read (then only the heap was trimmed).
    @discardableResult
    public static func releaseStartupPages() -> Released? {
        _ = edge_heap_trim()
        guard let text = FilePaths.readProcFile("/proc/self/smaps") else { return nil }
        var released = Released(mappings: 0, residentKB: 0, refused: 0)
        for m in releasable(smaps: text) {
            guard let address = UnsafeMutableRawPointer(bitPattern: m.start) else { continue }
            if madvise(address, Int(m.end - m.start), MADV_DONTNEED) == 0 {
                released.mappings += 1
                released.residentKB += m.residentKB
            } else {
                released.refused += 1
            }
        }
        return released
    }
}
