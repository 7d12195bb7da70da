import EdgeRuntime
import Foundation
import Testing

/// `FilePaths` answers as NSString's path methods did where the agent used them.
@Suite struct FilePathsTests {
    static let paths = ["/var/lib/edge-agent/outbox.db", "/a", "/", "a/b", "/a/b/", "//a//b", "rel/dir/", "/a/b//"]

    @Test(arguments: paths)
    func directoryMatchesNSString(_ path: String) {
        #expect(FilePaths.directory(of: path) == (path as NSString).deletingLastPathComponent)
    }

    @Test(arguments: paths)
    func lastComponentMatchesNSString(_ path: String) {
        #expect(FilePaths.lastComponent(path) == (path as NSString).lastPathComponent)
    }

    @Test func joinAndKind() {
        #expect(FilePaths.join("/var/lib/edge-agent", "seq") == "/var/lib/edge-agent/seq")
        #expect(FilePaths.join("/var/lib/edge-agent/", "seq") == "/var/lib/edge-agent/seq")
        #expect(FilePaths.join("", "seq") == "seq")
        #expect(FilePaths.join("/x", "/etc/seq") == "/etc/seq")
        // NSString traps on these here (swift-corelibs-foundation); Darwin's answers.
        #expect(FilePaths.directory(of: "") == "")
        #expect(FilePaths.directory(of: "a") == "")
        #expect(FilePaths.lastComponent("") == "")
        #expect(FilePaths.lastComponent("a") == "a")
        #expect(FilePaths.kind("/") == .directory)
        #expect(FilePaths.kind("/proc/self/status") == .file)
        #expect(FilePaths.kind("/dev/null") == .other)
        #expect(FilePaths.kind("/no/such/path") == nil)
    }
}
