#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// `edge-agent` and `edgectl` carry FoundationEssentials only, never ICU (issue 15): the whole
/// of Foundation brings FoundationInternationalization and its ICU data (about 30 MB of a static
/// binary, most of the daemon's resident pages). One `import Foundation` anywhere in EdgeAgent,
/// Drivers, Protocols, EdgeRuntime or ConfigToolkit (or in a package they link) brings it back.
///
/// Checked on the binaries this test build made (dynamic: `ldd` and the binary's own bytes, which
/// hold the names of the libraries it needs) and, when `scripts/package-deb.sh` has made one, on
/// the static release build in `.build-release/release` (its bytes: a static binary holds ICU's
/// symbol names and data). Stale objects of an incremental build can carry an old `import
/// Foundation`'s link entries: a failure here after such a change needs a clean build to judge.
@Suite struct NoICUTests {
    /// Names that only a binary with ICU or with the whole of Foundation contains.
    static let forbidden = ["FoundationInternationalization", "_FoundationICU", "libFoundation.so", "icudt", "libicu"]

    static func binaries() -> [String] {
        var list = ["edge-agent", "edgectl"].map(BuildProducts.executable)
        let release = BuildProducts.packageRoot.appendingPathComponent(".build-release/release")
        for name in ["edge-agent", "edgectl"] {
            let path = release.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { list.append(path) }
        }
        return list
    }

    @Test(arguments: binaries())
    func binaryCarriesNoICU(_ path: String) throws {
        let bytes = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        for name in Self.forbidden {
            #expect(bytes.range(of: Data(name.utf8)) == nil, "\(path) contains \"\(name)\": something it links imports Foundation (use FoundationEssentials)")
        }
        let ldd = try runCommand("/usr/bin/ldd", [path])
        // A static binary: "not a dynamic executable" (status 1); a dynamic one lists its libraries.
        let needed = ldd.stdout.split(separator: "\n").filter { line in Self.forbidden.contains { line.contains($0) } }
        #expect(needed.isEmpty, "\(path) needs \(needed.joined(separator: "; "))")
    }
}
