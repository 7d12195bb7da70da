// swift-tools-version:6.0
// edge-agent: street-cabinet gateway daemon. Layers (one way): executables -> EdgeAgent -> Drivers -> Protocols -> EdgeRuntime -> C shims;
// EdgeAgent and Simulator read their config files with ConfigToolkit (over libyaml).
import PackageDescription
#if os(Linux)
import Foundation
#endif

// Release builds on Linux put every function in its own section, so the linker can drop what no
// one calls and lay out the agent's code in the order it runs (see `releaseLink`).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .unsafeFlags(["-Xfrontend", "-function-sections"], .when(platforms: [.linux], configuration: .release)),
]

/// How the executables are linked in release builds on Linux (lld, which Swift's toolchains and
/// Debian's swiftlang both carry): relative relocations packed (DT_RELR, glibc >= 2.36), so the
/// loader reads a few KB instead of 1 MB of them at every start; and, for `edge-agent`, its
/// functions laid out in the order of Sources/edge-agent/symbol-order.txt (the functions the agent
/// runs, idle first: `scripts/symbol-order.py` writes it), so the code it runs shares a few hundred
/// pages instead of being spread over the whole text: resident memory is what the agent touches.
func releaseLink(order: String? = nil) -> [LinkerSetting] {
    var flags = ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"]
    if let order {
        flags += ["-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/\(order)", "-Xlinker", "--no-warn-symbol-ordering"]
    }
    return [.unsafeFlags(flags, .when(platforms: [.linux], configuration: .release))]
}

// Swift 6.0/6.1 (Debian 13's swiftlang is 6.0.3) cannot read swift-log 1.16.2's manifest (tools 6.2,
// package traits). They build swift-log's 1.16.2 sources from Vendor/swift-log (made by
// scripts/vendor-swift-log.sh, patched for 6.0, see its PATCHES.md). Swift >= 6.2 takes the package.
#if compiler(>=6.2)
let toolchainDependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
]
#else
let toolchainDependencies: [Package.Dependency] = [
    .package(path: "Vendor/swift-log"),
]
#endif

/// The libgpiod API the GPIO backend is built for: 2 for libgpiod 2.x (Debian 13), 1 for 1.6.x
/// (Debian 12). `EDGE_GPIOD_API=1|2` overrides; otherwise `pkg-config --modversion libgpiod`, which
/// honours PKG_CONFIG_LIBDIR / PKG_CONFIG_SYSROOT_DIR, so a cross build asks the target's sysroot;
/// without a pkg-config program, the `Version:` of the first libgpiod.pc in the same folders.
func libgpiodAPI() -> Int {
    #if os(Linux)
    let env = ProcessInfo.processInfo.environment
    if let forced = env["EDGE_GPIOD_API"], let api = Int(forced) { return api }
    func api(_ version: String) -> Int? {
        guard let major = version.split(separator: ".").first.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else { return nil }
        return major >= 2 ? 2 : 1
    }
    let pkgConfig = Process()
    pkgConfig.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    pkgConfig.arguments = [env["PKG_CONFIG"] ?? "pkg-config", "--modversion", "libgpiod"]
    let out = Pipe()
    pkgConfig.standardOutput = out
    pkgConfig.standardError = FileHandle.nullDevice
    if (try? pkgConfig.run()) != nil {
        let data = out.fileHandleForReading.readDataToEndOfFile()
        pkgConfig.waitUntilExit()
        if pkgConfig.terminationStatus == 0, let found = api(String(decoding: data, as: UTF8.self)) { return found }
    }
    let dirs = (env["PKG_CONFIG_LIBDIR"] ?? "").split(separator: ":").map(String.init)
        + (env["PKG_CONFIG_PATH"] ?? "").split(separator: ":").map(String.init)
        + ["/usr/lib/x86_64-linux-gnu/pkgconfig", "/usr/lib/aarch64-linux-gnu/pkgconfig", "/usr/lib/arm-linux-gnueabihf/pkgconfig",
           "/usr/lib/pkgconfig", "/usr/share/pkgconfig", "/usr/local/lib/pkgconfig"]
    for dir in dirs {
        guard let pc = try? String(contentsOfFile: dir + "/libgpiod.pc", encoding: .utf8) else { continue }
        for line in pc.split(separator: "\n") where line.hasPrefix("Version:") {
            if let found = api(String(line.dropFirst("Version:".count))) { return found }
        }
    }
    return 1
    #else
    return 1
    #endif
}

let gpiodV2 = libgpiodAPI() >= 2
let gpiodSwift: [SwiftSetting] = gpiodV2 ? [.define("GPIOD_V2")] : []
let gpiodC: [CSetting] = gpiodV2 ? [.define("GPIOD_V2")] : []

let driversSettings: [SwiftSetting] = strict + gpiodSwift

let package = Package(
    name: "edge-agent",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "edge-agent", targets: ["edge-agent"]),
        .executable(name: "edgectl", targets: ["edgectl"]),
        .executable(name: "edge-sim", targets: ["edge-sim"]),
        // For the packages beside this one (Fuzz/, Benchmarks/swift/) that drive the layers directly.
        .library(name: "EdgeAgentCore", targets: ["EdgeAgent", "EdgeRuntime"]),
        .library(name: "EdgeSimulator", targets: ["Simulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // System libraries (Debian packages; pkg-config names).
        .systemLibrary(name: "CModbus", pkgConfig: "libmodbus", providers: [.apt(["libmodbus-dev"])]),
        .systemLibrary(name: "CGPIOD", pkgConfig: "libgpiod", providers: [.apt(["libgpiod-dev"])]),
        // GNU-only libc calls Swift cannot import (SO_PEERCRED, thread names).
        .target(name: "CSystemShims"),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMosquitto", pkgConfig: "libmosquitto", providers: [.apt(["libmosquitto-dev"])]),
        // OpenSSL 3's libcrypto: Ed25519 for the centre's command signatures (also in the process for TLS).
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        // Config files (agent and simulator): YAML over libyaml with marks, durations, host:port,
        // did-you-mean, file:line:key errors. No Foundation.
        .target(name: "ConfigToolkit", dependencies: ["EdgeRuntime", "CYAML"], swiftSettings: strict),

        // The runtime tools every layer shares: one lock (priority-inheriting), one named-thread
        // helper, one monotonic time type, one EINTR retry. Glibc only, no Foundation.
        .target(name: "EdgeRuntime", dependencies: ["CSystemShims"], swiftSettings: strict),

        // Swift over the wire: Modbus (libmodbus), MQTT (libmosquitto), sd_notify.
        .target(
            name: "Protocols",
            dependencies: ["EdgeRuntime", "CModbus", "CMosquitto", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The field: GPIO lines (libgpiod and simulated), device drivers built from profiles.
        .target(
            name: "Drivers",
            dependencies: ["EdgeRuntime", "Protocols", "CGPIOD", "CSystemShims", .product(name: "Logging", package: "swift-log")],
            swiftSettings: driversSettings
        ),
        // The agent: config, control loops, outbox, uplink, commands, control socket.
        .target(
            name: "EdgeAgent",
            dependencies: [
                "EdgeRuntime", "Drivers", "Protocols", "CSystemShims", "CSQLite", "COpenSSL", "ConfigToolkit",
                .product(name: "Logging", package: "swift-log"),
            ],
            // Optimised for size in release builds (0.26 MB less binary; the uplink's drain rate,
            // its busiest path, measured the same in an A/B run). The bus and the wire layers below
            // (Drivers, Protocols, EdgeRuntime) stay optimised for speed.
            swiftSettings: strict + [.unsafeFlags(["-Osize"], .when(platforms: [.linux], configuration: .release))]
        ),
        // Field-device simulator library (reference devices with physics), used by edge-sim and tests.
        .target(
            name: "Simulator",
            dependencies: ["EdgeRuntime", "Protocols", "ConfigToolkit", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "edge-agent",
            dependencies: ["EdgeAgent", "EdgeRuntime", .product(name: "Logging", package: "swift-log"), .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: ["symbol-order.txt"],
            swiftSettings: strict,
            linkerSettings: releaseLink(order: "Sources/edge-agent/symbol-order.txt")
        ),
        .executableTarget(
            name: "edgectl",
            dependencies: ["EdgeAgent", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict,
            linkerSettings: releaseLink()
        ),
        .executableTarget(
            name: "edge-sim",
            dependencies: ["Simulator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict,
            linkerSettings: releaseLink()
        ),

        // Test-only helpers: free loopback ports, child processes, mosquitto, socat.
        // Test-only: posix_spawn with every inherited descriptor closed (Foundation's Process crashed now and then in run()).
        .target(name: "TestSpawn", path: "Tests/TestSpawn"),
        .target(name: "TestSupport", dependencies: ["TestSpawn"], path: "Tests/TestSupport", swiftSettings: strict),
        // Test-only: drives the real Outbox in a small process for the power-cut test (never shipped).
        .executableTarget(name: "outbox-driver", dependencies: ["EdgeAgent", .product(name: "Logging", package: "swift-log")], path: "Tests/OutboxDriver", swiftSettings: strict),
        .testTarget(name: "EdgeRuntimeTests", dependencies: ["EdgeRuntime"], swiftSettings: strict),
        .testTarget(name: "ConfigToolkitTests", dependencies: ["ConfigToolkit"], swiftSettings: strict),
        .testTarget(name: "ProtocolsTests", dependencies: ["Protocols", "TestSupport"], swiftSettings: strict),
        // Test-only C stubs of the gpiod_* calls, so the real libgpiod backend's Swift code runs without a GPIO kernel.
        // One stub set per libgpiod API (stubs.c: v1, stubs_v2.c: v2), picked like the backend.
        .target(name: "GPIODStubs", path: "Tests/GPIODStubs", cSettings: gpiodC),
        .testTarget(name: "DriversTests", dependencies: ["EdgeRuntime", "Drivers", "TestSupport", "GPIODStubs"], swiftSettings: driversSettings),
        .testTarget(name: "EdgeAgentTests", dependencies: ["EdgeRuntime", "EdgeAgent", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "Protocols", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "SystemTests", dependencies: ["TestSupport"], swiftSettings: strict),
    ]
)

package.dependencies += toolchainDependencies
