import DNS
import Foundation
import PosternCore
import SMTP
import TLS

/// Delivery to each recipient domain's own servers, as mox's `deliverDirect`
/// does: MX lookup (RFC 5321 5.1), hosts in preference order, each host's
/// addresses, opportunistic STARTTLS.
///
/// With a `SOCKS5Dialer` it is the `socks5` transport: the same MX logic, DNS
/// resolved here, every connection through the proxy.
public struct DirectTransport: Transport {
    /// Which address families to dial.
    public enum Family: Sendable {
        case any, ipv4, ipv6
    }

    public let name: String
    public let resolver: any Resolver
    public let dialer: any Dialer
    public let options: SMTPClientOptions
    /// Port 25, overridable for tests (`direct.port`).
    public let port: UInt16
    public let family: Family
    public let limits: ConnectLimits
    /// Idle sessions kept for the next message to the same server; nil: none.
    public let sessions: SessionCache?
    static let cnameLimit = 10

    public init(name: String = "direct", resolver: any Resolver, options: SMTPClientOptions, dialer: any Dialer = TCPDialer(),
                port: UInt16 = 25, family: Family = .any, limits: ConnectLimits = ConnectLimits(), sessions: SessionCache? = nil) {
        self.sessions = sessions
        self.name = name
        self.resolver = resolver
        self.options = options
        self.dialer = dialer
        self.port = port
        self.family = family
        self.limits = limits
    }

    /// Where to deliver for a domain: hosts in order, or a verdict for all recipients.
    enum Destinations: Equatable {
        case hosts([String])
        /// An IP literal recipient (`user@[192.0.2.1]`): that address, no DNS.
        case address(String)
        case permanent(String)
        case temporary(String)
    }

    public func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport {
        SMTPSession.timed(request) { source in attempt(request, source: source, cancellation: cancellation) }
    }

    private func attempt(_ request: DeliveryRequest, source: FileMessageSource, cancellation: Cancellation) -> AttemptReport {
        let budget = Deadline.after(limits.perAttempt)
        switch destinations(for: request.domain) {
        case .permanent(let reason):
            return .all(request.recipients, .failed, text: reason)
        case .temporary(let reason):
            return .all(request.recipients, .deferred, text: reason)
        case .address(let ip):
            guard allows(ip) else { return .all(request.recipients, .deferred, text: "[\(ip)] is of an address family this transport does not use") }
            return SMTPSession.tryAddresses(request, host: "[\(ip)]", ips: [ip], port: port, options: options, dialer: dialer,
                                            connectTimeout: limits.perAddress, budget: budget, source: source, cancellation: cancellation,
                                            sessions: sessions, transport: name)
        case .hosts(let hosts):
            return tryHosts(hosts, request, budget: budget, source: source, cancellation: cancellation)
        }
    }

    /// Tries each host until every recipient has a final answer: a temporary
    /// failure moves the still-pending recipients on to the next host.
    private func tryHosts(_ hosts: [String], _ request: DeliveryRequest, budget: Deadline, source: FileMessageSource,
                          cancellation: Cancellation) -> AttemptReport {
        var final: [AttemptReport.Result] = []
        var pending = request.recipients
        var last = AttemptReport.all(pending, .deferred, text: "no MX host could be reached")
        var dialed: [String: [String]] = [:]
        var connections: [AttemptReport.Connection] = []
        for host in hosts where !pending.isEmpty && !cancellation.isCancelled {
            let ips = Self.order(addresses(of: host), dialed: request.dialedIPs[host] ?? [])
            guard !ips.isEmpty else {
                last = .all(pending, .deferred, text: "MX host \(host) has no usable address", host: host)
                continue
            }
            var subset = request
            subset.recipients = pending
            last = SMTPSession.tryAddresses(subset, host: host, ips: ips, port: port, options: options, dialer: dialer,
                                            connectTimeout: limits.perAddress, budget: budget, source: source, cancellation: cancellation,
                                            sessions: sessions, transport: name)
            dialed.merge(last.dialed) { $0 + $1 }
            connections += last.connections
            final += last.results.filter { $0.outcome != .deferred }
            pending = last.results.filter { $0.outcome == .deferred }.map(\.recipient)
        }
        var report = last
        report.results = final + last.results.filter { $0.outcome == .deferred && pending.contains($0.recipient) }
        report.dialed = dialed
        report.connections = connections
        return report
    }

    /// The MX hosts of a domain, following CNAMEs (bounded, loops refused),
    /// ordered by preference with a random order among equals (RFC 5321 5.1).
    func destinations(for domain: String) -> Destinations {
        if domain.hasPrefix("[") && domain.hasSuffix("]") {
            let literal = domain.dropFirst().dropLast()
            // Recipient domains are lower-cased, so the tag may read "ipv6:".
            return .address(literal.lowercased().hasPrefix("ipv6:") ? String(literal.dropFirst(5)) : String(literal))
        }
        var name = domain
        var seen: Set<String> = [name]
        while true {
            do {
                guard let target = try resolver.cname(name).records.first else { break }
                guard seen.insert(target).inserted else { return .temporary("CNAME loop at \(name)") }
                guard seen.count <= Self.cnameLimit + 1 else { return .temporary("more than \(Self.cnameLimit) CNAMEs from \(domain)") }
                name = target
            } catch {
                if error.isTemporary { return .temporary("looking up \(name): \(error)") }
                break   // no CNAME here (no data, or the name does not exist: the MX lookup says which)
            }
        }
        do {
            let records = try resolver.mx(name).records
            // RFC 7505 3: a single MX of "." means the domain accepts no mail.
            if records.count == 1, records[0].host.isEmpty {
                return .permanent("\(domain) accepts no mail (null MX, RFC 7505)")
            }
            let usable = records.filter { !$0.host.isEmpty }
            guard !usable.isEmpty else { return .hosts([name]) }
            let grouped = Dictionary(grouping: usable, by: \.preference)
            return .hosts(grouped.keys.sorted().flatMap { grouped[$0]!.map(\.host).shuffled() })
        } catch {
            switch error {
            // A deliberate difference from mox, which retries NXDOMAIN for hours: Postfix bounces it too.
            case .nxdomain: return .permanent("\(domain) does not exist (NXDOMAIN)")
            // RFC 5321 5.1: no MX records means the domain itself is the host (implicit MX).
            case .noData: return .hosts([name])
            default: return .temporary("looking up the MX of \(name): \(error)")
            }
        }
    }

    /// mox's dialed-IPs memory: after an attempt, prefer the address family not
    /// used last (so a broken IPv6 route does not block every attempt), and
    /// within a family reuse the address dialed before, since greylisting
    /// servers remember the client's address.
    static func order(_ ips: [String], dialed: [String]) -> [String] {
        guard let last = dialed.last else { return ips }
        func isV6(_ ip: String) -> Bool { ip.contains(":") }
        var preferred = ips.filter { isV6($0) != isV6(last) }
        var others = ips.filter { isV6($0) == isV6(last) }
        if preferred.isEmpty { (preferred, others) = (others, []) }
        if let reuse = dialed.last(where: { preferred.contains($0) }) {
            preferred.removeAll { $0 == reuse }
            preferred.insert(reuse, at: 0)
        }
        return preferred + others
    }

    /// A host's IPv6 and IPv4 addresses, of the families this transport
    /// uses; a failed lookup of one family leaves the other.
    func addresses(of host: String) -> [String] {
        // A missing family is not an error: the other may serve.
        let v6 = family == .ipv4 ? [] : (try? resolver.aaaa(host).records) ?? []
        let v4 = family == .ipv6 ? [] : (try? resolver.a(host).records) ?? []
        return v6 + v4
    }

    func allows(_ ip: String) -> Bool {
        switch family {
        case .any: true
        case .ipv4: !ip.contains(":")
        case .ipv6: ip.contains(":")
        }
    }
}
