public import EdgeAgent
import Foundation

/// The files the loaders look at while fuzzing, in a private temporary folder (removed at exit):
///
///     <dir>/etc/agent.yaml      the fuzzed config text is loaded "as" this path (never written)
///     <dir>/etc/{ca.pem,gw.pem,gw.key}, <dir>/etc/Boards/*.yaml
///     <dir>/Boards/*.yaml, <dir>/Profiles/*.yaml   copies of the repository's
///
/// so `board: Boards/sim.yaml`, `board: ../Boards/sim.yaml`, `tls: {ca: ca.pem ...}` and the
/// profile search path (`<config dir>/../Profiles`) resolve as in the examples.
public final class FuzzFixture: Sendable {
    public static let shared = FuzzFixture()

    /// The repository (the root package): `EDGE_FUZZ_ROOT`, else found from this source file.
    public static let repositoryRoot: String = {
        if let root = ProcessInfo.processInfo.environment["EDGE_FUZZ_ROOT"] { return root }
        return URL(fileURLWithPath: #filePath)  // <root>/Fuzz/Sources/FuzzSupport/FuzzFixture.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }()

    public let dir: String
    public let configPath: String
    /// Where fuzzed profile and board texts claim to come from.
    public let profilePath: String
    public let boardPath: String

    private init() {
        let fm = FileManager.default
        dir = NSTemporaryDirectory() + "edge-fuzz-\(getpid())"
        configPath = dir + "/etc/agent.yaml"
        profilePath = dir + "/Profiles/fuzzed.yaml"
        boardPath = dir + "/Boards/fuzzed.yaml"
        Self.removeStaleFolders()
        do {
            try? fm.removeItem(atPath: dir)
            for sub in ["etc/Boards", "Boards", "Profiles"] {
                try fm.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
            }
            for name in ["ca.pem", "gw.pem", "gw.key"] {
                try Data("fuzz stand-in \(name)\n".utf8).write(to: URL(fileURLWithPath: dir + "/etc/" + name))
            }
            for (from, to) in [("Boards", ["Boards", "etc/Boards"]), ("Profiles", ["Profiles"])] {
                for file in try Self.yamlFiles(in: from) {
                    for target in to {
                        try fm.copyItem(atPath: Self.repositoryRoot + "/" + from + "/" + file, toPath: dir + "/" + target + "/" + file)
                    }
                }
            }
        } catch {
            fatalError("cannot set up the fuzz fixture in \(dir): \(error)")
        }
        atexit { FuzzFixture.removeFolder() }
    }

    /// Folders of fuzz runs that crashed (libFuzzer leaves without running exit handlers).
    private static func removeStaleFolders() {
        let tmp = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? [] where name.hasPrefix("edge-fuzz-") {
            guard let pid = Int32(name.dropFirst("edge-fuzz-".count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: tmp + name)
        }
    }

    private static func removeFolder() {
        try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "edge-fuzz-\(getpid())")
    }

    /// `*.yaml` in a folder of the repository, sorted.
    public static func yamlFiles(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repositoryRoot + "/" + folder).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    /// The text of a repository file.
    public static func repositoryText(_ relativePath: String) throws -> String {
        try String(contentsOfFile: repositoryRoot + "/" + relativePath, encoding: .utf8)
    }

    /// The fuzz centre key: fixed (so seeds signed with it verify in every run), known to the
    /// harness only; the fuzzer can reuse a seed's signature but never forge a new one.
    public static let centrePrivateKey: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: 0xA5 &+ $0 &* 7) }
    public static let centrePublicKey: [UInt8] = {
        do { return try CommandSigner.publicKey(of: centrePrivateKey) } catch { fatalError("\(error)") }
    }()
    public static let centreKeyID = "fuzz-centre"
}

/// Input helpers.
public enum FuzzInput {
    /// The input as UTF-8 text, nil when it is not (the loaders read files as UTF-8 and refuse others).
    public static func utf8(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        String(validating: bytes, as: UTF8.self)
    }

    /// How many lines `text` has for a YAML reader: breaks are LF, CR LF, a lone CR, and (YAML 1.1,
    /// libyaml) NEL, LS and PS; a last line without a break counts.
    public static func lineCount(_ text: String) -> Int {
        var n = 1
        var previousCR = false
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: if !previousCR { n += 1 }
            case 0x0D, 0x85, 0x2028, 0x2029: n += 1
            default: break
            }
            previousCR = scalar.value == 0x0D
        }
        return n
    }
}

/// Checks shared by the targets.
public enum Check {
    /// A `ConfigError` points a technician at a real place: it names one of `files` (or a file
    /// the config referenced, which exists), and when it is the fuzzed text, a line within it.
    public static func configError(_ error: ConfigError, text: String, textFile: String) {
        require(!error.message.isEmpty, "empty message: \(error)")
        require(!error.description.isEmpty, "empty description")
        if error.file == textFile {
            if let line = error.line {
                let lines = FuzzInput.lineCount(text)
                require(line >= 1 && line <= lines + 1, "line \(line) outside the text's 1...\(lines): \(error)")
            }
        } else {
            require(FileManager.default.fileExists(atPath: error.file), "error names a file that does not exist: \(error)")
        }
    }

    /// No control characters (a message goes to logs and terminals as one line).
    public static func printable(_ s: String, _ what: @autoclosure () -> String) {
        require(!s.unicodeScalars.contains { $0.properties.generalCategory == .control }, "\(what()) has control characters: \(s.debugDescription)")
    }
}
