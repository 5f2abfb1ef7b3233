import DNS
import Foundation
import PosternCore
import Synchronization
import Testing
@testable import Delivery

/// MTA-STS discovery and its cache (RFC 8461 5.1): the TXT id checked at each use, fetches on a new id
/// or when a refresh is due, the cache honoured until max_age and kept when a refresh fails.
struct MTASTSPoliciesTests {
    /// Serves what the test sets, counts fetches.
    final class FakeFetcher: MTASTSFetcher, @unchecked Sendable {
        let state = Mutex<(body: Result<[UInt8], MTASTSFetchError>, fetches: Int)>((.failure(MTASTSFetchError("unset")), 0))
        func serve(_ text: String) { state.withLock { $0.body = .success(Array(text.utf8)) } }
        func fail(_ why: String) { state.withLock { $0.body = .failure(MTASTSFetchError(why)) } }
        var fetches: Int { state.withLock { $0.fetches } }
        func fetch(_ domain: String) throws(MTASTSFetchError) -> [UInt8] {
            let body = state.withLock { state in
                state.fetches += 1
                return state.body
            }
            return try body.get()
        }
    }

    static let enforce = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.org\r\nmax_age: 86400\r\n"
    static let testing = "version: STSv1\r\nmode: testing\r\nmx: *.example.org\r\nmax_age: 86400\r\n"

    let directory = NSTemporaryDirectory() + "postern-mta-sts-\(UUID().uuidString)"
    let clock = ManualClock()
    let fetcher = FakeFetcher()

    func policies(id: String?, failureHoldOff: Double = 0) -> MTASTSPolicies {
        let txt: [String: [String]] = id.map { ["_mta-sts.example.org": ["v=STSv1; id=\($0);"]] } ?? ["example.org": ["v=spf1 -all"]]
        return MTASTSPolicies(resolver: MockResolver(txt: txt), fetcher: fetcher, cache: MTASTSCache(directory: directory),
                              clock: clock, failureHoldOff: failureHoldOff)
    }

    /// A first lookup fetches and caches; the next with the same id uses the cache, which is a file in the spool.
    @Test func fetchThenCache() throws {
        fetcher.serve(Self.enforce)
        let first = policies(id: "2026a").lookup("example.org")
        #expect(first.policy?.mode == .enforce && first.id == "2026a" && first.note == "fetched")
        let second = policies(id: "2026a").lookup("example.org")
        #expect(second.policy == first.policy && second.note.hasPrefix("cached"))
        #expect(fetcher.fetches == 1)
        let stored = try #require(MTASTSCache(directory: directory).load("example.org"))
        #expect(stored.id == "2026a" && stored.text == Self.enforce && stored.fetched == clock.now.timeIntervalSince1970)
        #expect(!FileManager.default.fileExists(atPath: directory + "/example.org.json.tmp"))
    }

    /// A new TXT id fetches again, and the new policy replaces the cached one.
    @Test func idChange() {
        fetcher.serve(Self.enforce)
        _ = policies(id: "one").lookup("example.org")
        fetcher.serve(Self.testing)
        clock.advance(by: 60)
        let lookup = policies(id: "two").lookup("example.org")
        #expect(lookup.policy?.mode == .testing && lookup.id == "two")
        #expect(fetcher.fetches == 2)
        #expect(MTASTSCache(directory: directory).load("example.org")?.id == "two")
    }

    /// A refresh fails: the cached policy still applies, and the failure is reported for TLSRPT.
    @Test func failedRefreshKeepsCache() {
        fetcher.serve(Self.enforce)
        _ = policies(id: "one").lookup("example.org")
        fetcher.fail("connection refused")
        let lookup = policies(id: "two").lookup("example.org")
        #expect(lookup.policy?.mode == .enforce && lookup.id == "one")
        #expect(lookup.fetchError == "connection refused")
    }

    /// A policy is refreshed ahead of expiry although its id did not change (here half-way through its day).
    @Test func refreshAheadOfExpiry() {
        fetcher.serve(Self.enforce)
        let transport = policies(id: "one")
        _ = transport.lookup("example.org")
        clock.advance(by: 43_199)
        _ = transport.lookup("example.org")
        #expect(fetcher.fetches == 1)
        clock.advance(by: 2)
        _ = transport.lookup("example.org")
        #expect(fetcher.fetches == 2)
    }

    /// Past max_age a cached policy is no longer honoured: with no TXT record and no fetch, no policy.
    @Test func expiry() {
        fetcher.serve(Self.enforce)
        _ = policies(id: "one").lookup("example.org")
        clock.advance(by: 86_399)
        #expect(policies(id: nil).lookup("example.org").policy?.mode == .enforce)
        clock.advance(by: 2)
        #expect(policies(id: nil).lookup("example.org").policy == nil)
        fetcher.fail("down")
        let lookup = policies(id: "one").lookup("example.org")
        #expect(lookup.policy == nil && lookup.fetchError == "down")
    }

    /// An invalid policy counts as a failed fetch and leaves the cache as it was.
    @Test func invalidPolicyIsAFetchFailure() {
        fetcher.serve("version: STSv1\nmode: sometimes\n")
        let lookup = policies(id: "one").lookup("example.org")
        #expect(lookup.policy == nil && lookup.fetchError?.hasPrefix("invalid policy") == true)
        #expect(MTASTSCache(directory: directory).load("example.org") == nil)
    }

    /// After a failed fetch the domain is not fetched again until the hold-off ends.
    @Test func holdOffAfterFailure() {
        fetcher.fail("timeout")
        let transport = policies(id: "one", failureHoldOff: 300)
        _ = transport.lookup("example.org")
        _ = transport.lookup("example.org")
        #expect(fetcher.fetches == 1)
        clock.advance(by: 301)
        _ = transport.lookup("example.org")
        #expect(fetcher.fetches == 2)
    }

    /// A hold-off is forgotten once it is over: the daemon does not keep one for each domain whose
    /// fetch ever failed.
    @Test func holdOffsThatAreOverAreForgotten() {
        fetcher.fail("timeout")
        let txt = Dictionary(uniqueKeysWithValues: ["a.example", "b.example", "c.example"].map { ("_mta-sts." + $0, ["v=STSv1; id=one;"]) })
        let transport = MTASTSPolicies(resolver: MockResolver(txt: txt), fetcher: fetcher, cache: MTASTSCache(directory: directory),
                                       clock: clock, failureHoldOff: 300)
        _ = transport.lookup("a.example")
        _ = transport.lookup("b.example")
        #expect(transport.heldOffCount == 2)
        clock.advance(by: 301)
        _ = transport.lookup("c.example")
        #expect(transport.heldOffCount == 1)
        #expect(fetcher.fetches == 3)
    }

    /// Mode none withdraws the policy (RFC 8461 8.3): it is cached, and no policy applies.
    @Test func modeNone() {
        fetcher.serve("version: STSv1\nmode: none\nmax_age: 86400\n")
        let lookup = policies(id: "bye").lookup("example.org")
        #expect(lookup.policy == nil && lookup.note.hasPrefix("mode none"))
    }

    /// The TXT record: exactly one v=STSv1 record with an id of 1 to 32 letters and digits.
    @Test(arguments: [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z"),
        (["v=STSv1;id=abc"], "abc"),
        (["v=spf1 -all", "v=STSv1; id=x1;"], "x1"),
        (["v=STSv1; id=a;", "v=STSv1; id=b;"], nil),
        (["v=STSv1; id=not-alnum;"], nil),
        (["v=STSv1;"], nil),
        (["v=STSv1; id=\(String(repeating: "a", count: 33))"], nil),
    ] as [([String], String?)])
    func txtRecords(records: [String], id: String?) {
        let result = MTASTSPolicies.parseTXT(records)
        if let id { #expect(result == .id(id)) } else { #expect(result != .id("a") && { if case .absent = result { true } else { false } }()) }
    }

    /// The cache refuses names that could make a path.
    @Test func cachePaths() {
        let cache = MTASTSCache(directory: "/spool/mta-sts")
        #expect(cache.path("example.org") == "/spool/mta-sts/example.org.json")
        #expect(cache.path("../etc") == nil)
        #expect(cache.path("a/b") == nil)
        #expect(cache.path("") == nil)
        #expect(cache.path(".hidden") == nil)
    }
}
