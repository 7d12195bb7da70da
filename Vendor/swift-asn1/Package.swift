// swift-tools-version:6.0
// apple/swift-asn1 1.7.4 (Sources unchanged, Apache-2.0: LICENSE.txt, NOTICE.txt) for toolchains
// older than Swift 6.2: its manifest needs tools 6.1, so Swift 6.0 (Debian 13's swiftlang 6.0.3)
// cannot resolve swift-crypto, which depends on it. ../../Package.swift declares this path with the
// same identity (swift-asn1) when compiled by Swift < 6.2, and SwiftPM lets a root package's local
// dependency stand in for the remote one. edge-agent does not build it (only swift-crypto's
// _CryptoExtras uses it).
import PackageDescription

let package = Package(
    name: "swift-asn1",
    products: [
        .library(name: "SwiftASN1", targets: ["SwiftASN1"]),
    ],
    targets: [
        .target(
            name: "SwiftASN1",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
    ]
)
