import Foundation
import PosternCore
import PosternTesting
import Testing

/// postern tls-policy and postern tlsrpt: what direct delivery would do about TLS for a domain, and the
/// TLSRPT counts as RFC 8460 reports.
struct TLSPolicyCommandTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func run(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(arguments + ["--spool", spool.layout.root])
    }

    /// A signed domain with a usable TLSA record: DANE, STARTTLS required and verified; an unsigned one
    /// whose MTA-STS policy cannot be fetched: opportunistic, with the fetch error shown; --require-tls.
    @Test func showsThePolicy() throws {
        let digest = [UInt8](repeating: 0xAB, count: 32)
        let dns = try FakeDNSServer(zone: .init(records: [
            "signed.example": [.mx(10, "mx.signed.example")], "mx.signed.example": [.a("192.0.2.1")],
            "_25._tcp.mx.signed.example": [.tlsa(3, 1, 1, digest)],
            "plain.example": [.mx(10, "mx.plain.example")], "mx.plain.example": [.a("192.0.2.2")],
            "_mta-sts.plain.example": [.txt(["v=STSv1; id=20261204;"])],
        ], authentic: ["signed.example", "mx.signed.example", "_25._tcp.mx.signed.example", "_mta-sts.signed.example"]))
        defer { dns.stop() }
        let options = ["-o", "dns.nameserver=127.0.0.1:\(dns.port)", "-o", "relay=", "-o", "mta_sts.timeout=2s"]
        let signed = try run(["tls-policy"] + options + ["signed.example"])
        #expect(signed.status == 0, "\(signed.stderr)")
        #expect(signed.stdout.contains("MX mx.signed.example (DNSSEC-authentic)"), "\(signed.stdout)")
        #expect(signed.stdout.contains("DANE: 1 usable TLSA record(s) (3 1 1 abab"))
        #expect(signed.stdout.contains("-> policy dane: STARTTLS required, dane verification enforced"))

        let plain = try run(["tls-policy"] + options + ["plain.example"])
        #expect(plain.stdout.contains("(not DNSSEC-authentic)"), "\(plain.stdout)")
        #expect(plain.stdout.contains("MTA-STS fetch error: mta-sts.plain.example"))
        #expect(plain.stdout.contains("-> policy none: STARTTLS if offered, unverified"))
        // Nothing was cached by a command that only looks.
        #expect(!FileManager.default.fileExists(atPath: spool.layout.root + "/mta-sts"))

        let required = try run(["tls-policy", "--require-tls"] + options + ["plain.example"])
        #expect(required.stdout.contains("-> not used: REQUIRETLS (RFC 8689): mx.plain.example is not protected"), "\(required.stdout)")
    }

    /// The counts of a day, as spool-layout.md 11 describes them, print as an RFC 8460 report.
    @Test func printsReports() throws {
        let day = spool.layout.root + "/tlsrpt/2026-12-04"
        try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
        let counts = """
            {"day": "2026-12-04", "domain": "example.org", "policies": {"sts": {"successful": 5, "failed": 1,
             "mx_hosts": ["mx.example.org"], "failures": [{"result_type": "certificate-expired", "host": "mx.example.org",
             "ip": "192.0.2.1", "count": 1}]}}}
            """
        try Data(counts.utf8).write(to: URL(fileURLWithPath: day + "/example.org.json"))
        let result = try run(["tlsrpt", "-o", "hostname=out.example.net"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["organization-name"] as? String == "out.example.net")
        #expect((report["date-range"] as? [String: String])?["start-datetime"] == "2026-12-04T00:00:00Z")
        let policy = try #require((report["policies"] as? [[String: Any]])?.first)
        #expect((policy["policy"] as? [String: Any])?["policy-type"] as? String == "sts")
        #expect((policy["summary"] as? [String: Int])?["total-successful-session-count"] == 5)
        let failure = try #require((policy["failure-details"] as? [[String: Any]])?.first)
        #expect(failure["result-type"] as? String == "certificate-expired" && failure["failed-session-count"] as? Int == 1)
        #expect(try run(["tlsrpt", "--day", "2026-12-05"]).stdout.isEmpty)
    }
}
