import Foundation
import Glibc
import PosternCore

/// A private HTTPS server on `127.0.0.1:port` serving MTA-STS policies (RFC 8461
/// 3.3) for integration tests of the policy fetch: per host name (`mta-sts.DOMAIN`)
/// its own certificate, chosen by SNI, and its own answer, chosen by the Host
/// header, which a test may change between fetches with `set`. A real TLS and
/// HTTP stack (Python's ssl and http.server) on the other end, where a scripted
/// peer would only agree with us.
///
/// ```swift
/// let authority = try TestCertificateAuthority()
/// let certificate = try authority.issue(commonName: "mta-sts.example.test", dnsNames: ["mta-sts.example.test"])
/// let sts = try MTASTSPeer()
/// try sts.set("mta-sts.example.test", certificate: certificate,
///             .policy("version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"))
/// // DNS: mta-sts.example.test. A 127.0.0.1, _mta-sts.example.test. TXT "v=STSv1; id=1";
/// // the fetcher uses port sts.port and trusts authority.root.
/// ```
///
/// All the work is in `tools/mta-sts-peer.sh` and `tools/lib/mta-sts-server.py`
/// (runnable by hand, too); this only picks a port and a directory, writes the
/// sites file and certificates, runs it, and reads its log. Root is not needed.
public final class MTASTSPeer: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// What the server answers to GET /.well-known/mta-sts.txt for one host.
    public enum Response: Sendable {
        /// 200 with this body (sent as it is: give CRLF or LF as the test needs),
        /// Content-Type `contentType`.
        case policy(String, contentType: String = "text/plain")
        /// This status (404, 500, ...) with a short body.
        case status(Int)
        /// 301 to this URL, which RFC 8461 3.3 forbids following.
        case redirect(String)
        /// 200 with a valid enforce policy (`mx: *.test`) padded to this many bytes.
        case oversized(Int)
        /// The request is read, nothing is ever answered (at most 120 s).
        case hang
    }

    public let directory: String
    /// Always 127.0.0.1.
    public let host = "127.0.0.1"
    public let port: UInt16
    private let lock = NSLock()
    private var sites: [String: String] = [:]

    /// Whether python3 is there (`tools/mta-sts-peer.sh install`): gate tests on this.
    public static var isAvailable: Bool {
        ["/usr/bin/python3", "/bin/python3"].contains(where: FileManager.default.isExecutableFile)
    }

    /// Starts the server with no sites (every handshake is refused until `set`).
    /// Returns once it accepts connections; throws with the script's output
    /// (which includes the server's log) if it does not.
    public init() throws {
        directory = NSTemporaryDirectory() + "mta-sts-peer-" + UUID().uuidString
        // Another process may take the port before the server binds it: rare.
        port = try freeLoopbackPort()
        try FileManager.default.createDirectory(atPath: directory + "/sites.d", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: directory + "/sites"))
        let (status, output) = try PeerScript.run("mta-sts-peer.sh", ["start", directory, "\(port)"])
        guard status == 0 else { throw Failure(description: "mta-sts-peer.sh start failed (\(status)):\n\(output)") }
    }

    deinit {
        _ = try? PeerScript.run("mta-sts-peer.sh", ["stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Serves `hostName` (`mta-sts.DOMAIN`) with `certificate` (its chain) and
    /// `response` from the next connection on, replacing what it served before.
    public func set(_ hostName: String, certificate: TestCertificate, _ response: Response) throws {
        let name = hostName.lowercased()
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }) else {
            throw Failure(description: "not a host name: \(hostName)")
        }
        let base = directory + "/sites.d/" + name
        let files = try certificate.write(to: directory + "/sites.d", name: name)
        let action: String
        switch response {
        case .policy(let body, let contentType):
            guard !contentType.contains(where: \.isWhitespace) else { throw Failure(description: "bad content type") }
            let file = base + "." + UUID().uuidString + ".policy"
            try Data(body.utf8).write(to: URL(fileURLWithPath: file))
            action = "policy \(file) \(contentType)"
        case .status(let code): action = "status \(code)"
        case .redirect(let url):
            guard !url.contains(where: \.isWhitespace) else { throw Failure(description: "bad URL: \(url)") }
            action = "redirect \(url)"
        case .oversized(let size): action = "oversized \(size)"
        case .hang: action = "hang"
        }
        try lock.withLock {
            sites[name] = "\(name) \(files.certificate) \(files.key) \(action)"
            // Written aside and renamed over: the server reads it per connection.
            let temporary = directory + "/sites.tmp"
            try Data(sites.values.sorted().map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, directory + "/sites") == 0 else {
                throw Failure(description: "rename \(temporary): \(POSIX.errorText(errno))")
            }
        }
    }

    /// The server's request log: one line per request (`TIME 127.0.0.1 SNI HOST
    /// PATH STATUS SIZE`, or `... hang`), and `handshake refused` / `connection
    /// failed` lines (the start-up probe makes one of the latter).
    public var log: String {
        (try? String(contentsOfFile: directory + "/log/requests.log", encoding: .utf8)) ?? ""
    }

    /// How many requests for the policy of `hostName` (by Host header) reached the server.
    public func requests(for hostName: String) -> Int {
        log.split(separator: "\n").filter {
            let fields = $0.split(separator: " ")
            return fields.count >= 6 && fields[3] == hostName.lowercased()
        }.count
    }
}
