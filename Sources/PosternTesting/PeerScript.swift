import Foundation
import Glibc

/// Runs the test-peer scripts in `tools/` (`dns-peer.sh`, `dnssec-peer.sh`,
/// `postfix-peer.sh`, `socks-peer.sh`, `mta-sts-peer.sh`) for their Swift
/// wrappers, and finds free loopback ports for them.
enum PeerScript {
    struct Failure: Error, CustomStringConvertible { let description: String }

    /// This file is Sources/PosternTesting/PeerScript.swift: the repo root is
    /// three levels up (after resolving symlinks), whatever the working directory.
    static func path(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("tools/\(name)").path
    }

    /// Runs `tools/<name>` with `arguments`, stdout and stderr together (through a
    /// file), and waits for it. Through `BackgroundProcess`, not Foundation's
    /// `Process`: the script and the daemons it starts must not inherit the test
    /// runner's blocked signals, or a daemon that does not unblock them itself
    /// (NSD) ignores the SIGTERM that stops it. Nor any of the runner's other
    /// descriptors (as `Process` ensures too): a daemon must not keep a test's socket open.
    static func run(_ name: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let log = NSTemporaryDirectory() + "peer-script-\(UUID().uuidString).log"
        defer { unlink(log) }
        // posix_spawn hands over every descriptor not marked close-on-exec: the
        // script starts from a shell that has closed all but 0-2 (peer-common.sh).
        let closing = "source \"$0\" && exec_without_inherited_fds /bin/bash \"$@\""
        let status = try BackgroundProcess(["/bin/bash", "-c", closing, path("lib/peer-common.sh"), path(name)] + arguments,
                                           log: log).wait()
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// A loopback port free for both TCP and UDP right now (a DNS server takes
    /// both): `freeLoopbackPort()` for TCP, kept only if UDP can bind it too.
    static func freeLoopbackPortForTCPAndUDP() throws -> UInt16 {
        for _ in 0..<20 {
            let port = try freeLoopbackPort()
            if udpBindable(port) { return port }
        }
        throw Failure(description: "no loopback port free for both TCP and UDP in 20 tries")
    }

    private static func udpBindable(_ port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
