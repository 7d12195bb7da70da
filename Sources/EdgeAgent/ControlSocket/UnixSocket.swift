#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import FoundationEssentials
import CSystemShims

/// The identity of the process at the other end of a Unix socket, from SO_PEERCRED.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// An error of the local control socket, naming the path and the failing call.
public struct ControlSocketError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable { case notRunning, permissionDenied, io, protocolError }
    public var kind: Kind
    public var path: String
    public var message: String
    public var description: String { message }
}

/// Minimal POSIX helpers for AF_UNIX stream sockets (server and client); every fd is closed by its owner.
enum UnixSocket {
    static func makeAddress(_ path: String) -> (sockaddr_un, socklen_t)? {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return (addr, socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1))
    }

    static func errnoText(_ e: Int32 = errno) -> String { String(cString: strerror(e)) }

    /// Creates, binds and listens; `mode` and, when given, group `groupID` (named `groupName`
    /// in messages; resolved when the config was loaded).
    static func listen(path: String, groupID: UInt32?, groupName: String?, mode: mode_t = 0o660) throws(ControlSocketError) -> Int32 {
        guard let (addr, len) = makeAddress(path) else {
            throw ControlSocketError(kind: .io, path: path, message: "control socket path too long: \(path)")
        }
        let dir = FilePaths.directory(of: path)
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError(kind: .io, path: path, message: "socket(): \(errnoText())") }
        var a = addr
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw ControlSocketError(kind: e == EACCES ? .permissionDenied : .io, path: path, message: "cannot bind control socket \(path): \(errnoText(e))")
        }
        chmod(path, mode)
        if let groupID, chown(path, uid_t.max, groupID) != 0 {
            let e = errno
            close(fd)
            throw ControlSocketError(kind: .permissionDenied, path: path, message: "cannot give control socket \(path) to group \(groupName ?? String(groupID)): \(errnoText(e))")
        }
        guard Glibc.listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw ControlSocketError(kind: .io, path: path, message: "listen on \(path): \(errnoText(e))")
        }
        return fd
    }

    static func connect(path: String, timeout: Duration) throws(ControlSocketError) -> Int32 {
        guard let (addr, len) = makeAddress(path) else {
            throw ControlSocketError(kind: .io, path: path, message: "control socket path too long: \(path)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError(kind: .io, path: path, message: "socket(): \(errnoText())") }
        var a = addr
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, len) } }
        if rc != 0 {
            let e = errno
            close(fd)
            switch e {
            case ENOENT, ECONNREFUSED:
                throw ControlSocketError(kind: .notRunning, path: path, message: "edge-agent is not running (no control socket at \(path)); check the service with: systemctl status edge-agent")
            case EACCES, EPERM:
                throw ControlSocketError(kind: .permissionDenied, path: path, message: "permission denied on \(path): join the technicians' group that owns it (ls -l \(path)), then log in again")
            default:
                throw ControlSocketError(kind: .io, path: path, message: "cannot connect to \(path): \(errnoText(e))")
            }
        }
        setTimeout(fd, timeout)
        return fd
    }

    static func setTimeout(_ fd: Int32, _ timeout: Duration) {
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard edge_peer_credentials(fd, &pid, &uid, &gid) == 0 else { return nil }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = retryingOnInterrupt { bytes.withUnsafeBytes { send(fd, $0.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL)) } }
            if n < 0 { return false }
            off += n
        }
        return true
    }

    /// Reads one line (without the newline); nil at EOF, timeout or if longer than `limit`.
    static func readLine(_ fd: Int32, buffer: inout [UInt8], limit: Int = ControlProtocol.maxLineBytes) -> [UInt8]? {
        while true {
            if let nl = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            if buffer.count > limit { return nil }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) } }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }
}
