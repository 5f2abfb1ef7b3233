import Foundation
import Glibc

/// A private unbound on `127.0.0.1:port` (UDP and TCP) that answers from `zone`
/// only, for integration tests of direct delivery: a real DNS server, where
/// `FakeDNSServer` is our own idea of one.
///
/// Each line of `zone` is one record as in unbound's `local-data:` (absolute
/// owner, optional TTL, default 3600, and class, type, data), e.g.
/// `"example.test. MX 10 mx1.example.test."`, `"mx1.example.test. A 127.0.0.2"`,
/// `"example.test. TXT \"v=spf1 -all\""`; or an unbound directive
/// `local-zone: "broken.test." refuse` (REFUSED; for SERVFAIL, a bogus zone of
/// `DNSSECPeer`: Debian 12's unbound has no `always_servfail`).
/// Replies look like a recursive resolver's: a CNAME comes with its target's
/// records, a name with other types only gets NODATA, and any other name, in the
/// test domain or not, NXDOMAIN with the root's SOA. Nothing is ever forwarded.
///
/// All the work is in `tools/dns-peer.sh` (runnable by hand, too); this only picks
/// a port and a directory, writes the zone file, runs it, and reads its log.
/// Root is not needed (unbound stays whoever starts it).
public final class DNSPeer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public let directory: String
    /// Always 127.0.0.1.
    public let host = "127.0.0.1"
    /// The UDP and TCP port unbound answers on.
    public let port: UInt16

    /// Whether unbound is installed (`tools/dns-peer.sh install`): gate tests on this.
    public static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/unbound")
    }

    /// Starts unbound in a fresh directory under `NSTemporaryDirectory()`. Returns
    /// once it answers over UDP and TCP; throws with the script's output (which
    /// includes unbound's log) if it does not, or if the zone does not parse.
    public init(zone: [String]) throws {
        directory = NSTemporaryDirectory() + "dns-peer-" + UUID().uuidString
        // Another process may take the port before unbound binds it: rare.
        port = try PeerScript.freeLoopbackPortForTCPAndUDP()
        let zoneFile = directory + "/zone"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(zone.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: zoneFile))
        let (status, output) = try PeerScript.run("dns-peer.sh", ["start", directory, "\(port)", zoneFile])
        // On failure the script has stopped what it started; deinit still runs
        // (every property is set) and removes the directory.
        guard status == 0 else { throw Failure(description: "dns-peer.sh start failed (\(status)):\n\(output)") }
    }

    deinit {
        _ = try? PeerScript.run("dns-peer.sh", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// unbound's log (DIR/log/unbound.log): one line per query received
    /// (`info: 127.0.0.1 example.test. MX IN`) and per reply (`... NOERROR
    /// 0.000000 0 95`), besides start-up and errors. The start-up probe shows as
    /// one query for `. SOA`.
    public var log: String {
        (try? String(contentsOfFile: directory + "/log/unbound.log", encoding: .utf8)) ?? ""
    }
}
