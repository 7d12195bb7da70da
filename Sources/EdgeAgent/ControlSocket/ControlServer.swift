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
                _ = UnixSocket.writeAll(c, ControlCoding.encodeLine(ControlResponse.failure("busy", "too many control connections")))
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

    private func serve(_ fd: Int32) {
        guard let peer = UnixSocket.peerCredentials(fd) else {
            logger.warning("control connection without peer credentials refused")
            return
        }
        UnixSocket.setTimeout(fd, .seconds(600))
        var buffer: [UInt8] = []
        let decoder = JSONDecoder()
        while let line = UnixSocket.readLine(fd, buffer: &buffer) {
            if line.isEmpty { continue }
            let response: ControlResponse
            do {
                let request = try decoder.decode(ControlRequest.self, from: Data(line))
                response = handler(request, peer)
            } catch {
                response = .failure("malformed", "request is not a JSON object with a \"verb\": \(error)")
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
