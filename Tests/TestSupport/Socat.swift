#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A pair of connected pseudo-terminals made by `socat`, standing in for an RS-485 bus:
/// bytes written to one end come out of the other. Stopped (socat killed) on `stop()` or release.
public final class SocatPair: @unchecked Sendable {
    /// The two ends (symlinks to /dev/pts/N) inside the scratch folder.
    public let pathA: String
    public let pathB: String
    private let child: ChildProcess

    /// socat is missing or did not make the pair in time.
    public enum Failure: Error, CustomStringConvertible {
        case socatMissing
        case notReady(stderr: String)
        public var description: String {
            switch self {
            case .socatMissing: return "socat not found on PATH"
            case let .notReady(stderr): return "socat did not create the pty pair: \(stderr)"
            }
        }
    }

    /// Starts `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B` with both links in `dir`,
    /// and waits (bounded) until both exist.
    public init(in dir: ScratchDir, names: (String, String) = ("pty-a", "pty-b"), timeout: Duration = .seconds(5)) throws {
        guard let socat = which("socat") else { throw Failure.socatMissing }
        pathA = dir.file(names.0)
        pathB = dir.file(names.1)
        child = try ChildProcess(socat, ["-d", "-d", "pty,raw,echo=0,link=\(pathA)", "pty,raw,echo=0,link=\(pathB)"])
        let ready = Wait.until(timeout: timeout) {
            FileManager.default.fileExists(atPath: pathA) && FileManager.default.fileExists(atPath: pathB)
                && child.stderr.contains("starting data transfer loop")
        }
        guard ready else {
            let err = child.stderr
            child.kill9()
            throw Failure.notReady(stderr: err)
        }
    }

    /// True while socat runs.
    public var isRunning: Bool { child.isRunning }

    /// Stops socat (SIGTERM, then SIGKILL after a second).
    public func stop() {
        child.signal(SIGTERM)
        if child.waitExit(timeout: .seconds(1)) == nil { child.kill9() }
    }

    deinit { stop() }
}
