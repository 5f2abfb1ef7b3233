/// Which mail goes through which transport: one entry of the configuration's
/// `[[routes]]`. The first route that matches a delivery wins (the daemon's
/// `Router`); `config check` uses `isShadowed(by:)` to find routes that can
/// never win.
public struct Route: Sendable, Equatable {
    /// Empty matches every sender, including the null sender of bounces.
    public var senderDomains: [DomainPattern] = []
    /// Empty matches every recipient domain.
    public var recipientDomains: [DomainPattern] = []
    /// Attempts already made before this route applies: a smarthost after
    /// direct delivery failed N times.
    public var minAttempts = 0
    public var transport: String

    public init(transport: String, senderDomains: [DomainPattern] = [], recipientDomains: [DomainPattern] = [],
                minAttempts: Int = 0) {
        self.transport = transport
        self.senderDomains = senderDomains
        self.recipientDomains = recipientDomains
        self.minAttempts = minAttempts
    }

    /// Whether a delivery matches: `senderDomain` is "" for the null sender;
    /// domains are lower-case ASCII (A-labels), as envelopes keep them.
    public func matches(senderDomain: String, recipientDomain: String, attemptsMade: Int) -> Bool {
        attemptsMade >= minAttempts
            && (senderDomains.isEmpty || senderDomains.contains { $0.matches(senderDomain) })
            && (recipientDomains.isEmpty || recipientDomains.contains { $0.matches(recipientDomain) })
    }

    /// Whether every delivery this route matches is matched by `earlier` too,
    /// so that this one can never be chosen.
    public func isShadowed(by earlier: Route) -> Bool {
        func covered(_ mine: [DomainPattern], by theirs: [DomainPattern]) -> Bool {
            if theirs.isEmpty { return true }
            if mine.isEmpty { return false }
            return mine.allSatisfy { pattern in theirs.contains { $0.covers(pattern) } }
        }
        return earlier.minAttempts <= minAttempts
            && covered(senderDomains, by: earlier.senderDomains)
            && covered(recipientDomains, by: earlier.recipientDomains)
    }
}

/// A domain in a route: `example.com` matches that domain only, `.example.com`
/// every domain below it (not example.com itself: list both for both), as in
/// Postfix's tables. Kept lower-case in ASCII (A-labels).
public struct DomainPattern: Sendable, Equatable, CustomStringConvertible {
    public let domain: String
    public let subdomains: Bool

    public init(domain: String, subdomains: Bool) {
        self.domain = domain.lowercased()
        self.subdomains = subdomains
    }

    /// Whether `name` (lower-case ASCII) matches.
    public func matches(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        return subdomains ? name.hasSuffix("." + domain) : name == domain
    }

    /// Whether every name `other` matches is matched by this pattern too.
    public func covers(_ other: DomainPattern) -> Bool {
        if self == other { return true }
        return subdomains && other.domain.hasSuffix("." + domain)
    }

    public var description: String { subdomains ? "." + domain : domain }
}
