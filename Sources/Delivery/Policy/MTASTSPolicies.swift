import DNS
import Foundation
import PosternCore
import Synchronization

/// What MTA-STS says for a recipient domain.
public struct MTASTSLookup: Sendable, Equatable {
    /// The policy to apply; nil when none applies (no TXT record, mode none,
    /// nothing fetched and nothing cached).
    public var policy: MTASTSPolicy?
    /// The TXT id of the policy applied.
    public var id: String?
    /// In words, for `postern tls-policy` and debug logs: where the policy came from, or why there is none.
    public var note: String
    /// A failed fetch, even when a cached policy was used instead: TLSRPT's
    /// `sts-policy-fetch-error` (RFC 8460 4.3.2.1).
    public var fetchError: String?

    public init(policy: MTASTSPolicy?, id: String? = nil, note: String, fetchError: String? = nil) {
        self.policy = policy
        self.id = id
        self.note = note
        self.fetchError = fetchError
    }
}

/// Where direct delivery asks for a domain's MTA-STS policy.
public protocol MTASTSPolicySource: Sendable {
    func lookup(_ domain: String) -> MTASTSLookup
}

/// MTA-STS discovery as RFC 8461 5.1 describes it: the `_mta-sts` TXT id
/// checked at each use, the policy fetched when the id is new or a refresh is
/// due, cached in the spool until `max_age`, and a cached policy kept when a
/// refresh fails (an attacker who blocks the fetch gains nothing).
///
/// Blocking (DNS, HTTPS): called on delivery threads only.
public final class MTASTSPolicies: MTASTSPolicySource {
    public let resolver: any Resolver
    public let fetcher: any MTASTSFetcher
    public let cache: MTASTSCache?
    public let clock: any WallClock
    /// After a failed fetch, the domain's policy is not fetched again for this
    /// long: each message would otherwise wait out the fetch's timeout.
    public let failureHoldOff: Double
    /// Whether fetched policies go into the cache (false for tools that only look).
    public let storesFetched: Bool
    private let failedUntil = Mutex<[String: Double]>([:])

    /// Domains held off now or not yet forgotten (tests).
    var heldOffCount: Int { failedUntil.withLock { $0.count } }

    public init(resolver: any Resolver, fetcher: any MTASTSFetcher, cache: MTASTSCache?, clock: any WallClock = SystemClock(),
                failureHoldOff: Double = 300, storesFetched: Bool = true) {
        self.storesFetched = storesFetched
        self.resolver = resolver
        self.fetcher = fetcher
        self.cache = cache
        self.clock = clock
        self.failureHoldOff = failureHoldOff
    }

    /// The id of a domain's `_mta-sts` TXT record (RFC 8461 3.1): nil without
    /// exactly one record starting `v=STSv1;` with a valid id.
    enum TXTResult: Equatable {
        case id(String)
        case absent(String)
        case failed(String)
    }

    static func parseTXT(_ records: [String]) -> TXTResult {
        let candidates = records.filter { $0.hasPrefix("v=STSv1;") || $0 == "v=STSv1" }
        guard candidates.count == 1 else {
            return .absent(candidates.isEmpty ? "no v=STSv1 TXT record" : "\(candidates.count) v=STSv1 TXT records")
        }
        var id: String?
        for field in candidates[0].split(separator: ";").dropFirst() {
            let pair = field.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            if pair[0] == "id" {
                let value = String(pair[1])
                // RFC 8461 3.1: sts-id = 1*32(ALPHA / DIGIT).
                guard (1...32).contains(value.utf8.count), value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                    return .absent("the TXT record's id is not 1 to 32 letters and digits")
                }
                id = value
            }
        }
        return id.map(TXTResult.id) ?? .absent("the TXT record has no id")
    }

    public func lookup(_ domain: String) -> MTASTSLookup {
        let now = clock.now.timeIntervalSince1970
        let cached = cache?.load(domain).flatMap { $0.expires > now ? $0 : nil }
        let txt: TXTResult
        do {
            txt = Self.parseTXT(try resolver.txt("_mta-sts." + domain).records)
        } catch {
            txt = error.isTemporary ? .failed("\(error)") : .absent("no _mta-sts TXT record")
        }
        switch txt {
        case .absent(let why), .failed(let why):
            // RFC 8461 5.1: without a usable TXT record a cached, unexpired policy still applies.
            if let cached { return applied(cached, note: "cached (\(why)); expires \(Timestamp.format(epochSeconds: cached.expires))") }
            return MTASTSLookup(policy: nil, note: why)
        case .id(let id):
            if let cached, cached.id == id, now < cached.refreshDue {
                return applied(cached, note: "cached; expires \(Timestamp.format(epochSeconds: cached.expires))")
            }
            if let until = failedUntil.withLock({ $0[domain] }), now < until {
                if let cached { return applied(cached, note: "cached; the last refresh failed") }
                // No fetch now, so no fetch error to count or log: that failure was counted when it happened.
                return MTASTSLookup(policy: nil, id: id, note: "the last fetch failed; retried after \(Timestamp.format(epochSeconds: until))")
            }
            do throws(MTASTSFetchError) {
                let body = try fetcher.fetch(domain)
                let policy: MTASTSPolicy
                do { policy = try MTASTSPolicy.parse(body) } catch { throw MTASTSFetchError("invalid policy: \(error.description)") }
                let entry = CachedMTASTSPolicy(domain: domain, id: id, fetched: now, text: String(decoding: body, as: UTF8.self), policy: policy)
                _ = failedUntil.withLock { $0.removeValue(forKey: domain) }
                guard storesFetched else { return applied(entry, note: "fetched (not stored)") }
                do { try cache?.store(entry) } catch {
                    // Not stored: it applies now all the same, and is fetched again next time.
                    return applied(entry, note: "fetched (not cached: \(error))")
                }
                return applied(entry, note: "fetched")
            } catch {
                failedUntil.withLock { failed in
                    // Hold-offs that are over go: over months of direct delivery, every domain whose fetch failed once would stay.
                    failed = failed.filter { $0.value > now }
                    failed[domain] = now + failureHoldOff
                }
                if let cached {
                    var lookup = applied(cached, note: "cached; the refresh failed: \(error)")
                    lookup.fetchError = error.description
                    return lookup
                }
                return MTASTSLookup(policy: nil, id: id, note: "the policy fetch failed: \(error)", fetchError: error.description)
            }
        }
    }

    private func applied(_ entry: CachedMTASTSPolicy, note: String) -> MTASTSLookup {
        MTASTSLookup(policy: entry.policy.mode == .none ? nil : entry.policy, id: entry.id,
                     note: entry.policy.mode == .none ? "mode none (\(note))" : note)
    }
}
