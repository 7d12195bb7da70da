#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import FoundationEssentials
public import Logging

/// The agent's local control socket: one JSON request per line, one JSON response per line.
///
/// Access (`ControlAccess`): each connection's peer credentials (SO_PEERCRED) and the peer
/// process's supplementary groups (`/proc/<pid>/status`) give its role once, at connect: a
/// read-only peer may use the reads (`status`, `io.read`), an actuating one every verb; a peer
/// with no role is refused. The socket file is mode 0660, group `control_group`; with a
/// `monitor_group` it is 0666 so that group can connect too, and the role check alone keeps
/// others out (it holds whatever the file mode). No user or group database lookup runs here:
/// the groups were resolved when the config was loaded.
///
/// Limits: at most `maxPerUser` connections of one uid and `maxConnections` in all; a
/// connection beyond them gets a `busy` line and is closed. A connection idle for
/// `idleTimeout` is closed, so idle connections hold their slots for at most that long. Each
/// connection is served on its own thread; a request line over 64 KiB closes it.
public final class ControlServer: Sendable {
    public typealias Handler = @Sendable (ControlRequest, PeerCredentials) -> ControlResponse
    public static let defaultMaxConnections = 16
    public static let defaultMaxPerUser = 4
    public static let defaultIdleTimeout = Duration.seconds(30)

    public let path: String
    private let access: ControlAccess
    private let logger: Logger
    private let handler: Handler
    private let maxConnections: Int
    private let maxPerUser: Int
    private let idleTimeout: Duration
    /// The peer's supplementary groups (tests inject them); default `/proc/<pid>/status`.
    private let groupsOf: @Sendable (PeerCredentials) -> [UInt32]?
    /// The listening socket and the connections being served, by uid.
    private struct State {
        var listenFD: Int32 = -1
        var running = false
        var active = 0
        var activeByUser: [UInt32: Int] = [:]
    }
    private let state = Locked(State())

    public init(path: String, access: ControlAccess, logger: Logger,
                maxConnections: Int = ControlServer.defaultMaxConnections, maxPerUser: Int = ControlServer.defaultMaxPerUser,
                idleTimeout: Duration = ControlServer.defaultIdleTimeout,
                groupsOf: (@Sendable (PeerCredentials) -> [UInt32]?)? = nil,
                handler: @escaping Handler) {
        self.path = path
        self.access = access
        self.logger = logger
        self.maxConnections = maxConnections
        self.maxPerUser = maxPerUser
        self.idleTimeout = idleTimeout
        self.groupsOf = groupsOf ?? { PeerGroups.of(pid: $0.pid, uid: $0.uid) }
        self.handler = handler
    }

    /// Binds the socket and starts accepting.
    public func start() throws(ControlSocketError) {
        let fd = try UnixSocket.listen(path: path, groupID: access.actuateGroupName != nil ? access.actuateGID : nil,
                                       groupName: access.actuateGroupName, mode: access.readGID != nil ? 0o666 : 0o660)
        state.withLock {
            $0.listenFD = fd
            $0.running = true
        }
        OSThread.detached(name: "control-socket") { [self] in acceptLoop(fd) }
    }

    /// Stops accepting and removes the socket file.
    public func stop() {
        let fd: Int32 = state.withLock { s in
            s.running = false
            let fd = s.listenFD
            s.listenFD = -1
            return fd
        }
        if fd >= 0 {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
            unlink(path)
        }
    }

    /// Why a connection of `uid` is not admitted now, or nil (then it is counted).
    private func admit(_ uid: UInt32) -> String? {
        state.withLock { s in
            if s.active >= maxConnections { return "too many control connections (at most \(maxConnections) at once); try again shortly" }
            if s.activeByUser[uid, default: 0] >= maxPerUser {
                return "too many control connections of uid \(uid) (at most \(maxPerUser) at once); close one and try again"
            }
            s.active += 1
            s.activeByUser[uid, default: 0] += 1
            return nil
        }
    }

    private func release(_ uid: UInt32) {
        state.withLock { s in
            s.active -= 1
            s.activeByUser[uid, default: 1] -= 1
            if s.activeByUser[uid] == 0 { s.activeByUser[uid] = nil }
        }
    }

    private func acceptLoop(_ fd: Int32) {
        while state.withLock({ $0.running }) {
            let c = retryingOnInterrupt { accept(fd, nil, nil) }
            if c < 0 {
                if errno == ECONNABORTED { continue }
                if !state.withLock({ $0.running }) { return }
                logger.error("control socket accept failed: \(UnixSocket.errnoText())")
                usleep(100_000)
                continue
            }
            guard let peer = UnixSocket.peerCredentials(c) else {
                logger.warning("control connection without peer credentials refused")
                close(c)
                continue
            }
            if let why = admit(peer.uid) {
                logger.warning("control connection refused: \(why)", metadata: ["peer": "\(peer)"])
                UnixSocket.setTimeout(c, .milliseconds(200))
                _ = UnixSocket.writeAll(c, ControlCoding.encodeLine(ControlResponse.failure(.busy, why)))
                close(c)
                continue
            }
            OSThread.detached(name: "control-conn") { [self] in
                serve(c, peer: peer)
                close(c)
                release(peer.uid)
            }
        }
    }

    /// The role of `peer` (nil: none): its primary gid and its process's supplementary groups,
    /// or the primary gid alone when `/proc` cannot tell.
    func role(of peer: PeerCredentials) -> ControlRole? {
        access.role(uid: peer.uid, gid: peer.gid, groups: groupsOf(peer) ?? [])
    }

    private func serve(_ fd: Int32, peer: PeerCredentials) {
        guard let role = role(of: peer) else {
            logger.warning("control connection refused: peer in neither the technicians' nor the monitoring group", metadata: ["peer": "\(peer)"])
            // Read the request first: closing with unread data would reset the connection
            // and the client would never see why it was refused.
            UnixSocket.setTimeout(fd, .seconds(2))
            var buffer: [UInt8] = []
            _ = UnixSocket.readLine(fd, buffer: &buffer)
            _ = UnixSocket.writeAll(fd, ControlCoding.encodeLine(ControlResponse.failure(
                .permissionDenied, "uid \(peer.uid) may not use the control socket: \(access.howToJoin(.read))")))
            return
        }
        UnixSocket.setTimeout(fd, idleTimeout)
        var buffer: [UInt8] = []
        while let line = UnixSocket.readLine(fd, buffer: &buffer) {
            if line.isEmpty { continue }
            let response: ControlResponse
            do {
                let request = try ControlProtocol.decode(line: line)
                let needed = ControlProtocol.requiredRole(verb: request.verb)
                if role < needed {
                    logger.warning("control request refused: read-only peer", metadata: ["peer": "\(peer)", "verb": "\(CommandVerifier.printable(request.verb))"])
                    response = .failure(.permissionDenied, "uid \(peer.uid) may only read (status, watch, io read), not \(CommandVerifier.printable(request.verb)): \(access.howToJoin(.actuate))")
                } else {
                    response = handler(request, peer)
                }
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
            // Refused at connect (busy): the agent said why before it closed.
            if let line = UnixSocket.readLine(fd, buffer: &buffer), let refusal = try? JSONDecoder().decode(ControlResponse.self, from: Data(line)) {
                return refusal
            }
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
