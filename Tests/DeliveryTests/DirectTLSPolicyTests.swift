import DNS
import Foundation
import PosternCore
import PosternTesting
import SMTP
import TLS
import Testing
@testable import Delivery

/// Direct delivery under TLS policy against the scripted peer: DANE required and verified, no plaintext
/// after a failure, REQUIRETLS delivered and bounced, TLS-Required: No, MTA-STS enforce, the dual-stack rule.
struct DirectTLSPolicyTests {
    /// Every address dials the scripted peer on 127.0.0.1, so that hosts may have any address.
    struct LoopbackDialer: Dialer {
        let port: UInt16
        func addresses(of host: String) throws(StreamError) -> [String] { ["127.0.0.1"] }
        func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream {
            try TCPConnector.connect(ip: "127.0.0.1", port: self.port, deadline: deadline)
        }
    }

    let directory: String
    let authority: TestCertificateAuthority
    let serverTLS: ScriptedSMTPPeer.ServerTLS
    let leaf: TestCertificate
    let context: TLSContext

    init() throws {
        directory = NSTemporaryDirectory() + "/postern-tls-policy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        authority = try TestCertificateAuthority()
        leaf = try authority.issue(commonName: "mx.example.org", dnsNames: ["mx.example.org"])
        let paths = try leaf.write(to: directory, name: "mx")
        serverTLS = ScriptedSMTPPeer.ServerTLS(certificateChain: paths.certificate, key: paths.key)
        try authority.root.certificatePEM.write(toFile: directory + "/ca.pem", atomically: true, encoding: .utf8)
        context = try TLSContext(trustAnchors: .file(directory + "/ca.pem"))
    }

    func transport(_ resolver: MockResolver, port: UInt16, mtaSTS: (any MTASTSPolicySource)? = nil) -> DirectTransport {
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .opportunistic,
                                        tls: TLSClientOptions(verification: .none, enforce: false, context: context))
        options.timeouts = SMTPTimeouts(uniform: 10)
        return DirectTransport(resolver: resolver, options: options, dialer: LoopbackDialer(port: port), port: 25,
                               limits: ConnectLimits(perAddress: 5, perAttempt: 30), mtaSTS: mtaSTS)
    }

    func request(requireTLS: Bool? = nil, dialed: [String: [String]] = [:]) throws -> DeliveryRequest {
        let path = directory + "/message-\(UUID().uuidString)"
        try Data("Subject: policy\r\n\r\nhello\r\n".utf8).write(to: URL(fileURLWithPath: path))
        var request = DeliveryRequest(id: QueueIDGenerator().next(), messagePath: path, sender: "a@b.example",
                                      recipients: ["bob@example.org"], domain: "example.org")
        request.requireTLS = requireTLS
        request.dialedIPs = dialed
        return request
    }

    /// A signed zone: MX, address and TLSA records all authentic.
    func signedZone(tlsa: [TLSARecord]?, failing: Bool = false, aaaa: [String]? = nil) -> MockResolver {
        MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                     a: ["mx.example.org": ["192.0.2.25"]], aaaa: aaaa.map { ["mx.example.org": $0] } ?? [:],
                     tlsa: tlsa.map { ["_25._tcp.mx.example.org": $0] } ?? [:],
                     serverFailures: failing ? ["_25._tcp.mx.example.org"] : [], allAuthentic: true)
    }

    func daneEE() throws -> TLSARecord {
        TLSARecord(usage: 3, selector: 1, matchingType: 1, data: try leaf.associationData(selector: 1, matchingType: 1))
    }

    static let greeting: [ScriptedSMTPPeer.Step] = [.send("220 mx.example.org ESMTP"), .expect("EHLO client.postern.test")]

    func secured(_ extensions: [String]) -> [ScriptedSMTPPeer.Step] {
        Self.greeting + [.send("250-mx.example.org\n250 STARTTLS"), .expect("STARTTLS"), .send("220 2.0.0 ready"), .startTLS(serverTLS),
                         .expect("EHLO client.postern.test"), .send((["mx.example.org"] + extensions).enumerated().map { index, line in
                             (index == extensions.count ? "250 " : "250-") + line
                         }.joined(separator: "\n"))]
    }

    static func transaction(mail: String = "MAIL FROM:<a@b.example>") -> [ScriptedSMTPPeer.Step] {
        [.expect(mail), .send("250 2.1.0 ok"), .expect("RCPT TO:<bob@example.org>"), .send("250 2.1.5 ok"),
         .expect("DATA"), .send("354 go on"), .receiveData, .send("250 2.0.0 queued"), .expect("QUIT"), .send("221 bye"), .waitForClose]
    }

    /// Usable TLSA records in a signed zone: STARTTLS is required and the certificate matched against them.
    @Test func danePass() throws {
        let peer = try ScriptedSMTPPeer(listening: secured([]) + Self.transaction())
        let report = transport(signedZone(tlsa: [try daneEE()]), port: peer.port).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
        #expect(report.policy == .dane && report.tlsOutcome == .dane && report.tlsMode == .required)
        #expect(report.tls?.contains("verified=dane") == true)
        #expect(report.connections == [.init(result: .ok, tls: .dane, policy: .dane)])
        #expect(peer.finish().failures.isEmpty)
    }

    /// A certificate that matches no TLSA record fails the host for now; plaintext is never tried.
    @Test func daneMismatch() throws {
        let other = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: Array(repeating: 0x42, count: 32))
        let peer = try ScriptedSMTPPeer(listening: Self.greeting + [.send("250-mx.example.org\n250 STARTTLS"), .expect("STARTTLS"),
                                                                    .send("220 2.0.0 ready"), .startTLS(serverTLS), .waitForClose])
        let report = transport(signedZone(tlsa: [other]), port: peer.port).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("DANE mismatch"), "\(report.results[0].text)")
        #expect(report.tlsOutcome == .failed && report.policy == .dane)
        // One connection: no plaintext retry.
        #expect(report.connections == [.init(result: .error, tls: .failed, policy: .dane)])
        _ = peer.finish()
    }

    /// STARTTLS stripped from a DANE host's EHLO: the host fails temporarily; no MAIL is sent in plaintext.
    @Test func daneStartTLSStripped() throws {
        let peer = try ScriptedSMTPPeer(listening: Self.greeting + [.send("250 mx.example.org"), .waitForClose])
        let report = transport(signedZone(tlsa: [try daneEE()]), port: peer.port).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("does not offer STARTTLS"))
        #expect(report.tlsOutcome == .plaintext && report.policy == .dane)
        #expect(report.connections.count == 1)
        #expect(peer.finish().failures.isEmpty)
    }

    /// A TLSA lookup that fails (SERVFAIL: bogus or broken) defers the host without connecting.
    @Test func tlsaLookupFailure() throws {
        let report = transport(signedZone(tlsa: nil, failing: true), port: 9).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("SERVFAIL"))
        #expect(report.connections.isEmpty && report.policy == .dane)
    }

    /// TLSA records present but none usable: STARTTLS still required, no verification.
    @Test func daneUnusableRecords() throws {
        let pkix = TLSARecord(usage: 1, selector: 1, matchingType: 1, data: Array(repeating: 1, count: 32))
        let peer = try ScriptedSMTPPeer(listening: secured([]) + Self.transaction())
        let report = transport(signedZone(tlsa: [pkix]), port: peer.port).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.tlsMode == .required && report.tlsOutcome == .opportunistic && report.policy == .dane)
        #expect(peer.finish().failures.isEmpty)
    }

    struct UnfetchablePolicy: MTASTSPolicySource {
        func lookup(_ domain: String) -> MTASTSLookup { MTASTSLookup(policy: nil, id: "1", note: "failed", fetchError: "connection refused") }
    }

    /// An unsigned zone whose MTA-STS policy cannot be fetched (none cached): opportunistic STARTTLS with no
    /// TLSA query (the TLSA name would fail), and the fetch error in the report for the log.
    @Test func unsignedZoneIsOpportunistic() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                                    a: ["mx.example.org": ["192.0.2.25"]], serverFailures: ["_25._tcp.mx.example.org"])
        let peer = try ScriptedSMTPPeer(listening: Self.greeting + [.send("250 mx.example.org")] + Self.transaction())
        let report = transport(resolver, port: peer.port, mtaSTS: UnfetchablePolicy()).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.policy == .noPolicy && report.tlsOutcome == .plaintext)
        #expect(report.mtaSTSFetchError == "connection refused")
        #expect(peer.finish().failures.isEmpty)
    }

    /// REQUIRETLS to a DANE host that offers it: MAIL FROM carries REQUIRETLS and the message goes.
    @Test func requireTLSDelivered() throws {
        let peer = try ScriptedSMTPPeer(listening: secured(["REQUIRETLS"]) + Self.transaction(mail: "MAIL FROM:<a@b.example> REQUIRETLS"))
        let report = transport(signedZone(tlsa: [try daneEE()]), port: peer.port).deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
        #expect(peer.finish().failures.isEmpty)
    }

    /// REQUIRETLS to a DANE host that does not offer it: no other host qualifies, so it bounces now with 5.7.30.
    @Test func requireTLSBouncedByServer() throws {
        let peer = try ScriptedSMTPPeer(listening: secured([]) + [.expect("QUIT"), .send("221 bye"), .waitForClose])
        let report = transport(signedZone(tlsa: [try daneEE()]), port: peer.port).deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.failed])
        #expect(report.results[0].code == 554 && report.results[0].enhanced == "5.7.30")
        #expect(report.results[0].text.contains("does not offer REQUIRETLS"))
        #expect(peer.finish().failures.isEmpty)
    }

    /// REQUIRETLS to a domain with no DANE and no MTA-STS: nothing is dialed, the recipient fails with 5.7.30.
    @Test func requireTLSWithoutPolicy() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]], a: ["mx.example.org": ["192.0.2.25"]])
        let report = transport(resolver, port: 9).deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.failed])
        #expect(report.results[0].enhanced == "5.7.30" && report.results[0].text.contains("not protected by DANE"))
        #expect(report.connections.isEmpty)
    }

    /// REQUIRETLS with a TLSA lookup failure: temporary, since the host may yet qualify.
    @Test func requireTLSWithLookupFailureWaits() throws {
        let report = transport(signedZone(tlsa: nil, failing: true), port: 9).deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
    }

    /// REQUIRETLS through a relay with opportunistic TLS: it cannot qualify, so the recipient fails at once.
    @Test func requireTLSRelayWithoutVerification() throws {
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .opportunistic,
                                        tls: TLSClientOptions(verification: .none, enforce: false, context: context))
        options.timeouts = SMTPTimeouts(uniform: 10)
        let relay = RelayTransport(host: "relay.example", port: 9, options: options, dialer: LoopbackDialer(port: 9))
        let report = relay.deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.failed])
        #expect(report.results[0].enhanced == "5.7.30" && report.connections.isEmpty)
    }

    /// REQUIRETLS through a relay with required, verified TLS that offers REQUIRETLS: delivered with it.
    @Test func requireTLSRelayVerified() throws {
        let peer = try ScriptedSMTPPeer(listening: secured(["REQUIRETLS"]) + Self.transaction(mail: "MAIL FROM:<a@b.example> REQUIRETLS"))
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .required,
                                        tls: TLSClientOptions(verification: .pkix(hostnames: ["mx.example.org"]), serverName: "mx.example.org",
                                                              context: context))
        options.timeouts = SMTPTimeouts(uniform: 10)
        let relay = RelayTransport(host: "mx.example.org", port: peer.port, options: options, dialer: LoopbackDialer(port: peer.port))
        let report = relay.deliver(try request(requireTLS: true), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
        #expect(report.tlsOutcome == .pkix && report.policy == .noPolicy)
        #expect(peer.finish().failures.isEmpty)
    }

    /// TLS-Required: No: a DANE host without STARTTLS takes the message in plaintext.
    @Test func tlsRequiredNoFallsBack() throws {
        let peer = try ScriptedSMTPPeer(listening: Self.greeting + [.send("250 mx.example.org")] + Self.transaction())
        let report = transport(signedZone(tlsa: [try daneEE()]), port: peer.port).deliver(try request(requireTLS: false), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.policy == .dane && report.tlsOutcome == .plaintext && report.tlsMode == .opportunistic)
        #expect(peer.finish().failures.isEmpty)
    }

    /// TLS-Required: No: a DANE mismatch is recorded, not enforced; the message goes over the unverified TLS.
    @Test func tlsRequiredNoIgnoresMismatch() throws {
        let other = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: Array(repeating: 0x42, count: 32))
        let peer = try ScriptedSMTPPeer(listening: secured([]) + Self.transaction())
        let report = transport(signedZone(tlsa: [other]), port: peer.port).deliver(try request(requireTLS: false), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.tls?.contains("verification failed") == true && report.tlsOutcome == .opportunistic)
        #expect(peer.finish().failures.isEmpty)
    }

    struct FixedPolicy: MTASTSPolicySource {
        let policy: MTASTSPolicy
        func lookup(_ domain: String) -> MTASTSLookup { MTASTSLookup(policy: policy, id: "1", note: "test") }
    }

    /// MTA-STS enforce: a matching MX needs STARTTLS with a PKIX-valid certificate for its name.
    @Test func mtaSTSEnforcePass() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]], a: ["mx.example.org": ["192.0.2.25"]])
        let peer = try ScriptedSMTPPeer(listening: secured([]) + Self.transaction())
        let sts = FixedPolicy(policy: MTASTSPolicy(mode: .enforce, mx: ["mx.example.org"], maxAge: 86400))
        let report = transport(resolver, port: peer.port, mtaSTS: sts).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
        #expect(report.policy == .mtaSTSEnforce && report.tlsOutcome == .pkix)
        #expect(peer.finish().failures.isEmpty)
    }

    /// MTA-STS enforce with an MX that matches no pattern: the host is passed over, the recipient waits.
    @Test func mtaSTSEnforceNonMatchingMX() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]], a: ["mx.example.org": ["192.0.2.25"]])
        let sts = FixedPolicy(policy: MTASTSPolicy(mode: .enforce, mx: ["*.elsewhere.example"], maxAge: 86400))
        let report = transport(resolver, port: 9, mtaSTS: sts).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("matches no mx pattern"))
        #expect(report.connections.isEmpty)
    }

    /// MTA-STS testing: a certificate for another name is recorded, and the message still goes.
    @Test func mtaSTSTestingDelivers() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx2.example.org")]], a: ["mx2.example.org": ["192.0.2.25"]])
        let peer = try ScriptedSMTPPeer(listening: secured([]) + Self.transaction())
        let sts = FixedPolicy(policy: MTASTSPolicy(mode: .testing, mx: ["*.example.org"], maxAge: 86400))
        let report = transport(resolver, port: peer.port, mtaSTS: sts).deliver(try request(), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(report.policy == .mtaSTSTesting && report.tls?.contains("wrong name") == true)
        #expect(peer.finish().failures.isEmpty)
    }

    /// The dual-stack rule: a 5.7.x refusal over IPv6, on the first attempt over that family, is deferred;
    /// once IPv4 has been tried too, the same refusal is final.
    @Test func dualStack() throws {
        let resolver = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                                    a: ["mx.example.org": ["192.0.2.25"]], aaaa: ["mx.example.org": ["2001:db8::25"]])
        let refusal: [ScriptedSMTPPeer.Step] = Self.greeting + [.send("250-mx.example.org\n250 ENHANCEDSTATUSCODES"),
            .expect("MAIL FROM:<a@b.example>"), .send("250 2.1.0 ok"), .expect("RCPT TO:<bob@example.org>"),
            .send("550 5.7.1 no reverse DNS for your IPv6 address"), .expect("QUIT"), .send("221 bye"), .waitForClose]
        let first = try ScriptedSMTPPeer(listening: refusal)
        let report = transport(resolver, port: first.port).deliver(try request(), cancellation: Cancellation())
        #expect(report.ip == "2001:db8::25")
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(report.results[0].text.contains("the next attempt uses IPv4"))
        _ = first.finish()
        // The next attempt prefers IPv4; refused there after IPv6 was tried before, the refusal stands.
        let second = try ScriptedSMTPPeer(listening: refusal)
        let again = transport(resolver, port: second.port).deliver(try request(dialed: ["mx.example.org": ["2001:db8::25"]]), cancellation: Cancellation())
        #expect(again.ip == "192.0.2.25")
        #expect(again.results.map(\.outcome) == [.failed])
        _ = second.finish()
    }
}
