#if canImport(Glibc)
import Glibc
#endif
public import Foundation

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
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String
    private let lock = NSLock()

    /// Starts `executable` with `arguments`; stdout/stderr go to temporary files readable while it runs.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: String? = nil) throws {
        let tag = "\(URL(fileURLWithPath: executable).lastPathComponent)-\(UUID().uuidString.prefix(8))"
        stdoutPath = NSTemporaryDirectory() + "/\(tag).out"
        stderrPath = NSTemporaryDirectory() + "/\(tag).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` to the child.
    public func signal(_ signal: Int32) { if process.isRunning { kill(process.processIdentifier, signal) } }

    /// Waits up to `timeout` for exit; returns the exit status, or nil if still running.
    @discardableResult
    public func waitExit(timeout: Duration = .seconds(10)) -> Int32? {
        Wait.until(timeout: timeout) { !process.isRunning }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    /// Kills with SIGKILL and reaps.
    public func kill9() {
        signal(SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
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
