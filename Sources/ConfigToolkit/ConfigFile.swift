#if canImport(Glibc)
import EdgeRuntime
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a config file's bytes with POSIX calls (no Foundation), telling apart the faults a
/// technician fixes differently.
package enum ConfigFile {
    package enum Fault: Error, Equatable {
        /// Nothing at the path (or a folder on the way cannot be searched).
        case notFound
        case isFolder
        /// Exists but cannot be opened or read (permissions, I/O error).
        case unreadable
    }

    /// The whole file (symbolic links followed).
    package static func read(_ path: String) -> Result<[UInt8], Fault> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(.notFound) }
        if info.st_mode & S_IFMT == S_IFDIR { return .failure(.isFolder) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(.unreadable) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size) + 1)
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { readBytes(fd, $0.baseAddress, $0.count) } }
            if n == 0 { return .success(bytes) }
            if n < 0 { return .failure(.unreadable) }
            bytes.append(contentsOf: chunk[0..<n])
        }
    }

    /// The bytes as a String when they are valid UTF-8 (nothing repaired), else nil.
    package static func utf8(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        // Decoding replaces each invalid sequence with U+FFFD, which changes the bytes.
        return text.utf8.elementsEqual(bytes) ? text : nil
    }
}

/// libc's read(2), out of reach of `ConfigFile.read` by name.
private func readBytes(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}
