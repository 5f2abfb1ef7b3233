// swift-tools-version:6.0
import PackageDescription

/// Postern: an outgoing-mail spooler for Linux.
///
/// Dependencies flow one way: `PosternCore` (pure value types) at the bottom,
/// `Spool` (the on-disk contract) on it, the `postern` CLI on top. The drop path
/// (`postern drop`, `sendmail`) needs nothing but `Spool` and `PosternCore`.
let package = Package(
    name: "postern",
    products: [
        .executable(name: "postern", targets: ["postern"]),
        .executable(name: "postern-drop", targets: ["postern-drop"]),
        // The parsers, for the fuzz targets of tools/fuzz (a package of its own,
        // so that neither `swift build` nor `swift test` builds or links them).
        .library(name: "PosternParsers", targets: [
            "PosternBase", "PosternCore", "SpoolDrop", "Spool", "SMTP", "SMTPServer", "DNS", "DSN", "Config", "Delivery",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        // The /metrics endpoint: Prometheus' text format, served by FlyingFox
        // (no SwiftNIO: about 30 s of a clean build instead of minutes).
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox.git", from: "0.27.1"),
    ],
    targets: [
        // What the set-group-ID drop program may link: the standard library
        // and Glibc, no Foundation (issue #13). PosternCore re-exports it.
        .target(name: "PosternBase"),
        .target(name: "PosternCore", dependencies: ["PosternBase"]),
        .target(name: "CSysShim"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "COpenSSLShim", dependencies: ["COpenSSL"]),
        // The drop path: what the set-group-ID drop program links (no Foundation).
        .target(name: "SpoolDrop", dependencies: ["PosternBase", "CSysShim"]),
        .target(name: "Spool", dependencies: ["PosternCore", "SpoolDrop", "CSysShim"]),
        .target(name: "TLS", dependencies: ["PosternCore", "COpenSSL", "COpenSSLShim"]),
        .target(name: "SMTP", dependencies: ["PosternCore", "TLS", "COpenSSL"]),
        .systemLibrary(name: "CResolv"),
        .target(name: "DNS", dependencies: ["PosternCore", "CResolv"]),
        .target(name: "Delivery", dependencies: ["PosternCore", "TLS", "SMTP", "DNS", "SpoolDrop"]),
        .target(name: "DSN", dependencies: ["PosternCore"]),
        // The SMTP listener of `postern run` (smtp.listen): sessions on threads
        // of their own, messages into drop/ through the drop path.
        .target(name: "SMTPServer", dependencies: [
            "PosternCore", "SpoolDrop", "TLS", "Monitoring", .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Config", dependencies: ["PosternCore", .product(name: "TOMLKit", package: "TOMLKit")]),
        .target(name: "Daemon", dependencies: [
            "PosternCore", "Spool", "Scheduler", "Delivery", "DSN", "CSysShim", "Monitoring",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Monitoring", dependencies: [
            "PosternCore",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "FlyingFox", package: "FlyingFox"),
            .product(name: "FlyingSocks", package: "FlyingFox"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Scheduler", dependencies: [
            "PosternCore",
            .product(name: "HeapModule", package: "swift-collections"),
            .product(name: "DequeModule", package: "swift-collections"),
        ]),
        .executableTarget(name: "postern", dependencies: [
            "PosternCore", "Spool", "TLS", "SMTP", "Config", "Daemon", "Delivery", "Scheduler", "CSysShim", "Monitoring",
            "SMTPServer", .product(name: "Logging", package: "swift-log"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The drop program, installed set-group-ID as sendmail: the standard
        // library, Glibc and the drop path, in one static executable (no shared
        // library to load: no Foundation, ICU, libcurl, libstdc++ or OpenSSL).
        .executableTarget(name: "postern-drop", dependencies: ["PosternBase", "SpoolDrop"],
                          linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .target(name: "PosternTesting", dependencies: ["PosternCore", "Spool", "CSysShim", "COpenSSL", "COpenSSLShim"]),
        .testTarget(name: "PosternCoreTests", dependencies: ["PosternCore", "PosternBase"]),
        .testTarget(name: "SpoolTests", dependencies: ["Spool", "PosternTesting"]),
        .testTarget(name: "PosternCLITests", dependencies: ["Spool", "PosternTesting"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "PosternTesting", "COpenSSL"]),
        .testTarget(name: "SMTPTests", dependencies: ["SMTP", "TLS", "PosternTesting", "COpenSSL"]),
        .testTarget(name: "SMTPServerTests", dependencies: ["SMTPServer", "SpoolDrop", "Spool", "TLS", "PosternTesting", "Monitoring",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SchedulerTests", dependencies: ["Scheduler", "PosternCore"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "SpoolDrop"]),
        .testTarget(name: "DSNTests", dependencies: ["DSN", "PosternCore"]),
        .testTarget(name: "DNSTests", dependencies: ["DNS", "PosternCore", "CResolv", "PosternTesting"]),
        .testTarget(name: "DeliveryTests", dependencies: ["Delivery", "DNS", "SMTP", "TLS", "PosternTesting", "PosternCore"]),
        .testTarget(name: "MonitoringTests", dependencies: ["Monitoring", "PosternCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DaemonTests", dependencies: ["Daemon", "Delivery", "Spool", "Scheduler", "PosternCore", "PosternTesting",
                                                        "Monitoring", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "IntegrationTests", dependencies: ["SMTP", "TLS", "Spool", "PosternTesting", "PosternCore", "Daemon", "Scheduler",
                                                             "Delivery", "DNS"]),
    ]
)
