#if canImport(Glibc)
import Glibc
#endif
public import Foundation
import TestSpawn

/// Where the package's built executables live (next to the test bundle), and a scratch folder per test.
public enum BuildProducts {
    /// The folder holding `edge-agent`, `edgectl`, `edge-sim` for this build configuration.
    public static var binDir: URL {
        if let dir = ProcessInfo.processInfo.environment["EDGE_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // Inside an .xctest bundle on some layouts: climb until a sibling `edge-agent` exists.
        for _ in 0..<4 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("edge-sim").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return exe.deletingLastPathComponent()
    }

    /// Path of a built executable of this package.
    public static func executable(_ name: String) -> String { binDir.appendingPathComponent(name).path }

    /// The package root (folder holding Package.swift), found from this source file.
    public static var packageRoot: URL {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }
}

/// A fresh temporary folder removed when the value is released.
public final class ScratchDir: @unchecked Sendable {
    public let url: URL
    public var path: String { url.path }
    public init(_ label: String = "edge-test") {
        let base = URL(fileURLWithPath: NSTemporaryDirectory())
        url = base.appendingPathComponent("\(label)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }
    public func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        try? text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// A child process for tests: output captured to files, killed (SIGKILL) on release if still running.
///
/// Started with `posix_spawn` (Tests/TestSpawn), not Foundation's `Process`, whose `run()` crashed
/// now and then in CI: stdin is /dev/null, no other descriptor of the test process is inherited,
/// every signal is at its default and none is blocked. The exit status is that of `exit()`, or
/// the signal's number when a signal ended the child (as `Process.terminationStatus`).
public final class ChildProcess: @unchecked Sendable {
    public let pid: Int32
    public let stdoutPath: String
    public let stderrPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `executable` with `arguments`; stdout/stderr go to temporary files readable while it runs.
    /// `environment` entries are added to (or replace) the test process's own.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let tag = "\(URL(fileURLWithPath: executable).lastPathComponent)-\(UUID().uuidString.prefix(8))"
        stdoutPath = NSTemporaryDirectory() + "/\(tag).out"
        stderrPath = NSTemporaryDirectory() + "/\(tag).err"
        let out = open(stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            if out >= 0 { close(out) }
            if err >= 0 { close(err) }
        }
        guard out >= 0, err >= 0 else { throw SpawnError(description: "cannot create output files for \(executable): errno \(errno)") }
        var env = ProcessInfo.processInfo.environment
        if let environment { env.merge(environment) { _, new in new } }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = edge_test_spawn(executable, argv, envp, out, err, &child)
        guard rc == 0 else { throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Reaps the child if it has exited (`block`: wait for it); returns its status once known.
    @discardableResult
    private func reap(block: Bool) -> Int32? {
        lock.withLock {
            if let exitStatus { return exitStatus }
            var status: Int32 = 0
            var r: pid_t
            repeat { r = waitpid(pid, &status, block ? 0 : WNOHANG) } while r < 0 && errno == EINTR
            guard r == pid else { return nil }
            let signal = status & 0x7f
            exitStatus = signal == 0 ? (status >> 8) & 0xff : signal
            return exitStatus
        }
    }

    public var isRunning: Bool { reap(block: false) == nil }
    /// The exit status (or ending signal), nil while running.
    public var terminationStatus: Int32? { reap(block: false) }

    /// Sends `signal` to the child.
    public func signal(_ signal: Int32) { if isRunning { kill(pid, signal) } }

    /// Waits up to `timeout` for exit; returns the exit status, or nil if still running.
    @discardableResult
    public func waitExit(timeout: Duration = .seconds(10)) -> Int32? {
        Wait.until(timeout: timeout, interval: .milliseconds(10)) { !isRunning }
        return reap(block: false)
    }

    /// Kills with SIGKILL and reaps.
    public func kill9() {
        signal(SIGKILL)
        reap(block: true)
    }

    deinit {
        if isRunning { kill(pid, SIGKILL); reap(block: true) }
        try? FileManager.default.removeItem(atPath: stdoutPath)
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}

/// Runs a command to completion and returns (status, stdout, stderr).
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], timeout: Duration = .seconds(60), environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let child = try ChildProcess(executable, arguments, environment: environment)
    guard let status = child.waitExit(timeout: timeout) else {
        child.kill9()
        return (-1, child.stdout, child.stderr + "\n[timed out after \(timeout)]")
    }
    return (status, child.stdout, child.stderr)
}

/// Finds a program on PATH (e.g. "mosquitto", "socat", "mbpoll", "python3").
public func which(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}
