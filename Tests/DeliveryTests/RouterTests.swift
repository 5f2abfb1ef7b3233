import PosternCore
import Testing
@testable import Delivery

/// A transport that only has a name: routing never calls it.
private struct Named: Transport {
    let name: String
    func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport { .all(request.recipients, .deferred, text: "unused") }
}

private func pattern(_ text: String) -> DomainPattern {
    text.hasPrefix(".") ? DomainPattern(domain: String(text.dropFirst()), subdomains: true) : DomainPattern(domain: text, subdomains: false)
}

/// Route matching and the router's choice: first match wins, no match means the default.
struct RouterTests {
    let router = Router(
        transports: ["direct", "forbidden", "lists", "smarthost", "relay"].map(Named.init),
        routes: [
            Route(transport: "forbidden", recipientDomains: [pattern("competitor.example"), pattern(".competitor.example")]),
            Route(transport: "lists", senderDomains: [pattern("lists.example.org")]),
            Route(transport: "smarthost", minAttempts: 3),
        ],
        defaultTransport: "direct")

    func chosen(_ sender: String, _ domain: String, attempts: Int = 0, override: String? = nil) -> String {
        router.name(sender: sender, domain: domain, attemptsMade: attempts, override: override)
    }

    @Test func firstMatchWins() {
        #expect(chosen("a@lists.example.org", "competitor.example") == "forbidden")
        #expect(chosen("a@lists.example.org", "other.example") == "lists")
        #expect(chosen("a@lists.example.org", "other.example", attempts: 5) == "lists")
        #expect(chosen("a@example.org", "other.example") == "direct")
    }

    /// `.domain` matches every subdomain, not the domain itself; a plain entry the domain only.
    @Test func subdomains() {
        #expect(pattern(".example.org").matches("a.example.org"))
        #expect(pattern(".example.org").matches("b.a.example.org"))
        #expect(!pattern(".example.org").matches("example.org"))
        #expect(!pattern(".example.org").matches("badexample.org"))
        #expect(pattern("example.org").matches("example.org"))
        #expect(!pattern("example.org").matches("a.example.org"))
        #expect(chosen("a@b.example", "mx.competitor.example") == "forbidden")
    }

    /// min_attempts counts the attempts already made: the fallback takes over from the fourth.
    @Test func minimumAttempts() {
        #expect(chosen("a@example.org", "x.example", attempts: 2) == "direct")
        #expect(chosen("a@example.org", "x.example", attempts: 3) == "smarthost")
    }

    /// The null sender of a bounce matches only routes without sender domains.
    @Test func nullSender() {
        #expect(chosen("", "other.example") == "direct")
        #expect(chosen("", "competitor.example") == "forbidden")
    }

    /// Case and IDN: envelope domains in U-labels or capitals match routes kept as A-labels.
    @Test func normalisesDomains() {
        let router = Router(transports: [Named(name: "direct"), Named(name: "idn")],
                            routes: [Route(transport: "idn", recipientDomains: [pattern("xn--bcher-kva.example")])],
                            defaultTransport: "direct")
        #expect(router.name(sender: "", domain: "b\u{FC}cher.example", attemptsMade: 0, override: nil) == "idn")
        #expect(router.name(sender: "", domain: "XN--BCHER-KVA.example", attemptsMade: 0, override: nil) == "idn")
    }

    /// `postern kick --transport` wins over routes; an unknown name is a temporary failure, not a crash.
    @Test func overrideAndUnknown() {
        #expect(chosen("a@lists.example.org", "competitor.example", override: "relay") == "relay")
        guard case .failure(let unavailable) = router.transport(sender: "", domain: "x.example", attemptsMade: 0, override: "gone") else {
            Issue.record("an unknown transport must not be found")
            return
        }
        #expect(unavailable.reason == "transport \"gone\" is not configured")
    }

    /// A route is unreachable when an earlier one matches all it matches.
    @Test func shadowing() {
        let broad = Route(transport: "a", recipientDomains: [pattern(".example.org")])
        #expect(Route(transport: "b", recipientDomains: [pattern("x.example.org")]).isShadowed(by: broad))
        #expect(!Route(transport: "b", recipientDomains: [pattern("example.org")]).isShadowed(by: broad))
        #expect(!Route(transport: "b").isShadowed(by: broad))
        #expect(Route(transport: "b", minAttempts: 2).isShadowed(by: Route(transport: "a", minAttempts: 1)))
        #expect(!Route(transport: "b", minAttempts: 1).isShadowed(by: Route(transport: "a", minAttempts: 2)))
    }
}
