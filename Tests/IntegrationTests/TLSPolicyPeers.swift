import Foundation
import PosternTesting
import Testing

/// The real peers the TLS policy scenarios share (issue #16), started once
/// for the suite by `PolicyPeersTrait`: Postfix smtpd listeners as MX hosts,
/// a signed zone behind a validating unbound, and an HTTPS server for MTA-STS
/// policies. Each scenario has a recipient domain of its own in the zone:
///
/// | domain | MX host, address (listener) | DNS and HTTPS |
/// |---|---|---|
/// | dane-ee.test | 127.0.0.2 (A: self-signed `ee`) | TLSA 3 1 1 of `ee` |
/// | dane-ta.test | 127.0.0.3 (B: chain from `authority`) | TLSA 2 1 1 of the root |
/// | mismatch.test | 127.0.0.2 (A) | TLSA 3 1 1 of another key |
/// | stripped.test | 127.0.0.4 (C: no STARTTLS) | TLSA 3 1 1 of `ee` |
/// | enforce.test | mx1 127.0.0.5 (D: chain, PKIX-valid), mx2 127.0.0.3 (B) | MTA-STS enforce, `mx: mx2.enforce.test` |
/// | nomatch.test | 127.0.0.5 (D) | MTA-STS enforce, `mx: mx.elsewhere.test` |
/// | testing.test | 127.0.0.2 (A: not PKIX-valid) | MTA-STS testing |
/// | cached.test | 127.0.0.4 (C) | MTA-STS TXT, the policy server answers 500 |
/// | requiretls.test | 127.0.0.6 (a scripted peer with `ee`, REQUIRETLS) | TLSA 3 1 1 of `ee` |
/// | plain.test | 127.0.0.3 (B) | no DANE, no MTA-STS |
/// | sender.test | 127.0.0.3 (B) | where DSNs go |
///
/// All MX hosts listen on one port, `port`, the daemon's `direct.port`; TLSA
/// records are published at `_PORT._tcp.HOST`, the port delivery connects to
/// (RFC 6698 3), as they are at `_25._tcp` on the Internet. No scenario sends
/// mail to listener C: any MAIL it saw would be a plaintext downgrade.
final class PolicyPeers: @unchecked Sendable {
    @TaskLocal static var current: PolicyPeers?

    let directory: String
    let authority: TestCertificateAuthority
    /// The DANE-EE key: a self-signed certificate for an unrelated name.
    let ee: (certificate: String, key: String)
    /// The test CA's root, PEM: the daemon's trust store (`SSL_CERT_FILE`, `mta_sts.ca_file`).
    let caFile: String
    /// The MX hosts' port: every listener's, and the scripted peer's on 127.0.0.6.
    let port: UInt16
    let postfix: PostfixPeer
    let dns: DNSSECPeer
    let sts: MTASTSPeer

    static var isAvailable: Bool { PostfixPeer.isAvailable && DNSSECPeer.isAvailable && MTASTSPeer.isAvailable }

    init() throws {
        directory = NSTemporaryDirectory() + "postern-policy-scenarios-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        authority = try TestCertificateAuthority()
        let eeCertificate = try TestCertificate.selfSigned(commonName: "unrelated.example", dnsNames: ["unrelated.example"])
        ee = try eeCertificate.write(to: directory, name: "ee")
        let leaf = try authority.intermediate(commonName: "Postern Test Intermediate").issue(
            commonName: "mx.dane-ta.test",
            dnsNames: ["mx.dane-ta.test", "mx1.enforce.test", "mx2.enforce.test", "mx.nomatch.test", "mx.plain.test", "mx.sender.test"])
        let chain = try leaf.write(to: directory, name: "chain")
        // RFC 7671 5.2.2: a DANE-TA digest needs the TA certificate in the chain the server sends.
        try (leaf.chainPEM + authority.root.certificatePEM).write(toFile: chain.certificate, atomically: true, encoding: .utf8)
        for key in [ee.key, chain.key] { chmod(key, 0o644) }   // read by Postfix's unprivileged smtpd
        caFile = directory + "/ca.pem"
        try authority.root.certificatePEM.write(toFile: caFile, atomically: true, encoding: .utf8)
        let other = try TestCertificate.selfSigned(commonName: "mx.mismatch.test", dnsNames: ["mx.mismatch.test"])

        port = try freeLoopbackPort()
        postfix = try PostfixPeer(certificate: chain.certificate, key: chain.key, listeners: [
            .starttls(ip: "127.0.0.2", port: port, certificate: ee.certificate, key: ee.key),
            .starttls(ip: "127.0.0.3", port: port, certificate: chain.certificate, key: chain.key),
            .plain(ip: "127.0.0.4", port: port),
            .starttls(ip: "127.0.0.5", port: port, certificate: chain.certificate, key: chain.key),
        ])
        sts = try MTASTSPeer()
        let eeTLSA = try eeCertificate.tlsa(usage: 3, selector: 1, matchingType: 1)
        let tlsa = "_\(port)._tcp"
        var zone = [
            "dane-ee.test. MX 10 mx.dane-ee.test.", "mx.dane-ee.test. A 127.0.0.2", "\(tlsa).mx.dane-ee.test. TLSA \(eeTLSA)",
            "dane-ta.test. MX 10 mx.dane-ta.test.", "mx.dane-ta.test. A 127.0.0.3",
            "\(tlsa).mx.dane-ta.test. TLSA \(try authority.root.tlsa(usage: 2, selector: 1, matchingType: 1))",
            "mismatch.test. MX 10 mx.mismatch.test.", "mx.mismatch.test. A 127.0.0.2",
            "\(tlsa).mx.mismatch.test. TLSA \(try other.tlsa(usage: 3, selector: 1, matchingType: 1))",
            "stripped.test. MX 10 mx.stripped.test.", "mx.stripped.test. A 127.0.0.4", "\(tlsa).mx.stripped.test. TLSA \(eeTLSA)",
            "enforce.test. MX 10 mx1.enforce.test.", "enforce.test. MX 20 mx2.enforce.test.",
            "mx1.enforce.test. A 127.0.0.5", "mx2.enforce.test. A 127.0.0.3",
            "nomatch.test. MX 10 mx.nomatch.test.", "mx.nomatch.test. A 127.0.0.5",
            "testing.test. MX 10 mx.testing.test.", "mx.testing.test. A 127.0.0.2",
            "cached.test. MX 10 mx.cached.test.", "mx.cached.test. A 127.0.0.4",
            "requiretls.test. MX 10 mx.requiretls.test.", "mx.requiretls.test. A 127.0.0.6", "\(tlsa).mx.requiretls.test. TLSA \(eeTLSA)",
            "plain.test. MX 10 mx.plain.test.", "mx.plain.test. A 127.0.0.3",
            "sender.test. MX 10 mx.sender.test.", "mx.sender.test. A 127.0.0.3",
        ]
        for domain in ["enforce.test", "nomatch.test", "testing.test", "cached.test"] {
            zone += ["_mta-sts.\(domain). TXT \"v=STSv1; id=1\"", "mta-sts.\(domain). A \(sts.host)"]
        }
        dns = try DNSSECPeer(zone: zone)
        try policy("enforce.test", "version: STSv1\r\nmode: enforce\r\nmx: mx2.enforce.test\r\nmax_age: 86400\r\n")
        try policy("nomatch.test", "version: STSv1\r\nmode: enforce\r\nmx: mx.elsewhere.test\r\nmax_age: 86400\r\n")
        try policy("testing.test", "version: STSv1\r\nmode: testing\r\nmx: mx.testing.test\r\nmax_age: 86400\r\n")
        try sts.set("mta-sts.cached.test", certificate: try authority.issue(commonName: "mta-sts.cached.test",
                                                                            dnsNames: ["mta-sts.cached.test"]), .status(500))
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)   // the peers remove their own directories
    }

    private func policy(_ domain: String, _ text: String) throws {
        let host = "mta-sts." + domain
        try sts.set(host, certificate: try authority.issue(commonName: host, dnsNames: [host]), .policy(text))
    }

    /// The Postfix listener on `ip` (127.0.0.2 to 127.0.0.5).
    func listener(_ ip: String) -> PostfixPeer.Listener {
        postfix.listeners.first { $0.ip == ip }!
    }

    /// Postfix's log lines of `listener` that contain `text`: `" connect from"`
    /// for each connection, `"disconnect from"` for each session's command
    /// counts (`ehlo=2 starttls=1 mail=1 ...`).
    func lines(of listener: PostfixPeer.Listener, containing text: String) -> [Substring] {
        postfix.log.split(separator: "\n").filter { $0.contains(listener.logTag) && $0.contains(text) }
    }

    /// The sink's messages whose envelope recipient is `recipient`.
    func sinkMessages(to recipient: String) throws -> [String] {
        try postfix.sinkMessages().map { String(decoding: $0, as: UTF8.self) }.filter { $0.contains("X-Rcpt-Args: <\(recipient)>") }
    }

    /// The first message to `recipient` once the sink has it: Postfix's 250
    /// to the daemon comes before its own delivery to the sink (bounded wait).
    func firstSinkMessage(to recipient: String) -> String? {
        var found: String?
        _ = BackgroundProcess.waitUntil(timeout: 30) {
            found = (try? sinkMessages(to: recipient))?.first
            return found != nil
        }
        return found
    }

    /// A daemon delivering directly through the validating resolver to the MX
    /// hosts on `port`, fetching MTA-STS policies from the HTTPS server, and
    /// trusting the test CA as its system store.
    func daemon() throws -> DaemonFixture {
        let fixture = try DaemonFixture(overrides: [
            "dns.nameserver=\(dns.host):\(dns.port)", "direct.port=\(port)", "direct.connect_timeout=5s",
            "mta_sts.https_port=\(sts.port)", "mta_sts.ca_file=\(caFile)", "mta_sts.timeout=5s", "queue.keep_retired=1h",
        ], relay: false)
        // OpenSSL's default verify paths honour SSL_CERT_FILE: PKIX for MTA-STS hosts against the test CA.
        fixture.environment["SSL_CERT_FILE"] = caFile
        return fixture
    }
}

/// Starts `PolicyPeers` once around a whole suite and hands them to its tests
/// through `PolicyPeers.current`; they stop when the suite ends.
struct PolicyPeersTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // Without the programs, the tests' own #require says what is missing.
        guard PolicyPeers.isAvailable else { return try await function() }
        let peers = try PolicyPeers()
        try await PolicyPeers.$current.withValue(peers) { try await function() }
    }
}

extension Trait where Self == PolicyPeersTrait {
    static var policyPeers: Self { PolicyPeersTrait() }
}
