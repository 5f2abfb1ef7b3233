// swift-tools-version:6.0
import PackageDescription

/// Coverage-guided fuzz targets for Postern's parsers (libFuzzer): one small
/// executable per parser, each feeding libFuzzer's bytes to the real parsing
/// code of the root package and checking invariants where they are cheap.
///
/// A package of its own so that the root package's `swift build` and
/// `swift test` never build or link these: they need `-sanitize=fuzzer`, whose
/// runtime supplies `main`. `tools/fuzz.sh` builds them into `.build-fuzz` with
/// libFuzzer and AddressSanitizer, and with `-enable-testing`, because some
/// parsers are internal to their module and are reached with `@testable import`.
let fuzzers = ["envelope", "address", "message", "smtp-reply", "smtp-server", "dns", "dsn", "config", "mta-sts"]

let package = Package(
    name: "postern-fuzz",
    dependencies: [.package(name: "postern", path: "../..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "PosternParsers", package: "postern")]),
    ] + fuzzers.map { name in
        .executableTarget(name: "fuzz-\(name)", dependencies: [
            "FuzzSupport", .product(name: "PosternParsers", package: "postern"),
        ])
    }
)
