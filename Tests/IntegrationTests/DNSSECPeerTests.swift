import DNS
import Foundation
import PosternCore
import PosternTesting
import Testing

/// The project's `SystemResolver` against a real validating unbound in front of
/// NSD serving signed zones (tools/dnssec-peer.sh): the AD bit, bogus answers and
/// authenticated denials that DANE (RFC 7672 2.1, 2.2) decides on come from real
/// DNSSEC validation.
@Suite(.serialized)
struct DNSSECPeerTests {
    let dns: DNSSECPeer
    let resolver: SystemResolver
    let certificate: TestCertificate

    init() throws {
        try #require(DNSSECPeer.isAvailable, "NSD, ldnsutils and unbound are needed (tools/test.sh installs them)")
        certificate = try TestCertificate.selfSigned(commonName: "mx.secure.test", dnsNames: ["mx.secure.test"])
        let tlsa = try certificate.tlsa(usage: 3, selector: 1, matchingType: 1)
        dns = try DNSSECPeer(zone: [
            // In the signed root (NSEC).
            "secure.test. MX 10 mx.secure.test.",
            "secure.test. TXT \"v=spf1 -all\"",
            "mx.secure.test. A 127.0.0.2",
            "mx.secure.test. AAAA ::1",
            "alias.secure.test. CNAME mx.secure.test.",
            "_25._tcp.mx.secure.test. TLSA \(tlsa)",
            // A signed child with NSEC3.
            "zone: nsec3.test. nsec3",
            "nsec3.test. MX 10 mx.nsec3.test.",
            "mx.nsec3.test. A 127.0.0.3",
            "_25._tcp.mx.nsec3.test. TLSA \(tlsa)",
            // Unsigned: insecure.
            "zone: insecure.test. unsigned",
            "insecure.test. MX 10 mx.insecure.test.",
            "mx.insecure.test. A 127.0.0.4",
            // Bogus: a DS for another key, expired signatures, and one bogus TLSA record under a secure host.
            "zone: wrongds.test. wrong-ds",
            "wrongds.test. MX 10 mx.wrongds.test.",
            "zone: expired.test. expired",
            "expired.test. MX 10 mx.expired.test.",
            "mx.badtlsa.test. A 127.0.0.5",
            "zone: _25._tcp.mx.badtlsa.test. wrong-ds",
            "_25._tcp.mx.badtlsa.test. TLSA \(tlsa)",
        ])
        resolver = SystemResolver(nameserver: (dns.host, dns.port), timeout: 5, attempts: 1)
    }

    /// Answers from the signed zones carry AD: MX, A, AAAA, TXT, TLSA, and an A reached through a CNAME.
    @Test func secureAnswersAreAuthentic() throws {
        let mx = try resolver.mx("secure.test")
        #expect(mx.authentic && mx.records == [MXRecord(preference: 10, host: "mx.secure.test")])
        let a = try resolver.a("mx.secure.test")
        #expect(a.authentic && a.records == ["127.0.0.2"])
        let aaaa = try resolver.aaaa("mx.secure.test")
        #expect(aaaa.authentic && aaaa.records == ["::1"])
        let txt = try resolver.txt("secure.test")
        #expect(txt.authentic && txt.records == ["v=spf1 -all"])
        let alias = try resolver.a("alias.secure.test")
        #expect(alias.authentic && alias.records == ["127.0.0.2"])
        let expected = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: try certificate.associationData(selector: 1, matchingType: 1))
        for host in ["mx.secure.test", "mx.nsec3.test"] {
            let tlsa = try resolver.tlsa("_25._tcp.\(host)")
            #expect(tlsa.authentic && tlsa.records == [expected], "\(host)")
        }
        #expect(try resolver.mx("nsec3.test").authentic)
        // The same answer from a resolver whose AD is not trusted is not authentic.
        #expect(try !SystemResolver(nameserver: (dns.host, dns.port), trustAD: false).mx("secure.test").authentic)
    }

    /// A missing TLSA name (NXDOMAIN) and a name without TLSA (NODATA) are denied with NSEC and NSEC3 proofs: authentic.
    @Test func deniesAuthentically() throws {
        for zone in ["secure.test", "nsec3.test"] {
            #expect(throws: DNSError.nxdomain(name: "_25._tcp.nohost.\(zone)", authentic: true)) {
                try resolver.tlsa("_25._tcp.nohost.\(zone)")
            }
            #expect(throws: DNSError.noData(name: "mx.\(zone)", authentic: true)) { try resolver.tlsa("mx.\(zone)") }
            #expect(throws: DNSError.noData(name: "mx.\(zone)", authentic: true)) { try resolver.txt("mx.\(zone)") }
        }
        #expect(throws: DNSError.nxdomain(name: "nosuchdomain.test", authentic: true)) { try resolver.mx("nosuchdomain.test") }
    }

    /// The unsigned zone's answers and denials come without AD: insecure, not bogus.
    @Test func insecureZoneIsNotAuthentic() throws {
        let mx = try resolver.mx("insecure.test")
        #expect(!mx.authentic && mx.records == [MXRecord(preference: 10, host: "mx.insecure.test")])
        let a = try resolver.a("mx.insecure.test")
        #expect(!a.authentic && a.records == ["127.0.0.4"])
        #expect(throws: DNSError.nxdomain(name: "_25._tcp.mx.insecure.test", authentic: false)) {
            try resolver.tlsa("_25._tcp.mx.insecure.test")
        }
    }

    /// A wrong DS, expired signatures and a bogus TLSA record under a secure host are SERVFAIL, and the log says why.
    @Test func bogusIsServerFailure() throws {
        #expect(throws: DNSError.serverFailure(name: "wrongds.test")) { try resolver.mx("wrongds.test") }
        #expect(throws: DNSError.serverFailure(name: "expired.test")) { try resolver.mx("expired.test") }
        #expect(throws: DNSError.serverFailure(name: "_25._tcp.mx.badtlsa.test")) { try resolver.tlsa("_25._tcp.mx.badtlsa.test") }
        #expect(try resolver.a("mx.badtlsa.test").authentic)
        let log = dns.log
        #expect(log.contains("validation failure <wrongds.test. MX IN>"))
        #expect(log.contains("validation failure <expired.test. MX IN>: signature expired"))
        #expect(log.contains("validation failure <_25._tcp.mx.badtlsa.test. TLSA IN>"))
        #expect(dns.trustAnchor.hasPrefix(".\t") && dns.trustAnchor.contains("\tDS\t"))
    }
}
