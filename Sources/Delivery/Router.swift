import PosternCore

/// Chooses the transport of each delivery: the message's own override
/// (`postern kick --transport`), else the first route that matches, else the
/// default (`direct`, or the top-level `relay`).
///
/// Routes are matched per job, that is per message and recipient domain, so
/// one message to two domains may leave through two transports.
public struct Router: Sendable {
    public var transports: [String: any Transport]
    public var routes: [Route]
    public var defaultTransport: String
    /// The idle SMTP sessions its transports share; closed when the router is
    /// replaced (reload) or the daemon stops.
    public var sessions: SessionCache?
    /// The TLSRPT counts its direct transports keep; written out when the
    /// router is replaced or the daemon stops (`TLSReportCounter.flush`), and
    /// now and then in between (`writeDue`).
    public var reports: TLSReportCounter?

    /// What the router holds beyond its transports, let go: idle sessions
    /// closed, TLSRPT counts written.
    public func finish() {
        sessions?.closeAll()
        reports?.flush()
    }

    public init(transports: [any Transport], routes: [Route] = [], defaultTransport: String) {
        self.transports = Dictionary(transports.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.routes = routes
        self.defaultTransport = defaultTransport
    }

    /// Why no transport can take a delivery: a temporary failure, since the
    /// configuration may be fixed and reloaded while the message waits.
    public struct Unavailable: Error, Sendable {
        public let reason: String
    }

    /// The transport's name for a delivery, before looking it up.
    public func name(sender: String, domain: String, attemptsMade: Int, override: String?) -> String {
        if let override { return override }
        let senderDomain = Self.domain(ofAddress: sender)
        let recipientDomain = Self.ascii(domain)
        let route = routes.first { $0.matches(senderDomain: senderDomain, recipientDomain: recipientDomain, attemptsMade: attemptsMade) }
        return route?.transport ?? defaultTransport
    }

    public func transport(sender: String, domain: String, attemptsMade: Int, override: String?) -> Result<any Transport, Unavailable> {
        let name = name(sender: sender, domain: domain, attemptsMade: attemptsMade, override: override)
        guard let transport = transports[name] else {
            return .failure(Unavailable(reason: "transport \"\(name)\" is not configured"))
        }
        return .success(transport)
    }

    /// The domain of a reverse-path, lower-case ASCII; "" for the null sender.
    static func domain(ofAddress address: String) -> String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return ascii(String(address[address.index(after: at)...]))
    }

    /// Routes hold A-labels; an envelope of an SMTPUTF8 message may hold U-labels.
    static func ascii(_ domain: String) -> String {
        let lower = domain.lowercased()
        guard !lower.allSatisfy(\.isASCII) else { return lower }
        return (try? IDNA.toASCII(lower)) ?? lower
    }
}
