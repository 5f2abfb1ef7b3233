import DNS
import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import SMTP
@testable import TLS

/// DANE end to end on loopback with real peers: TLSA records computed from test
/// certificates, served signed (tools/dnssec-peer.sh) and looked up through the
/// project's resolver, verify the STARTTLS session of Postfix smtpd listeners
/// (tools/postfix-peer.sh --listener), one MX host per loopback address.
@Suite(.serialized)
struct DANEPeerTests {
    let dns: DNSSECPeer
    let postfix: PostfixPeer
    let resolver: SystemResolver
    /// DANE-EE: a self-signed leaf, named by its key (3 1 1).
    let eeCertificate: TestCertificate
    /// DANE-TA: a CA (2 1 1) and a leaf its intermediate issued for mx2.dane.test (PKIX-valid too).
    let authority: TestCertificateAuthority
    let context: TLSContext
    /// Trusts `authority`'s root only, for PKIX.
    let pkixContext: TLSContext

    init() throws {
        try #require(PostfixPeer.isAvailable, "Postfix and smtp-sink are needed (tools/test.sh installs them); run as root")
        try #require(DNSSECPeer.isAvailable, "NSD, ldnsutils and unbound are needed (tools/test.sh installs them)")
        let directory = NSTemporaryDirectory() + "/postern-dane-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        authority = try TestCertificateAuthority()
        eeCertificate = try TestCertificate.selfSigned(commonName: "unrelated.example", dnsNames: ["unrelated.example"])
        let taLeaf = try authority.intermediate(commonName: "Postern Test Intermediate")
            .issue(commonName: "mx2.dane.test", dnsNames: ["mx2.dane.test"])
        let other = try TestCertificate.selfSigned(commonName: "mx1.dane.test", dnsNames: ["mx1.dane.test"])
        let ee = try eeCertificate.write(to: directory, name: "ee")
        let ta = try taLeaf.write(to: directory, name: "ta")
        // RFC 7671 5.2.2: a DANE-TA record that is a digest needs the TA certificate in the
        // chain the server sends, so this server sends leaf, intermediate and root.
        try (taLeaf.chainPEM + authority.root.certificatePEM).write(toFile: ta.certificate, atomically: true, encoding: .utf8)
        for key in [ee.key, ta.key] { chmod(key, 0o644) }   // read by Postfix's unprivileged smtpd
        let port = try freeLoopbackPort()
        postfix = try PostfixPeer(certificate: ta.certificate, key: ta.key, listeners: [
            .starttls(ip: "127.0.0.2", port: port, certificate: ee.certificate, key: ee.key),
            .starttls(ip: "127.0.0.3", port: port, certificate: ta.certificate, key: ta.key),
            .plain(ip: "127.0.0.4", port: port),
        ])
        dns = try DNSSECPeer(zone: [
            "dane.test. MX 10 mx1.dane.test.",
            "dane.test. MX 20 mx2.dane.test.",
            "dane.test. MX 30 mx3.dane.test.",
            "dane.test. MX 40 mx4.dane.test.",
            "mx1.dane.test. A 127.0.0.2",
            "_25._tcp.mx1.dane.test. TLSA \(try eeCertificate.tlsa(usage: 3, selector: 1, matchingType: 1))",
            // The daemon looks TLSA up at the port it dials (`direct.port`).
            "_\(port)._tcp.mx1.dane.test. TLSA \(try eeCertificate.tlsa(usage: 3, selector: 1, matchingType: 1))",
            "mx2.dane.test. A 127.0.0.3",
            "_25._tcp.mx2.dane.test. TLSA \(try authority.root.tlsa(usage: 2, selector: 1, matchingType: 1))",
            // Same listener as mx1, but the record names another key.
            "mx3.dane.test. A 127.0.0.2",
            "_25._tcp.mx3.dane.test. TLSA \(try other.tlsa(usage: 3, selector: 1, matchingType: 1))",
            // TLSA published, STARTTLS not announced.
            "mx4.dane.test. A 127.0.0.4",
            "_25._tcp.mx4.dane.test. TLSA \(try eeCertificate.tlsa(usage: 3, selector: 1, matchingType: 1))",
        ])
        resolver = SystemResolver(nameserver: (dns.host, dns.port), timeout: 5, attempts: 1)
        context = try TLSContext(trustAnchors: .system)
        try authority.root.certificatePEM.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        pkixContext = try TLSContext(trustAnchors: .file(directory + "/ca.pem"))
    }

    /// Looks up `host` as DANE does (authentic A and TLSA) and opens an SMTP session
    /// with STARTTLS required and DANE verification (or PKIX against the test CA),
    /// on the listener's port.
    func open(_ host: String, pkix: Bool = false) throws -> SessionFacts {
        let address = try resolver.a(host)
        try #require(address.authentic && address.records.count == 1)
        let tlsa = try resolver.tlsa("_25._tcp.\(host)")
        try #require(tlsa.authentic)
        let tls = pkix ? TLSClientOptions(verification: .pkix(hostnames: [host]), serverName: host, context: pkixContext)
            : TLSClientOptions(verification: .dane(records: tlsa.records, hostnames: [host]), serverName: host, context: context)
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .required, tls: tls)
        options.timeouts = SMTPTimeouts(uniform: 30)
        let port = postfix.listeners[0].port
        let client = SMTPClient(stream: try TCPConnector.connect(ip: address.records[0], port: port, deadline: .after(10)), options: options)
        defer { client.quit() }
        return try client.open()
    }

    /// The MX lookup is authentic and lists the four hosts.
    @Test func mxIsAuthentic() throws {
        let mx = try resolver.mx("dane.test")
        #expect(mx.authentic && mx.records.map(\.host) == ["mx1.dane.test", "mx2.dane.test", "mx3.dane.test", "mx4.dane.test"])
    }

    /// DANE-EE 3 1 1 from the signed zone verifies Postfix's self-signed certificate, whatever its name.
    @Test func daneEEVerifies() throws {
        let facts = try open("mx1.dane.test")
        #expect(facts.tls?.verified == true && facts.tls?.verificationMode == .dane)
        #expect(facts.tls?.matchedTLSA?.usage == 3)
        #expect(facts.hello?.text.contains("127-0-0-2-") == true)   // the listener on 127.0.0.2 answered
    }

    /// DANE-TA 2 1 1 naming the test CA verifies the chain it issued for the MX host's name.
    @Test func daneTAVerifies() throws {
        let facts = try open("mx2.dane.test")
        #expect(facts.tls?.verified == true)
        #expect(facts.tls?.matchedTLSA?.usage == 2)
    }

    /// The same listener's chain (leaf, intermediate, root) verifies under PKIX against the test CA.
    @Test func pkixVerifies() throws {
        let facts = try open("mx2.dane.test", pkix: true)
        #expect(facts.tls?.verified == true && facts.tls?.verificationMode == .pkix)
    }

    /// A TLSA record for another key fails the handshake as a DANE mismatch.
    @Test func daneMismatchFails() throws {
        #expect {
            try open("mx3.dane.test")
        } throws: { error in
            guard let error = error as? SMTPError, case .tls(.verification(let failure)) = error.kind else { return false }
            return failure.reason == .daneMismatch
        }
    }

    /// A listener that does not announce STARTTLS cannot satisfy required TLS.
    @Test func starttlsNotAnnounced() throws {
        #expect(throws: SMTPError(.refused(.startTLSUnavailable), command: "STARTTLS")) { try open("mx4.dane.test") }
        #expect(postfix.log.contains(postfix.listeners[2].logTag))
    }

    /// The fixtures compose with the daemon as scenario tests need them: direct delivery asks the
    /// validating resolver, dials the MX host's listener on `direct.port`, and Postfix relays the
    /// message, received over STARTTLS by the 127.0.0.2 listener, into its sink.
    @Test func daemonDeliversToListener() throws {
        let fixture = try DaemonFixture(overrides: ["dns.nameserver=\(dns.host):\(dns.port)", "direct.port=\(postfix.listeners[0].port)",
                                                    "direct.connect_timeout=5s"], relay: false)
        try fixture.start()
        try fixture.drop(subject: "dnssec", to: ["bob@dane.test"])
        #expect(fixture.waitForLog("status=sent"))
        let message = try #require(try postfix.waitForSinkMessages(count: 1).first)
        let text = String(decoding: message, as: UTF8.self)
        #expect(text.contains("X-Rcpt-Args: <bob@dane.test>"))
        #expect(text.contains("by \(postfix.listeners[0].hostname) (Postfix) with ESMTPS"))
        #expect(fixture.log.split(separator: "\n").contains {
            $0.contains("status=sent") && $0.contains("host=mx1.dane.test") && $0.contains("tls_policy=dane")
                && $0.contains("tls_outcome=dane")
        })
        #expect(dns.log.contains("dane.test. MX IN"))
        #expect(fixture.stop() == 0)
    }
}
