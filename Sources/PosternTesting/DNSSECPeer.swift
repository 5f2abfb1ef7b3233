import Foundation
import Glibc

/// DNSSEC on loopback: a private NSD serving zones signed at start with fresh
/// keys, behind a private validating unbound on `127.0.0.1:port` whose only
/// trust anchor is the root's key. The AD bit, a bogus SERVFAIL and an
/// authenticated denial all come from real validation, which `DNSPeer` (no
/// DNSSEC) and `MockResolver` (told what is authentic) cannot show.
///
/// `zone` takes the lines of `DNSPeer`'s zone (one record a line, absolute
/// owner), all in the signed root zone, plus `zone: NAME KIND` lines that make
/// NAME a zone of its own, delegated from the zone above it:
///
/// - `signed` / `nsec3`: secure (AD), denials by NSEC / NSEC3;
/// - `unsigned`: insecure (answers without AD);
/// - `wrong-ds` / `expired`: bogus (SERVFAIL), the parent's DS names another
///   key / the signatures expired 10 days ago.
///
/// A cut can sit at any name, so `zone: _25._tcp.mx.example.test. wrong-ds`
/// makes just that TLSA record bogus while mx.example.test's addresses stay
/// secure. For example:
///
/// ```swift
/// let dns = try DNSSECPeer(zone: [
///     "example.test. MX 10 mx.example.test.",
///     "mx.example.test. A 127.0.0.2",
///     "_25._tcp.mx.example.test. TLSA " + (try certificate.tlsa(usage: 3, selector: 1, matchingType: 1)),
///     "zone: insecure.test. unsigned",
///     "insecure.test. MX 10 mx.insecure.test.",
/// ])
/// let resolver = SystemResolver(nameserver: (dns.host, dns.port))   // AD trusted: loopback
/// ```
///
/// All the work is in `tools/dnssec-peer.sh` (runnable by hand, too; its
/// `--help` has the details); this only picks ports and a directory, writes the
/// zone file, runs it, and reads the logs. Root is not needed. Start one per
/// suite: it takes about half a second.
public final class DNSSECPeer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    public let directory: String
    /// Always 127.0.0.1.
    public let host = "127.0.0.1"
    /// The validating resolver's UDP and TCP port: what Postern asks.
    public let port: UInt16
    /// NSD's port, the authoritative server (AA answers, no validation).
    public let authoritativePort: UInt16

    /// Whether NSD, ldnsutils and unbound are installed (`tools/dnssec-peer.sh
    /// install`): gate tests on this.
    public static var isAvailable: Bool {
        ["/usr/sbin/nsd", "/usr/bin/ldns-signzone", "/usr/bin/ldns-keygen", "/usr/bin/ldns-key2ds", "/usr/sbin/unbound"]
            .allSatisfy(FileManager.default.isExecutableFile)
    }

    /// Signs the zones and starts both servers in a fresh directory under
    /// `NSTemporaryDirectory()`. Returns once unbound answers the root's SOA
    /// with AD set; throws with the script's output (which includes both logs)
    /// if it does not, or if the zone does not parse or sign.
    public init(zone: [String]) throws {
        directory = NSTemporaryDirectory() + "dnssec-peer-" + UUID().uuidString
        // Another process may take a port before a server binds it: rare.
        port = try PeerScript.freeLoopbackPortForTCPAndUDP()
        var other = try PeerScript.freeLoopbackPortForTCPAndUDP()
        while other == port { other = try PeerScript.freeLoopbackPortForTCPAndUDP() }
        authoritativePort = other
        let zoneFile = directory + "/zone"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try Data(zone.map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: zoneFile))
        let (status, output) = try PeerScript.run("dnssec-peer.sh",
                                                  ["start", directory, "\(port)", "\(authoritativePort)", zoneFile])
        // On failure the script has stopped what it started; deinit still runs
        // (every property is set) and removes the directory.
        guard status == 0 else { throw Failure(description: "dnssec-peer.sh start failed (\(status)):\n\(output)") }
    }

    deinit {
        _ = try? PeerScript.run("dnssec-peer.sh", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The root's DS record, unbound's trust anchor (`. 3600 IN DS tag 13 2 hex`).
    public var trustAnchor: String {
        ((try? String(contentsOfFile: directory + "/root.ds", encoding: .utf8)) ?? "")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// unbound's log: one line per query (`info: 127.0.0.1 example.test. MX IN`)
    /// and reply, and for each bogus answer why (`info: validation failure
    /// <bogus.test. MX IN>: signature expired from 127.0.0.1 ...`).
    public var log: String {
        (try? String(contentsOfFile: directory + "/log/unbound.log", encoding: .utf8)) ?? ""
    }

    /// NSD's log: the zones it loaded, and errors.
    public var authoritativeLog: String {
        (try? String(contentsOfFile: directory + "/log/nsd.log", encoding: .utf8)) ?? ""
    }
}
