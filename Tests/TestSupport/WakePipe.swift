#if canImport(Glibc)
import Glibc
#endif

/// A close-on-exec pipe that wakes a test thread blocked in `poll`: poll `readFD` for POLLIN,
/// `wake()` from any thread, `drain()` in the woken thread. `close()` once the thread is done.
public struct WakePipe: Sendable {
    public let readFD: Int32
    private let writeFD: Int32

    /// The pipe could not be made.
    public struct Failure: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { "pipe(): errno \(errno)" }
    }

    public init() throws(Failure) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Failure(errno: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        readFD = fds[0]
        writeFD = fds[1]
    }

    /// Makes `readFD` readable (until drained).
    public func wake() {
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }

    /// Reads what wake-ups are pending.
    public func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        _ = read(readFD, &buffer, buffer.count)
    }

    public func close() {
        _ = Glibc.close(readFD)
        _ = Glibc.close(writeFD)
    }
}
