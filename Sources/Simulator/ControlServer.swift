#if canImport(Glibc)
import Glibc
#endif
import EdgeRuntime
import Foundation
import Logging

/// One connection to the control socket. `send` writes whole lines under the peer's own lock, so
/// GPIO events from other threads never interleave with replies.
final class ControlPeer: @unchecked Sendable {
    let fd: Int32
    var buffer: [UInt8] = []
    private let lock = EdgeRuntime.Lock()
    private var watcher = false
    private var broken = false

    init(fd: Int32) { self.fd = fd }

    /// True once the connection became a GPIO link (`gpio-watch`).
    var isWatcher: Bool {
        get { lock.withLock { watcher } }
        set { lock.withLock { watcher = newValue } }
    }

    /// True after a send failed (peer gone or not reading); the control thread then drops it.
    var isBroken: Bool { lock.withLock { broken } }

    /// Sends `line` plus a newline; never blocks (a peer that does not read is dropped).
    func send(_ line: String) {
        lock.withLock {
            guard !broken else { return }
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            var offset = 0
            while offset < bytes.count {
                let n = retryingOnInterrupt { bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) } }
                if n < 0 {
                    broken = true
                    return
                }
                offset += n
            }
        }
    }
}

/// The simulator's control socket: a unix stream socket served by one thread with poll().
final class ControlSocketServer: @unchecked Sendable {
    let path: String
    private let logger: Logger
    private weak var simulator: FieldSimulator?
    private let listener: Int32
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let done = Event()
    private let watchLock = EdgeRuntime.Lock()
    private var watchers: [ControlPeer] = []
    private var peers: [ControlPeer] = []   // control thread only
    private var started = false

    init(path: String, logger: Logger, simulator: FieldSimulator) throws(SimError) {
        self.path = path
        self.logger = logger
        self.simulator = simulator
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw SimError("control socket path \(path) is empty or longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        // A stale socket from a killed simulator would make bind fail: remove sockets only.
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimError("control socket: socket(): \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(fd, 16) == 0 else {
            let e = errno
            close(fd)
            throw SimError("cannot listen on control socket \(path): \(String(cString: strerror(e)))")
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            close(fd)
            throw SimError("control socket: pipe(): \(String(cString: strerror(errno)))")
        }
        for f in fds { _ = fcntl(f, F_SETFD, FD_CLOEXEC) }
        listener = fd
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    func start() {
        started = true
        OSThread.detached(name: "sim-control") { [self] in
            run()
            done.set()
        }
    }

    func stop() {
        guard started else { return }
        started = false
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        done.wait()
        close(wakeRead)
        close(wakeWrite)
        unlink(path)
    }

    /// Registers `peer` as a GPIO link and sends it the current value of every line.
    /// Called with the simulator's lock held, so no change can slip between snapshot and registration.
    func addWatcher(_ peer: ControlPeer, initial: [String]) {
        peer.isWatcher = true
        watchLock.withLock { watchers.append(peer) }
        for line in initial { peer.send(line) }
    }

    /// Sends a GPIO event line to every GPIO link but `except` (called with the simulator's lock held).
    func broadcast(_ line: String, except: ControlPeer?) {
        let targets = watchLock.withLock { watchers }
        for peer in targets where peer !== except { peer.send(line) }
    }

    private func run() {
        var pfds: [pollfd] = []
        serving: while true {
            pfds.removeAll(keepingCapacity: true)
            pfds.append(pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0))
            pfds.append(pollfd(fd: listener, events: Int16(POLLIN), revents: 0))
            for p in peers { pfds.append(pollfd(fd: p.fd, events: Int16(POLLIN), revents: 0)) }
            let n = retryingOnInterrupt { poll(&pfds, nfds_t(pfds.count), -1) }
            if n < 0 {
                logger.error("control socket poll failed", metadata: ["errno": .stringConvertible(errno)])
                break serving
            }
            if pfds[0].revents != 0 { break serving }
            if pfds[1].revents != 0 {
                let fd = accept(listener, nil, nil)
                if fd >= 0 {
                    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                    peers.append(ControlPeer(fd: fd))
                }
            }
            var gone: [ControlPeer] = []
            for p in pfds.dropFirst(2) where p.revents != 0 {
                guard let peer = peers.first(where: { $0.fd == p.fd }) else { continue }
                if !serve(peer) || peer.isBroken { gone.append(peer) }
            }
            // Watchers that stopped reading are dropped too.
            for peer in peers where peer.isBroken && !gone.contains(where: { $0 === peer }) { gone.append(peer) }
            if !gone.isEmpty { drop(gone) }
        }
        drop(peers)
        close(listener)
    }

    private func drop(_ gone: [ControlPeer]) {
        watchLock.withLock { watchers.removeAll { w in gone.contains { $0 === w } } }
        for peer in gone { close(peer.fd) }
        peers.removeAll { p in gone.contains { $0 === p } }
    }

    /// Reads from `peer` and answers every complete line. Returns false when the peer closed.
    private func serve(_ peer: ControlPeer) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { recv(peer.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) } }
        if n == 0 { return false }
        if n < 0 { return errno == EAGAIN }
        peer.buffer.append(contentsOf: chunk[0..<n])
        while let newline = peer.buffer.firstIndex(of: 0x0A) {
            let line = String(decoding: peer.buffer[..<newline], as: UTF8.self)
            peer.buffer.removeSubrange(...newline)
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            guard let simulator else { return false }
            switch simulator.handleControl(line, peer: peer) {
            case let .reply(text): peer.send(text)
            case .silent: break
            }
        }
        if peer.buffer.count > 65536 {
            peer.send(JSON.failure("line too long"))
            return false
        }
        return true
    }
}

/// Sends one command to a running simulator's control socket and returns the reply line.
public enum SimControlClient {
    /// Connects to `path`, sends `command` and a newline, and reads one line (bounded by `timeout`).
    public static func send(_ command: String, to path: String, timeout: Duration = .seconds(5)) throws(SimError) -> String {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SimError("control socket path \(path) is empty or too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimError("socket(): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let (s, us) = (timeout.components.seconds, timeout.components.attoseconds / 1_000_000_000_000)
        var tv = timeval(tv_sec: Int(s), tv_usec: Int(us))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw SimError("cannot connect to \(path): \(String(cString: strerror(errno)))") }
        let out = Array((command + "\n").utf8)
        let sent = out.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == out.count else { throw SimError("cannot send to \(path): \(String(cString: strerror(errno)))") }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(0x0A) {
            let n = retryingOnInterrupt { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            if n > 0 { reply.append(contentsOf: chunk[0..<n]); continue }
            if n < 0 { throw SimError("no reply from \(path): \(String(cString: strerror(errno)))") }
            break
        }
        guard let end = reply.firstIndex(of: 0x0A) else { throw SimError("connection closed by \(path) without a reply") }
        return String(decoding: reply[..<end], as: UTF8.self)
    }
}
