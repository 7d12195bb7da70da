#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Logging

/// The agent's local control socket: one JSON request per line, one JSON response per line.
///
/// The socket is created mode 0660 (group from config) so only the technicians' group can
/// connect; each connection's peer credentials (SO_PEERCRED) are read, passed to the handler
/// (which checks and audits actuating requests) and logged. Connections are served on their
/// own threads, at most `maxConnections` at once; a request line over 64 KiB closes the
/// connection.
public final class ControlServer: @unchecked Sendable {
    public typealias Handler = @Sendable (ControlRequest, PeerCredentials) -> ControlResponse
    public let path: String
    private let group: String?
    private let logger: Logger
    private let handler: Handler
    private let lock = NSLock()
    private var listenFD: Int32 = -1
    private var running = false
    private var active = 0
    private let maxConnections = 16

    public init(path: String, group: String?, logger: Logger, handler: @escaping Handler) {
        self.path = path
        self.group = group
        self.logger = logger
        self.handler = handler
    }

    /// Binds the socket and starts accepting.
    public func start() throws(ControlSocketError) {
        let fd = try UnixSocket.listen(path: path, group: group)
        lock.withLock {
            listenFD = fd
            running = true
        }
        let t = Thread { [self] in acceptLoop(fd) }
        t.name = "control-socket"
        t.start()
    }

    /// Stops accepting and removes the socket file.
    public func stop() {
        let fd: Int32 = lock.withLock {
            running = false
            let fd = listenFD
            listenFD = -1
            return fd
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
            unlink(path)
        }
    }

    private func acceptLoop(_ fd: Int32) {
        while lock.withLock({ running }) {
            let c = accept(fd, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if !lock.withLock({ running }) { return }
                logger.error("control socket accept failed: \(UnixSocket.errnoText())")
                usleep(100_000)
                continue
            }
            let admitted: Bool = lock.withLock {
                guard active < maxConnections else { return false }
                active += 1
                return true
            }
            guard admitted else {
                _ = UnixSocket.writeAll(c, ControlCoding.encodeLine(ControlResponse.failure(.busy, "too many control connections")))
                close(c)
                continue
            }
            let t = Thread { [self] in
                serve(c)
                close(c)
                lock.withLock { active -= 1 }
            }
            t.name = "control-conn"
            t.start()
        }
    }

    /// Who may use the socket: root, the agent's own user, and members of the socket's group.
    /// The file mode (0660) already keeps others out; this check holds even if it is loosened.
    func isAuthorized(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 || peer.uid == getuid() { return true }
        guard let group, let gr = getgrnam(group) else { return peer.gid == getgid() }
        let gid = gr.pointee.gr_gid
        if peer.gid == gid { return true }
        guard let pw = getpwuid(peer.uid) else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: 64)
        if getgrouplist(pw.pointee.pw_name, pw.pointee.pw_gid, &groups, &count) < 0 { return false }
        return groups.prefix(Int(count)).contains(gid)
    }

    private func serve(_ fd: Int32) {
        guard let peer = UnixSocket.peerCredentials(fd) else {
            logger.warning("control connection without peer credentials refused")
            return
        }
        guard isAuthorized(peer) else {
            logger.warning("control connection refused: peer not in the technicians' group", metadata: ["peer": "\(peer)", "group": "\(group ?? "-")"])
            // Read the request first: closing with unread data would reset the connection
            // and the client would never see why it was refused.
            UnixSocket.setTimeout(fd, .seconds(2))
            var buffer: [UInt8] = []
            _ = UnixSocket.readLine(fd, buffer: &buffer)
            _ = UnixSocket.writeAll(fd, ControlCoding.encodeLine(ControlResponse.failure(
                .permissionDenied, "uid \(peer.uid) may not use the control socket: join group \(group ?? "of the agent") (sudo usermod -aG \(group ?? "GROUP") USER), then log in again")))
            return
        }
        UnixSocket.setTimeout(fd, .seconds(600))
        var buffer: [UInt8] = []
        while let line = UnixSocket.readLine(fd, buffer: &buffer) {
            if line.isEmpty { continue }
            let response: ControlResponse
            do {
                response = handler(try ControlProtocol.decode(line: line), peer)
            } catch {
                response = error.response
            }
            if !UnixSocket.writeAll(fd, ControlCoding.encodeLine(response)) { return }
        }
    }
}

/// A client of the control socket (used by edgectl and tests).
public final class ControlClient {
    private let fd: Int32
    private var buffer: [UInt8] = []
    public let path: String

    /// Connects; throws `.notRunning` when no agent listens, `.permissionDenied` when the
    /// caller is not in the socket's group.
    public init(path: String, timeout: Duration = .seconds(10)) throws(ControlSocketError) {
        self.path = path
        fd = try UnixSocket.connect(path: path, timeout: timeout)
    }

    deinit { close(fd) }

    /// Sends one request and waits for its response.
    public func send(_ request: ControlRequest) throws(ControlSocketError) -> ControlResponse {
        guard UnixSocket.writeAll(fd, ControlCoding.encodeLine(request)) else {
            throw ControlSocketError(kind: .io, path: path, message: "the agent closed the control connection")
        }
        guard let line = UnixSocket.readLine(fd, buffer: &buffer) else {
            let e = errno
            if e == EACCES || e == EPERM {
                throw ControlSocketError(kind: .permissionDenied, path: path, message: "the agent refused this user")
            }
            throw ControlSocketError(kind: .io, path: path, message: "no answer from the agent on \(path)")
        }
        do {
            return try JSONDecoder().decode(ControlResponse.self, from: Data(line))
        } catch {
            throw ControlSocketError(kind: .protocolError, path: path, message: "unreadable answer from the agent: \(error)")
        }
    }
}
