import Foundation
import Glibc

/// A private Dante SOCKS5 server on `127.0.0.1:port`, for integration tests of the
/// socks5 transport: method "no authentication" only, CONNECT only, and only to
/// 127.0.0.0/8 and ::1 (anything else gets reply 2, "not allowed by ruleset").
/// A domain-name destination is resolved by danted with the system's resolver.
///
/// All the work is in `tools/socks-peer.sh` (runnable by hand, too); this only
/// picks a port and a directory, runs it, and reads its log. Root is not needed
/// (as root, danted works as nobody).
public final class SOCKSPeer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public let directory: String
    /// Always 127.0.0.1.
    public let host = "127.0.0.1"
    public let port: UInt16

    /// Whether Dante is installed (`tools/socks-peer.sh install`): gate tests on this.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/danted")
    }

    /// Starts danted in a fresh directory under `NSTemporaryDirectory()`. Returns
    /// once it answers the SOCKS5 greeting; throws with the script's output (which
    /// includes danted's log) if it does not.
    public init() throws {
        directory = NSTemporaryDirectory() + "socks-peer-" + UUID().uuidString
        // Another process may take the port before danted binds it: rare.
        port = try freeLoopbackPort()
        let (status, output) = try PeerScript.run("socks-peer.sh", ["start", directory, "\(port)"])
        // On failure the script has stopped what it started; deinit still runs
        // (every property is set) and removes the directory.
        guard status == 0 else { throw Failure(description: "socks-peer.sh start failed (\(status)):\n\(output)") }
    }

    deinit {
        _ = try? PeerScript.run("socks-peer.sh", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// danted's log (DIR/log/danted.log). A session relayed to DEST port DPORT
    /// shows as `pass(1): tcp/connect [: 127.0.0.1.CPORT 127.0.0.1.PORT ->
    /// 127.0.0.1.SPORT DEST.DPORT` when it opens and `... tcp/connect ]: ...` when
    /// it closes (`pass(2)` for ::1); a refused one as `block(3): tcp/connect ]:
    /// ... -> 0.0.0.0.0 DEST.DPORT`. The start-up probe shows as one `block(1):
    /// tcp/accept ]: ...` line. Each line is written when it happens: poll for it.
    public var log: String {
        (try? String(contentsOfFile: directory + "/log/danted.log", encoding: .utf8)) ?? ""
    }

    /// Whether the log shows a session relayed to `destination` (e.g.
    /// "127.0.0.2.2525" or "::1.2525": address, dot, port, as Dante writes them).
    public func relayed(to destination: String) -> Bool {
        log.split(separator: "\n").contains { $0.contains(": tcp/connect [: ") && $0.hasSuffix(" " + destination) }
    }
}
