// swift-tools-version:6.0
// libFuzzer targets for edge-agent's parsers (docs/reliability/fuzzing.md; run with scripts/fuzz.sh).
// Not part of the normal build or test suite. Build:
//   swift build -c debug --package-path Fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import Foundation
import PackageDescription

// A path dependency's identity is its folder name, so name the root package by where it is.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

func fuzzTarget(_ name: String, _ extra: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzSupport", .product(name: "EdgeAgentCore", package: root)] + extra,
        swiftSettings: strict
    )
}

let package = Package(
    name: "edge-agent-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        // Not in the product (Ed25519 there is libcrypto): an independent check of the signatures the verifier accepts.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // libFuzzer's LLVMFuzzerRunDriver, declared for Swift (the library comes with -sanitize=fuzzer).
        .target(name: "CLibFuzzer"),
        // Shared: the driver (main, seed writing), the fixture folder (boards, profiles, TLS
        // stand-ins), the fuzz centre key, invariant checks.
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer", .product(name: "EdgeAgentCore", package: root)],
            swiftSettings: strict
        ),
        fuzzTarget("FuzzConfig"),
        fuzzTarget("FuzzProfile"),
        fuzzTarget("FuzzCommand", [.product(name: "Crypto", package: "swift-crypto")]),
        // Reaches the control core's internals (@testable: debug builds enable testing).
        fuzzTarget("FuzzControlProtocol", [.product(name: "Logging", package: "swift-log")]),
        // Random register blocks through the checked decode and the control step (@testable).
        fuzzTarget("FuzzFieldData", [.product(name: "Logging", package: "swift-log")]),
    ]
)
