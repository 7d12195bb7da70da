import EdgeRuntime
import Glibc
import Testing

/// `ResidentPages` releases only clean, private, read-only file pages, and releasing them gives
/// memory back without changing what the process computes.
@Suite struct ResidentPagesTests {
    static func mapping(_ range: String, _ perms: String, _ path: String, rss: Int, anonymous: Int = 0,
                        locked: Int = 0, flags: String = "rd mr mw me") -> String {
        """
        \(range) \(perms) 00000000 fe:00 123                        \(path)
        Size:               1024 kB
        Rss:                \(rss) kB
        Pss:                \(rss) kB
        Private_Clean:      \(rss - anonymous) kB
        Private_Dirty:      \(anonymous) kB
        Anonymous:          \(anonymous) kB
        Locked:             \(locked) kB
        VmFlags: \(flags)

        """
    }

    @Test func onlyCleanPrivateReadOnlyFileMappingsAreReleasable() {
        let smaps = [
            Self.mapping("1000-2000", "r--p", "/usr/bin/edge-agent", rss: 40),
            Self.mapping("2000-9000", "r-xp", "/usr/bin/edge-agent", rss: 900),
            // RELRO: relocated by the loader, then made read-only: its pages are copies.
            Self.mapping("9000-a000", "r--p", "/usr/bin/edge-agent", rss: 368, anonymous: 368),
            Self.mapping("a000-b000", "rw-p", "/usr/bin/edge-agent", rss: 100),
            Self.mapping("b000-c000", "r--s", "/var/lib/edge-agent/outbox.db-shm", rss: 32),
            Self.mapping("c000-d000", "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", rss: 64, locked: 64),
            Self.mapping("d000-e000", "r-xp", "/usr/lib/x86_64-linux-gnu/libm.so.6", rss: 8, flags: "rd ex mr lo"),
            Self.mapping("e000-f000", "r-xp", "[vdso]", rss: 8),
            Self.mapping("f000-10000", "r--p", "", rss: 8),
            Self.mapping("10000-11000", "r-xp", "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0.8.6", rss: 0),
            Self.mapping("11000-12000", "r-xp", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", rss: 192),
        ].joined()
        let found = ResidentPages.releasable(smaps: smaps)
        #expect(found == [
            .init(start: 0x1000, end: 0x2000, path: "/usr/bin/edge-agent", residentKB: 40),
            .init(start: 0x2000, end: 0x9000, path: "/usr/bin/edge-agent", residentKB: 900),
            .init(start: 0x11000, end: 0x12000, path: "/usr/lib/x86_64-linux-gnu/libcrypto.so.3", residentKB: 192),
        ])
    }

    @Test func aPathWithSpacesAndADeletedFileAreKeptWhole() {
        let smaps = Self.mapping("1000-2000", "r-xp", "/opt/edge agent/edge-agent (deleted)", rss: 12)
        #expect(ResidentPages.releasable(smaps: smaps).map(\.path) == ["/opt/edge agent/edge-agent (deleted)"])
    }

    @Test func malformedTextReleasesNothing() {
        #expect(ResidentPages.releasable(smaps: "").isEmpty)
        #expect(ResidentPages.releasable(smaps: "Rss: 12 kB\nAnonymous: 0 kB\n").isEmpty)
        #expect(ResidentPages.releasable(smaps: "zz-yy r-xp 0 0 0 /bin/x\nRss: 40 kB\n").isEmpty)
        // A mapping whose Anonymous line cannot be read counts as having copies.
        #expect(ResidentPages.releasable(smaps: "1000-2000 r-xp 0 fe:00 1 /bin/x\nRss: 40 kB\nAnonymous: ? kB\n").isEmpty)
    }

    /// This test process: after the release the released mappings hold fewer resident pages,
    /// the relocated (RELRO) data is still right (a table of function pointers and strings made
    /// before is used after), and the code still runs.
    @Test func releasingThisProcessKeepsItWorking() throws {
        let table: [(String, (Int) -> Int)] = [("double", { $0 * 2 }), ("square", { $0 * $0 })]
        let before = try #require(FilePaths.readProcFile("/proc/self/smaps"))
        let candidates = ResidentPages.releasable(smaps: before)
        #expect(!candidates.isEmpty)
        let released = try #require(ResidentPages.releaseStartupPages())
        #expect(released.mappings > 0)
        #expect(released.refused == 0)
        let after = try #require(FilePaths.readProcFile("/proc/self/smaps"))
        let ranges = Set(candidates.map { "\($0.start)-\($0.end)" })
        let residentAfter = ResidentPages.releasable(smaps: after).filter { ranges.contains("\($0.start)-\($0.end)") }
            .reduce(0) { $0 + $1.residentKB }
        #expect(residentAfter < candidates.reduce(0) { $0 + $1.residentKB })
        #expect(table.map { "\($0.0)=\($0.1(7))" } == ["double=14", "square=49"])
        #expect(String(cFormat: "%05.1f", 3.14159) == "003.1")
    }
}
