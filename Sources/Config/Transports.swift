import PosternCore
import Foundation

/// One named transport from a `[transports.NAME]` table: how mail routed to it
/// leaves this machine. Plain values; the CLI turns them into the delivery
/// module's transports.
public struct TransportDefinition: Sendable, Equatable {
    /// The table's name, which routes and `postern kick --transport` use.
    public var name: String
    public var kind: TransportKind
    /// `relay`, `submission`, `submissions`: the server to deliver to.
    public var server: RelayAddress?
    /// `relay` only; `submission` is always `required`, `submissions` `implicit`.
    public var tls: TLSMode = .opportunistic
    /// A file with `username` and `password` for SMTP AUTH (RFC 4954); the
    /// secret never sits in the main configuration.
    public var credentials: String?
    /// `relay`, `submission`, `submissions`: a PEM file of CA certificates to
    /// verify the server with instead of the system's (a private CA).
    public var caFile: String?
    /// `direct` and `socks5`: which address families to dial.
    public var family: AddressFamily = .any
    /// `direct`: local addresses to connect from, per family.
    public var bindIPv4: String?
    public var bindIPv6: String?
    /// `socks5`: the proxy every connection goes through.
    public var proxy: RelayAddress?
    /// The name announced in EHLO when it must differ from `hostname` (a
    /// proxy's public name, a provider that checks it).
    public var ehloName: String?
    /// `maildir`: the Maildir directory.
    public var path: String?
    /// `fail`: the SMTP reply every recipient gets.
    public var code: Int = 0
    public var enhanced: String?
    public var text: String = ""

    public init(name: String, kind: TransportKind) {
        self.name = name
        self.kind = kind
    }
}

/// What a transport does.
public enum TransportKind: String, Sendable, Equatable, CaseIterable {
    /// To each recipient domain's MX hosts, as the daemon does by default.
    case direct
    /// SMTP to one server, TLS as configured, AUTH when credentials are given.
    case relay
    /// A provider's submission port: 587, STARTTLS required, AUTH (RFC 6409).
    case submission
    /// Submission over implicit TLS: 465 (RFC 8314 3.3).
    case submissions
    /// Direct delivery with every connection through a SOCKS5 proxy (RFC 1928).
    case socks5
    /// Into a local Maildir.
    case maildir
    /// A fixed refusal, to forbid destinations.
    case fail

    /// The port a kind uses when the table names none.
    var defaultPort: UInt16 {
        switch self {
        case .submission: 587
        case .submissions: 465
        default: 25
        }
    }
}

/// `family` of a direct or socks5 transport.
public enum AddressFamily: String, Sendable, Equatable, CaseIterable {
    case any, ipv4, ipv6
}

/// One `[[routes]]` entry: the route, and where the file wrote it.
public struct RouteDefinition: Sendable, Equatable {
    public var route: Route
    /// The line of its `[[routes]]` header, for `config check`.
    public var line: Int?

    public init(_ route: Route, line: Int? = nil) {
        self.route = route
        self.line = line
    }

    /// Equal routes match the same mail; where they were written does not count.
    public static func == (left: RouteDefinition, right: RouteDefinition) -> Bool {
        left.route == right.route
    }
}

extension Configuration {
    /// Every transport a route or `postern kick --transport` may name: the
    /// built-in `direct`, `relay` when the top-level key sets one, and the tables.
    public var transportNames: [String] {
        ["direct"] + (relay != nil ? ["relay"] : []) + transports.map(\.name)
    }

    /// What delivery uses when no route matches: the top-level relay, else direct.
    public var defaultTransportName: String { relay != nil ? "relay" : "direct" }

    /// Routes that can never be chosen because an earlier one matches all
    /// they match, in words, for `config check` and the daemon's log.
    public func unreachableRoutes() -> [String] {
        var warnings: [String] = []
        for (index, route) in routes.enumerated() {
            guard let earlier = routes[..<index].firstIndex(where: { route.route.isShadowed(by: $0.route) }) else { continue }
            let at = route.line.map { " (line \($0))" } ?? ""
            warnings.append("routes[\(index)]\(at) is unreachable: routes[\(earlier)] before it matches everything it matches")
        }
        return warnings
    }
}

// MARK: - As TOML

extension TransportDefinition {
    /// The table as TOML, keys in a fixed order, parsing back to an equal value.
    var tomlText: String {
        var lines = ["[transports.\(name)]", "kind = \(TOMLText.quoted(kind.rawValue))"]
        func add(_ key: String, _ value: String?) {
            if let value { lines.append("\(key) = \(TOMLText.quoted(value))") }
        }
        switch kind {
        case .direct:
            add("family", family.rawValue)
            add("bind_ipv4", bindIPv4)
            add("bind_ipv6", bindIPv6)
        case .relay, .submission, .submissions:
            add("host", server?.description)
            if kind == .relay { add("tls", tls.rawValue) }
            add("credentials", credentials)
            add("ca_file", caFile)
        case .socks5:
            add("proxy", proxy?.description)
            add("family", family.rawValue)
        case .maildir:
            add("path", path)
        case .fail:
            lines.append("code = \(code)")
            add("enhanced", enhanced)
            add("text", text)
        }
        if kind != .maildir, kind != .fail { add("ehlo_name", ehloName) }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension RouteDefinition {
    var tomlText: String {
        func list(_ patterns: [DomainPattern]) -> String {
            "[" + patterns.map { TOMLText.quoted($0.description) }.joined(separator: ", ") + "]"
        }
        let route = self.route
        var lines = ["[[routes]]"]
        if !route.senderDomains.isEmpty { lines.append("sender_domains = \(list(route.senderDomains))") }
        if !route.recipientDomains.isEmpty { lines.append("recipient_domains = \(list(route.recipientDomains))") }
        if route.minAttempts > 0 { lines.append("min_attempts = \(route.minAttempts)") }
        lines.append("transport = \(TOMLText.quoted(route.transport))")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Configuration {
    /// The example file's explanation of transports and routes, commented out.
    static let routingExample = """

        # Transports: named ways out, one [transports.NAME] table each, of one kind.
        # "direct" is built in (the [direct] table configures it); "relay" too when the
        # top-level relay key is set.
        #
        #   kind = "direct"       MX delivery; keys: family ("any", "ipv4", "ipv6"),
        #                         bind_ipv4, bind_ipv6, ehlo_name
        #   kind = "relay"        SMTP to host ("HOST[:PORT]", port 25); keys: tls ("none",
        #                         "opportunistic", "required", "implicit"), credentials,
        #                         ca_file, ehlo_name
        #   kind = "submission"   a provider's port 587: STARTTLS required and verified, AUTH;
        #                         keys: host, credentials (both required), ca_file, ehlo_name
        #   kind = "submissions"  the same over implicit TLS, port 465
        #   kind = "socks5"       MX delivery through a SOCKS5 proxy (DNS resolved here);
        #                         keys: proxy ("HOST:PORT", required), family, ehlo_name
        #   kind = "maildir"      into a local Maildir; key: path (required)
        #   kind = "fail"         refuse with code (400-599, required), enhanced, text
        #
        # Required TLS is verified (PKIX, the host's name) against the system's CAs, or
        # against the PEM file ca_file names.
        # credentials names a file readable only by the daemon's user (chmod 600):
        #     username = "me@example.net"
        #     password = "secret"
        #
        #[transports.smarthost]
        #kind = "submission"
        #host = "smtp.example.net"
        #credentials = "/etc/postern/smarthost.credentials"
        #
        #[transports.forbidden]
        #kind = "fail"
        #code = 554
        #enhanced = "5.7.1"
        #text = "mail to this domain is not permitted"
        #
        # Routes: the first [[routes]] entry that matches a delivery names its transport;
        # none matching means "relay" when the top-level relay key is set, else "direct".
        # sender_domains and recipient_domains: "example.com" matches that domain,
        # ".example.com" every domain below it; a missing list matches everything (the
        # null sender of bounces matches only a route without sender_domains).
        # min_attempts: how many attempts must have failed before the route applies.
        # `postern kick --transport NAME ID` overrides the routes for one message.
        #
        #[[routes]]
        #recipient_domains = ["example.org", ".example.org"]
        #transport = "forbidden"
        #
        #[[routes]]
        #min_attempts = 3
        #transport = "smarthost"

        """
}
