#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
import TestSupport

/// Deployment on a cabinet gateway: the systemd unit passes `systemd-analyze verify` and keeps
/// its hardening; `scripts/package-deb.sh` makes a .deb that dpkg installs into a scratch root
/// (maintainer scripts included) with the expected files, user, groups and state folder.
///
/// The package tests reuse binaries that already exist, so the suite never waits on a release
/// build: the layout test packages the test build's own binaries (`--allow-shared-swift`, a few
/// seconds); the static-runtime test runs only when `scripts/package-deb.sh` has already made a
/// release build in `.build-release/release`.
@Suite(.serialized)
struct DeploymentTests {
    static let root = BuildProducts.packageRoot
    static var script: String { root.appendingPathComponent("scripts/package-deb.sh").path }
    static var releaseBinDir: URL { root.appendingPathComponent(".build-release/release") }
    static var hasReleaseBuild: Bool {
        FileManager.default.isExecutableFile(atPath: releaseBinDir.appendingPathComponent("edge-agent").path)
            && FileManager.default.isExecutableFile(atPath: releaseBinDir.appendingPathComponent("edgectl").path)
    }
    static var canPackage: Bool { ["dpkg-deb", "dpkg-shlibdeps", "readelf", "bash"].allSatisfy { which($0) != nil } }
    static var canInstallIntoRoot: Bool { getuid() == 0 && canPackage && ["dpkg", "systemd-sysusers", "systemd-tmpfiles"].allSatisfy { which($0) != nil } }

    /// `public static let version = "…"` in Agent.swift: the version's single source.
    static func sourceVersion() throws -> String {
        let text = try String(contentsOf: root.appendingPathComponent("Sources/EdgeAgent/Agent/Agent.swift"), encoding: .utf8)
        let r = try #require(text.range(of: #"public static let version = "[^"]+""#, options: .regularExpression))
        return String(text[r].split(separator: "\"")[1])
    }

    // MARK: - The unit

    /// A root holding the unit, stand-ins for the executables it names, and the host's targets
    /// (verify loads the default dependencies: sysinit.target, basic.target, ...).
    static func unitRoot(unitText: String) throws -> ScratchDir {
        let dir = ScratchDir("edge-unit-root")
        let fm = FileManager.default
        let units = dir.url.appendingPathComponent("usr/lib/systemd/system")
        try fm.createDirectory(at: units, withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.url.appendingPathComponent("usr/bin"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: dir.file("bin"), withDestinationPath: "usr/bin")
        for exe in ["usr/bin/edge-agent", "usr/bin/kill"] {
            let p = dir.file(exe)
            try "#!/bin/sh\nexit 0\n".write(toFile: p, atomically: true, encoding: .utf8)
            chmod(p, 0o755)
        }
        for name in try fm.contentsOfDirectory(atPath: "/usr/lib/systemd/system") where name.hasSuffix(".target") {
            let src = "/usr/lib/systemd/system/\(name)"
            let dst = units.appendingPathComponent(name).path
            if let link = try? fm.destinationOfSymbolicLink(atPath: src) {
                try fm.createSymbolicLink(atPath: dst, withDestinationPath: link)
            } else {
                try fm.copyItem(atPath: src, toPath: dst)
            }
        }
        try unitText.write(to: units.appendingPathComponent("edge-agent.service"), atomically: true, encoding: .utf8)
        return dir
    }

    /// `systemd-analyze verify` in `root`: its complaints (empty when the unit is clean).
    static func verify(root: String) throws -> (status: Int32, complaints: [String]) {
        let r = try runCommand(try #require(which("systemd-analyze")), ["verify", "--root=\(root)", "edge-agent.service"], timeout: .seconds(30))
        let lines = (r.stdout + "\n" + r.stderr).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        return (r.status, lines)
    }

    static func unitText() throws -> String {
        try String(contentsOf: root.appendingPathComponent("systemd/edge-agent.service"), encoding: .utf8)
    }

    /// `[Service]` assignments of a unit, in order (a key may repeat: DeviceAllow=).
    static func serviceSettings(_ unit: String) -> [(key: String, value: String)] {
        var section = ""
        var out: [(String, String)] = []
        for raw in unit.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("[") { section = line; continue }
            guard section == "[Service]", !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            out.append((String(line[..<eq]), String(line[line.index(after: eq)...])))
        }
        return out
    }

    @Test(.enabled(if: which("systemd-analyze") != nil, "needs systemd-analyze (apt install systemd)"))
    func theUnitPassesSystemdAnalyzeVerifyAndABrokenOneDoesNot() throws {
        let good = try Self.unitRoot(unitText: try Self.unitText())
        let result = try Self.verify(root: good.path)
        #expect(result.status == 0)
        #expect(result.complaints.isEmpty, "systemd-analyze verify: \(result.complaints)")

        // The same check catches a mistake (so it can fail).
        let broken = try Self.unitText().replacingOccurrences(of: "WatchdogSec=10s", with: "WatchdogSec=ten seconds\nWatchdogSecs=10s")
        let brokenRoot = try Self.unitRoot(unitText: broken)
        let bad = try Self.verify(root: brokenRoot.path)
        #expect(bad.complaints.contains { $0.contains("edge-agent.service") && $0.contains("ten seconds") }, "\(bad.complaints)")
        #expect(bad.complaints.contains { $0.contains("Unknown key 'WatchdogSecs'") }, "\(bad.complaints)")
    }

    @Test(.enabled(if: which("systemd-analyze") != nil, "needs systemd-analyze (apt install systemd)"))
    func theUnitsExposureStaysLowInSystemdAnalyzeSecurity() throws {
        let dir = try Self.unitRoot(unitText: try Self.unitText())
        // --threshold is the exposure × 10: fail above 2.5 ("OK" is below 4.0).
        let r = try runCommand(try #require(which("systemd-analyze")),
                               ["security", "--offline=yes", "--threshold=25", "--root=\(dir.path)", "edge-agent.service"], timeout: .seconds(30))
        let summary = (r.stdout + r.stderr).split(separator: "\n").last { $0.contains("Overall exposure") } ?? "none"
        #expect(r.status == 0, "\(summary)")
    }

    @Test func theUnitIsANotifyServiceWithWatchdogRealtimeAndHardening() throws {
        let settings = Self.serviceSettings(try Self.unitText())
        func value(_ key: String) -> String? { settings.last { $0.key == key }?.value }
        func values(_ key: String) -> [String] { settings.filter { $0.key == key }.map(\.value) }

        #expect(value("Type") == "notify")
        #expect(value("NotifyAccess") == "main")
        #expect(value("Restart") == "on-failure")
        #expect(value("ExecStart")?.hasPrefix("/usr/bin/edge-agent --config /etc/edge-agent/agent.yaml") == true)
        #expect(value("ExecReload")?.contains("-HUP $MAINPID") == true)
        let watchdog = try #require(value("WatchdogSec"))
        #expect(watchdog.hasSuffix("s") && (Double(watchdog.dropLast()) ?? 0) >= 2, "WatchdogSec=\(watchdog)")
        #expect(value("TimeoutStopSec") != nil)
        #expect(value("RestartPreventExitStatus") == "78", "a config error must not restart-loop")

        #expect(value("User") == "edge-agent")
        let groups = value("SupplementaryGroups")?.split(separator: " ").map(String.init) ?? []
        #expect(groups.contains("dialout") && groups.contains("gpio"))
        #expect(value("StateDirectory") == "edge-agent")
        #expect(value("RuntimeDirectory") == "edge-agent")

        #expect(value("LimitRTPRIO").flatMap { Int($0) }.map { $0 >= 50 } == true)
        #expect(value("CapabilityBoundingSet") == "CAP_SYS_NICE")
        #expect(value("AmbientCapabilities") == "CAP_SYS_NICE")
        #expect(value("RestrictRealtime") != "yes")

        #expect(value("NoNewPrivileges") == "yes")
        #expect(value("ProtectSystem") == "strict")
        #expect(value("ProtectHome") == "yes")
        #expect(value("PrivateTmp") == "yes")
        #expect(value("DevicePolicy") == "closed")
        let devices = values("DeviceAllow")
        for group in ["char-gpiochip", "char-ttyS", "char-ttyAMA", "char-ttymxc"] {
            #expect(devices.contains { $0.hasPrefix(group + " ") }, "DeviceAllow=\(group)")
        }
        #expect(Set(value("RestrictAddressFamilies")?.split(separator: " ").map(String.init) ?? []) == ["AF_UNIX", "AF_INET", "AF_INET6"])
        #expect(value("SystemCallFilter") == "@system-service")
    }

    // MARK: - The package

    @Test(.enabled(if: DeploymentTests.canPackage, "needs dpkg-deb, dpkg-shlibdeps (dpkg-dev), readelf"))
    func checkModeValidatesWithoutBuildingAndNamesTheSourceVersion() throws {
        let r = try runCommand("/bin/bash", [Self.script, "--check"], timeout: .seconds(30))
        #expect(r.status == 0, "\(r.stderr)")
        let version = try Self.sourceVersion()
        #expect(r.stdout.contains("edge-agent_\(version)_"), "\(r.stdout)")
        let bad = try runCommand("/bin/bash", [Self.script, "--check", "--compress", "zip"], timeout: .seconds(30))
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--compress"))
    }

    @Test(.enabled(if: DeploymentTests.canPackage, "needs dpkg-deb, dpkg-shlibdeps (dpkg-dev), readelf"))
    func binariesThatNeedTheSwiftRuntimeAreRefused() throws {
        let out = ScratchDir("edge-deb")
        let bin = BuildProducts.binDir.path
        // This test build links the Swift runtime dynamically (debug): not shippable.
        let r = try runCommand("/bin/bash", [Self.script, "--bin-dir", bin, "--compress", "none", "--out", out.path], timeout: .seconds(120))
        #expect(r.status != 0)
        #expect(r.stderr.contains("--static-swift-stdlib"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).isEmpty)
    }

    @Test(.enabled(if: DeploymentTests.canInstallIntoRoot, "needs root, dpkg, dpkg-dev, systemd-sysusers, systemd-tmpfiles"))
    func theDebInstallsIntoAScratchRootWithItsUserGroupsAndFiles() throws {
        let out = ScratchDir("edge-deb")
        let version = try Self.sourceVersion()
        let built = try runCommand("/bin/bash", [Self.script, "--bin-dir", BuildProducts.binDir.path, "--allow-shared-swift",
                                                 "--compress", "gzip", "--out", out.path], timeout: .seconds(120))
        try #require(built.status == 0, "package-deb.sh: \(built.stderr)")
        let deb = built.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(deb.hasSuffix("/edge-agent_\(version)_\(try Self.nativeArch()).deb"), "\(deb)")

        // Control fields.
        let info = try runCommand(try #require(which("dpkg-deb")), ["--field", deb, "Package", "Version", "Architecture", "Depends"])
        #expect(info.status == 0)
        #expect(info.stdout.contains("Package: edge-agent"))
        #expect(info.stdout.contains("Version: \(version)\n"))
        for lib in ["libmodbus5", "libmosquitto1", "libgpiod", "libsqlite3-0", "libyaml-0-2", "libc6", "systemd"] {
            #expect(info.stdout.contains(lib), "Depends lacks \(lib): \(info.stdout)")
        }
        #expect(!info.stdout.contains("swift"), "no dependency on a Swift runtime package: \(info.stdout)")

        // Install into a scratch root, maintainer scripts included (they honour DPKG_ROOT).
        let root = ScratchDir("edge-deb-root")
        for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"] {
            try FileManager.default.createDirectory(atPath: root.file(d), withIntermediateDirectories: true)
        }
        _ = root.write("var/lib/dpkg/status", "")
        let dpkg = try #require(which("dpkg"))
        let install = try runCommand(dpkg, ["--root=\(root.path)", "--force-script-chrootless", "--force-depends", "--log=/dev/null", "-i", deb], timeout: .seconds(60))
        #expect(install.status == 0, "dpkg -i: \(install.stderr)")
        let status = try runCommand(dpkg, ["--root=\(root.path)", "-s", "edge-agent"])
        #expect(status.stdout.contains("Status: install ok installed"), "\(status.stdout) \(status.stderr)")

        // The layout.
        let fm = FileManager.default
        for exe in ["usr/bin/edge-agent", "usr/bin/edgectl"] {
            #expect(fm.isExecutableFile(atPath: root.file(exe)), "\(exe)")
        }
        for file in ["etc/edge-agent/agent.yaml",
                     "usr/share/edge-agent/Boards/rpi-cm4-industrial.yaml", "usr/share/edge-agent/Boards/imx8mp-gateway.yaml",
                     "usr/share/edge-agent/Profiles/ref-luminaire.yaml", "usr/share/edge-agent/Profiles/ref-bollard.yaml",
                     "usr/share/edge-agent/Profiles/ref-presence.yaml", "usr/share/edge-agent/Profiles/ref-signal-io.yaml",
                     "usr/lib/systemd/system/edge-agent.service", "usr/lib/sysusers.d/edge-agent.conf",
                     "usr/lib/tmpfiles.d/edge-agent.conf", "usr/lib/udev/rules.d/60-edge-agent-gpio.rules",
                     "usr/share/doc/edge-agent/DEPLOYMENT.md", "usr/share/doc/edge-agent/copyright"] {
            #expect(fm.fileExists(atPath: root.file(file)), "\(file) missing")
        }
        #expect(!fm.fileExists(atPath: root.file("usr/bin/edge-sim")), "the simulator is not shipped")
        let conffiles = (try? String(contentsOfFile: root.file("var/lib/dpkg/info/edge-agent.conffiles"), encoding: .utf8)) ?? ""
        #expect(conffiles.contains("/etc/edge-agent/agent.yaml"))
        let shipped = try String(contentsOfFile: root.file("usr/lib/systemd/system/edge-agent.service"), encoding: .utf8)
        #expect(shipped == (try Self.unitText()))

        // The installed binary is the one the version came from.
        let v = try runCommand(root.file("usr/bin/edge-agent"), ["--version"])
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "edge-agent \(version)")

        // postinst ran systemd-sysusers and systemd-tmpfiles in the scratch root.
        let passwd = try String(contentsOfFile: root.file("etc/passwd"), encoding: .utf8)
        let user = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("edge-agent:") }, "\(passwd)").split(separator: ":", omittingEmptySubsequences: false)
        #expect(user[5] == "/var/lib/edge-agent")
        #expect(user[6].hasSuffix("nologin"))
        let uid = try #require(UInt32(user[2]))
        let groups = try String(contentsOfFile: root.file("etc/group"), encoding: .utf8).split(separator: "\n")
        for g in ["dialout", "gpio", "edge-tech"] {
            let line = groups.first { $0.hasPrefix("\(g):") }
            #expect(line?.split(separator: ":", omittingEmptySubsequences: false).last?.split(separator: ",").contains("edge-agent") == true, "edge-agent in \(g): \(line ?? "no group")")
        }
        var st = stat()
        #expect(stat(root.file("var/lib/edge-agent"), &st) == 0)
        #expect(st.st_uid == uid)
        #expect(st.st_mode & 0o7777 == 0o750)

        // apt accepts it on this machine (dependencies resolve): a dry run of `apt install ./x.deb`.
        if let apt = which("apt-get") {
            let sim = try runCommand(apt, ["-s", "install", deb], timeout: .seconds(60))
            #expect(sim.status == 0, "apt-get -s install: \(sim.stdout) \(sim.stderr)")
            #expect(sim.stdout.contains("Inst edge-agent (\(version)"), "\(sim.stdout)")
        }

        // The unit as installed passes verify against the installed binary.
        if which("systemd-analyze") != nil {
            let check = try Self.unitRoot(unitText: shipped)
            try FileManager.default.removeItem(atPath: check.file("usr/bin/edge-agent"))
            try FileManager.default.copyItem(atPath: root.file("usr/bin/edge-agent"), toPath: check.file("usr/bin/edge-agent"))
            let r = try Self.verify(root: check.path)
            #expect(r.status == 0 && r.complaints.isEmpty, "\(r.complaints)")
        }

        // Purge removes the files and the state folder; the user stays (Debian practice).
        let purge = try runCommand(dpkg, ["--root=\(root.path)", "--force-script-chrootless", "--log=/dev/null", "--purge", "edge-agent"], timeout: .seconds(60))
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(!fm.fileExists(atPath: root.file("usr/bin/edge-agent")))
        #expect(!fm.fileExists(atPath: root.file("etc/edge-agent/agent.yaml")))
        #expect(!fm.fileExists(atPath: root.file("var/lib/edge-agent")))
    }

    @Test(.enabled(if: DeploymentTests.hasReleaseBuild && DeploymentTests.canPackage,
                   "runs after scripts/package-deb.sh has built .build-release/release"))
    func theReleaseBuildLinksTheSwiftRuntimeStaticallyAndPackages() throws {
        for exe in ["edge-agent", "edgectl"] {
            let r = try runCommand(try #require(which("readelf")), ["-d", Self.releaseBinDir.appendingPathComponent(exe).path])
            let needed = r.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            #expect(!needed.isEmpty)
            let swiftRuntime = needed.filter { $0.contains("libswift") || $0.contains("libFoundation") || $0.contains("libdispatch") }
            #expect(swiftRuntime.isEmpty, "\(exe) still needs \(swiftRuntime)")
        }
        // The release binary starts without the toolchain's libraries on the loader path.
        let v = try runCommand(Self.releaseBinDir.appendingPathComponent("edge-agent").path, ["--version"], environment: ["LD_LIBRARY_PATH": ""])
        #expect(v.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "edge-agent \(try Self.sourceVersion())")

        let out = ScratchDir("edge-deb-release")
        let built = try runCommand("/bin/bash", [Self.script, "--bin-dir", Self.releaseBinDir.path, "--compress", "none", "--out", out.path], timeout: .seconds(120))
        #expect(built.status == 0, "\(built.stderr)")
        let deb = built.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let list = try runCommand(try #require(which("dpkg-deb")), ["--contents", deb])
        #expect(list.stdout.contains("./usr/bin/edge-agent"))
    }

    static func nativeArch() throws -> String {
        try runCommand(try #require(which("dpkg")), ["--print-architecture"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
