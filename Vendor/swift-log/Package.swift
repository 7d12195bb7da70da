// swift-tools-version:6.0
// apple/swift-log 1.16.2 (Sources/Logging unchanged, Apache-2.0: LICENSE.txt, NOTICE.txt) for toolchains
// older than Swift 6.2, which cannot read its manifest (tools 6.2, package traits): Debian 13's
// swiftlang is 6.0.3. Used by ../../Package.swift only when compiled by Swift < 6.2; newer
// toolchains resolve https://github.com/apple/swift-log.git itself (the same 1.16.2 sources).
// No traits here: every log level is compiled in, as with upstream's default.
import PackageDescription

let package = Package(
    name: "swift-log",
    products: [
        .library(name: "Logging", targets: ["Logging"]),
    ],
    targets: [
        .target(
            name: "Logging",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ]
)
