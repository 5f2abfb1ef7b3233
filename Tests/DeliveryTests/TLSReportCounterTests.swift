import Foundation
import PosternCore
import SpoolDrop
import Testing
import TLS
@testable import Delivery

/// TLSRPT results (RFC 8460): counted per policy domain and UTC day in the spool, printed as the RFC's report.
struct TLSReportCounterTests {
    let directory = NSTemporaryDirectory() + "postern-tlsrpt-\(UUID().uuidString)"
    // 2025-11-29T03:17:34Z.
    let clock = ManualClock(Date(timeIntervalSince1970: 1_764_386_254))

    /// One successful MTA-STS session of example.org, and how many of them
    /// its file of 2025-11-29 holds.
    static let stsSuccess = TLSReportCounter.Event(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org")
    func stored() -> Int? { TLSReportDay.load(directory + "/2025-11-29/example.org.json")?.policies["sts"]?.successful }

    /// Successes and failures add up per policy type and failure; another day is another file.
    @Test func countsPerDomainAndDay() throws {
        let counter = TLSReportCounter(directory: directory, clock: clock)
        counter.count(.init(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org", ip: "192.0.2.1"))
        counter.count(.init(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org", ip: "192.0.2.1"))
        counter.count(.init(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org", ip: "192.0.2.1", failure: .certificateExpired))
        counter.count(.init(domain: "example.org", policy: .dane, host: "mx2.example.org", ip: "192.0.2.2",
                            failure: .validationFailure("DANE mismatch")))
        clock.advance(by: 86_400)
        counter.count(.init(domain: "example.org", policy: .noPolicy, host: "mx.example.org"))
        #expect(FileManager.default.fileExists(atPath: directory + "/2025-11-29/example.org.json"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/2025-11-29/example.org.json.tmp"))
        let days = counter.days()
        #expect(days.map(\.day) == ["2025-11-29", "2025-11-30"])
        let first = days[0]
        #expect(first.policies["sts"]?.successful == 2 && first.policies["sts"]?.failed == 1)
        #expect(first.policies["tlsa"]?.failed == 1)
        #expect(counter.days("2025-11-30").map { $0.policies["no-policy-found"]?.successful } == [1])
    }

    /// Counts are written behind: the first at once, the next ones once the
    /// write interval is over or at `flush` (the daemon's stop), never lost
    /// in between; a day that is over has its last counts written when the
    /// next day's first comes.
    @Test func countsAreWrittenBehind() throws {
        let counter = TLSReportCounter(directory: directory, clock: clock, writeInterval: 10)
        let event = Self.stsSuccess
        counter.count(event)
        #expect(stored() == 1)
        counter.count(event)
        counter.count(event)
        #expect(stored() == 1, "written again within the interval")
        clock.advance(by: 10)
        counter.count(event)
        #expect(stored() == 4)
        counter.count(event)
        counter.flush()
        #expect(stored() == 5)
        counter.count(event)
        clock.advance(by: 86_400)
        counter.count(.init(domain: "example.org", policy: .dane, host: "mx.example.org"))
        #expect(stored() == 6, "the day that is over was not written out")
        // A new counter (a restarted daemon) goes on from the file.
        let restarted = TLSReportCounter(directory: directory, clock: clock)
        clock.advance(by: -86_400)
        restarted.count(event)
        #expect(stored() == 7)
    }

    /// A count that waits with no count after it is written by `writeDue`
    /// (the daemon's periodic call) once its interval is over, not before.
    @Test func waitingCountsAreWrittenWhenDue() throws {
        let counter = TLSReportCounter(directory: directory, clock: clock, writeInterval: 10)
        let event = Self.stsSuccess
        counter.count(event)
        counter.count(event)
        #expect(stored() == 1)
        clock.advance(by: 5)
        counter.writeDue()
        #expect(stored() == 1, "written before its interval was over")
        clock.advance(by: 5)
        counter.writeDue()
        #expect(stored() == 2, "the waiting count was not written")
        counter.writeDue()
        #expect(stored() == 2)
    }

    /// The report has the RFC 8460 4.4 fields: date range, policies with type, domain, summary and failure details.
    @Test func rfcReport() throws {
        let counter = TLSReportCounter(directory: directory, clock: clock)
        counter.count(.init(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org", ip: "192.0.2.1"))
        counter.count(.init(domain: "example.org", policy: .mtaSTSEnforce, host: "mx.example.org", ip: "192.0.2.1",
                            failure: .starttlsNotSupported))
        let report = try #require(counter.days().first).report(organization: "out.example.net", contact: "postmaster@out.example.net")
        let expected: JSONValue = .object([
            "organization-name": .string("out.example.net"),
            "date-range": .object(["start-datetime": .string("2025-11-29T00:00:00Z"), "end-datetime": .string("2025-11-29T23:59:59Z")]),
            "contact-info": .string("postmaster@out.example.net"),
            "report-id": .string("2025-11-29_example.org@out.example.net"),
            "policies": .array([.object([
                "policy": .object(["policy-type": .string("sts"), "policy-domain": .string("example.org"),
                                   "mx-host": .array([.string("mx.example.org")])]),
                "summary": .object(["total-successful-session-count": .integer(1), "total-failure-session-count": .integer(1)]),
                "failure-details": .array([.object(["result-type": .string("starttls-not-supported"),
                                                    "receiving-mx-hostname": .string("mx.example.org"),
                                                    "receiving-ip": .string("192.0.2.1"), "failed-session-count": .integer(1)])]),
            ])]),
        ])
        #expect(report == expected)
    }

    /// Which session results are failures, and of which RFC 8460 type.
    @Test func sessionResults() {
        func event(_ outcome: TLSOutcome?, _ plan: TLSPlan, tls: String? = nil,
                   _ reason: VerificationFailure.Reason? = nil) -> TLSReportCounter.Failure?? {
            var report = AttemptReport.all(["bob@example.org"], .deferred, text: tls ?? "")
            report.tlsOutcome = outcome
            report.tls = tls
            report.verificationFailure = reason.map { VerificationFailure(reason: $0, code: 0, detail: "") }
            return TLSReportCounter.result(of: report, domain: "example.org", host: "mx", plan: plan).map(\.failure)
        }
        let enforce = TLSPlan(policy: .mtaSTSEnforce, mode: .required, verification: .pkix(hostnames: ["mx"]), enforce: true)
        let dane = TLSPlan(policy: .dane, mode: .required, verification: .dane(records: [], hostnames: ["mx"]), enforce: true)
        #expect(event(nil, enforce) == nil)
        #expect(event(.pkix, enforce) == .some(nil))
        #expect(event(.dane, dane) == .some(nil))
        #expect(event(.plaintext, .opportunistic) == nil)
        #expect(event(.opportunistic, TLSPlan(policy: .dane, mode: .required)) == .some(nil))
        #expect(event(.plaintext, enforce) == .some(.starttlsNotSupported))
        #expect(event(.failed, enforce, tls: "STARTTLS: TLS certificate verification failed: expired (certificate has expired)", .expired) == .some(.certificateExpired))
        #expect(event(.failed, enforce, tls: "STARTTLS: TLS certificate verification failed: wrong name (...)", .wrongName) == .some(.certificateHostMismatch))
        #expect(event(.failed, dane, tls: "DANE mismatch") == .some(.validationFailure("DANE mismatch")))
        // Classified by the TLS layer's reason, not by words in the text.
        #expect(event(.failed, enforce, tls: "expired handshake", .other) == .some(.validationFailure("expired handshake")))
        #expect(event(.opportunistic, TLSPlan(policy: .mtaSTSTesting, mode: .opportunistic, verification: .pkix(hostnames: ["mx"])),
                      tls: "TLSv1.3 X verification failed: untrusted (self-signed)", .untrusted) == .some(.certificateNotTrusted))
    }
}
