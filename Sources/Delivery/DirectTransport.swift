import DNS
import Foundation
import PosternCore
import SMTP
import TLS

/// Delivery to each recipient domain's own servers, as mox's `deliverDirect`
/// does: MX lookup (RFC 5321 5.1), hosts in preference order, each host's
/// addresses, and per host the TLS policy (`TLSPolicyDecision`): DANE where
/// the DNS is signed (RFC 7672), the domain's MTA-STS policy (RFC 8461),
/// REQUIRETLS (RFC 8689), opportunistic STARTTLS otherwise (RFC 7435).
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
    /// Where recipient domains' MTA-STS policies come from; nil: MTA-STS off.
    public let mtaSTS: (any MTASTSPolicySource)?
    /// Where TLSRPT results are counted (RFC 8460); nil: not counted.
    public let reports: TLSReportCounter?
    static let cnameLimit = 10

    public init(name: String = "direct", resolver: any Resolver, options: SMTPClientOptions, dialer: any Dialer = TCPDialer(),
                port: UInt16 = 25, family: Family = .any, limits: ConnectLimits = ConnectLimits(), sessions: SessionCache? = nil,
                mtaSTS: (any MTASTSPolicySource)? = nil, reports: TLSReportCounter? = nil) {
        self.sessions = sessions
        self.mtaSTS = mtaSTS
        self.reports = reports
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
        /// `authentic`: the MX answer (or its denial, for the implicit MX) and
        /// every CNAME before it were DNSSEC-authentic, as DANE requires (RFC 7672 2.2.1).
        case hosts([String], authentic: Bool)
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
            // No host name: neither DANE nor MTA-STS can apply. REQUIRETLS cannot be met.
            if request.requireTLS == true { return Self.requireTLSFailure(request.recipients, reasons: ["[\(ip)] has no name to verify TLS against"], domain: request.domain) }
            return SMTPSession.tryAddresses(request, host: "[\(ip)]", ips: [ip], port: port, options: options,
                                            plan: .opportunistic, dialer: dialer,
                                            connectTimeout: limits.perAddress, budget: budget, source: source, cancellation: cancellation,
                                            sessions: sessions, transport: name)
        case .hosts(let hosts, let authentic):
            return tryHosts(hosts, mxAuthentic: authentic, request, budget: budget, source: source, cancellation: cancellation)
        }
    }

    /// Tries each host until every recipient has a final answer: a temporary
    /// failure moves the still-pending recipients on to the next host. Each
    /// host is tried under its TLS policy; hosts the policy passes over are
    /// not dialed.
    private func tryHosts(_ hosts: [String], mxAuthentic: Bool, _ request: DeliveryRequest, budget: Deadline, source: FileMessageSource,
                          cancellation: Cancellation) -> AttemptReport {
        var final: [AttemptReport.Result] = []
        var pending = request.recipients
        var last = AttemptReport.all(pending, .deferred, text: "no MX host could be reached")
        var dialed: [String: [String]] = [:]
        var connections: [AttemptReport.Connection] = []
        let sts = mtaSTS?.lookup(request.domain)
        if let error = sts?.fetchError {
            // Under the policy that still applies (a cached one), else as a domain that asks for enforcement.
            let policy: TLSPolicy = sts?.policy?.mode == .testing ? .mtaSTSTesting : .mtaSTSEnforce
            reports?.count(.init(domain: request.domain, policy: policy, failure: .stsPolicyFetchError(error)))
        }
        /// Why hosts were passed over for good (REQUIRETLS, MTA-STS), and whether any failed only for now.
        var refusals: [String] = []
        var temporary = false
        for host in hosts where !pending.isEmpty && !cancellation.isCancelled {
            let (found, addressesAuthentic) = addresses(of: host)
            let ips = Self.order(found, dialed: request.dialedIPs[host] ?? [])
            guard !ips.isEmpty else {
                last = .all(pending, .deferred, text: "MX host \(host) has no usable address", host: host)
                temporary = true
                continue
            }
            let dane = DANE.lookup(host: host, port: port, mxAuthentic: mxAuthentic, addressesAuthentic: addressesAuthentic, resolver: resolver)
            let plan: TLSPlan
            switch TLSPolicyDecision.action(host: host, dane: dane, mtaSTS: sts?.policy, requireTLS: request.requireTLS) {
            case .connect(let chosen):
                plan = chosen
            case .skip(let reason, let policy):
                refusals.append(reason)
                last = .all(pending, .deferred, text: reason, host: host)
                last.policy = policy
                if policy == .mtaSTSEnforce { reports?.count(.init(domain: request.domain, policy: policy, host: host, failure: .validationFailure(reason))) }
                continue
            case .deferHost(let reason, let policy):
                temporary = true
                last = .all(pending, .deferred, text: reason, host: host)
                last.policy = policy
                reports?.count(.init(domain: request.domain, policy: policy, host: host, failure: .tlsaInvalid(reason)))
                continue
            }
            var subset = request
            subset.recipients = pending
            last = SMTPSession.tryAddresses(subset, host: host, ips: ips, port: port, options: options, plan: plan, dialer: dialer,
                                            connectTimeout: limits.perAddress, budget: budget, source: source, cancellation: cancellation,
                                            sessions: sessions, transport: name)
            reports?.count(TLSReportCounter.result(of: last, domain: request.domain, host: host, plan: plan))
            last = Self.applyDualStackRule(last, request: request, host: host, ips: found)
            dialed.merge(last.dialed) { $0 + $1 }
            connections += last.connections
            final += last.results.filter { $0.outcome != .deferred }
            pending = last.results.filter { $0.outcome == .deferred }.map(\.recipient)
            if let refusal = last.requireTLSRefusal { refusals.append(refusal) } else if !pending.isEmpty { temporary = true }
        }
        var report = last
        report.results = final + last.results.filter { $0.outcome == .deferred && pending.contains($0.recipient) }
        // RFC 8689 4.2.1: no host can take the message with TLS as required: it bounces now, not after days of retries.
        if request.requireTLS == true, !temporary, !pending.isEmpty, !refusals.isEmpty, !cancellation.isCancelled {
            let failed = Self.requireTLSFailure(pending, reasons: refusals, domain: request.domain)
            report.results = final + failed.results
        }
        report.dialed = dialed
        report.connections = connections
        report.mtaSTSFetchError = sts?.fetchError
        return report
    }

    /// The permanent failure of recipients of a REQUIRETLS message that no
    /// host qualifies for (RFC 8689 5.7.30: "REQUIRETLS support required").
    static func requireTLSFailure(_ recipients: [String], reasons: [String], domain: String) -> AttemptReport {
        var seen = Set<String>()
        let why = reasons.filter { seen.insert($0).inserted }.joined(separator: "; ")
        return .all(recipients, .failed, code: 554, enhanced: "5.7.30",
                    text: "REQUIRETLS support required: no server of \(domain) can take this message with verified TLS and REQUIRETLS (\(why))")
    }

    /// mox's dual-stack rule: a 5.7.x refusal on the first attempt over one
    /// address family of a host that has both is taken as temporary, so the
    /// next attempt comes from the other family (`order` prefers it): reverse
    /// DNS and SPF often differ between the two.
    static func applyDualStackRule(_ report: AttemptReport, request: DeliveryRequest, host: String, ips: [String]) -> AttemptReport {
        guard let ip = report.ip, ips.contains(where: { $0.contains(":") }), ips.contains(where: { !$0.contains(":") }) else { return report }
        let family = ip.contains(":")
        let earlier = request.dialedIPs[host] ?? []
        // The other family was tried in an earlier attempt: this refusal stands.
        guard !earlier.contains(where: { $0.contains(":") != family }) else { return report }
        var changed = report
        changed.results = report.results.map { result in
            guard result.outcome == .failed, result.enhanced?.hasPrefix("5.7.") == true else { return result }
            return AttemptReport.Result(recipient: result.recipient, outcome: .deferred, code: result.code, enhanced: result.enhanced,
                                        text: result.text + " (refused over \(family ? "IPv6" : "IPv4"); the next attempt uses \(family ? "IPv4" : "IPv6"))")
        }
        return changed
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
        var chainAuthentic = true
        while true {
            do {
                let answer = try resolver.cname(name)
                guard let target = answer.records.first else { break }
                chainAuthentic = chainAuthentic && answer.authentic
                guard seen.insert(target).inserted else { return .temporary("CNAME loop at \(name)") }
                guard seen.count <= Self.cnameLimit + 1 else { return .temporary("more than \(Self.cnameLimit) CNAMEs from \(domain)") }
                name = target
            } catch {
                if error.isTemporary { return .temporary("looking up \(name): \(error)") }
                break   // no CNAME here (no data, or the name does not exist: the MX lookup says which)
            }
        }
        do {
            let answer = try resolver.mx(name)
            let records = answer.records
            let authentic = chainAuthentic && answer.authentic
            // RFC 7505 3: a single MX of "." means the domain accepts no mail.
            if records.count == 1, records[0].host.isEmpty {
                return .permanent("\(domain) accepts no mail (null MX, RFC 7505)")
            }
            let usable = records.filter { !$0.host.isEmpty }
            guard !usable.isEmpty else { return .hosts([name], authentic: authentic) }
            let grouped = Dictionary(grouping: usable, by: \.preference)
            return .hosts(grouped.keys.sorted().flatMap { grouped[$0]!.map(\.host).shuffled() }, authentic: authentic)
        } catch {
            switch error {
            // A deliberate difference from mox, which retries NXDOMAIN for hours: Postfix bounces it too.
            case .nxdomain: return .permanent("\(domain) does not exist (NXDOMAIN)")
            // RFC 5321 5.1: no MX records means the domain itself is the host (implicit MX).
            case .noData(_, let authentic): return .hosts([name], authentic: chainAuthentic && authentic)
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
    /// uses; a failed lookup of one family leaves the other. `authentic`:
    /// every answer and denial was DNSSEC-authentic and none failed (RFC 7672
    /// 2.2.2 asks a secure address lookup of DANE).
    func addresses(of host: String) -> (ips: [String], authentic: Bool) {
        var authentic = true
        func lookup(_ query: (String) throws(DNSError) -> DNSAnswer<String>) -> [String] {
            do {
                let answer = try query(host)
                authentic = authentic && answer.authentic
                return answer.records
            } catch {
                // A missing family is not an error: the other may serve.
                switch error {
                case .noData(_, let denied), .nxdomain(_, let denied): authentic = authentic && denied
                default: authentic = false
                }
                return []
            }
        }
        let v6 = family == .ipv4 ? [] : lookup(resolver.aaaa)
        let v4 = family == .ipv6 ? [] : lookup(resolver.a)
        return (v6 + v4, authentic && !(v6 + v4).isEmpty)
    }

    func allows(_ ip: String) -> Bool {
        switch family {
        case .any: true
        case .ipv4: !ip.contains(":")
        case .ipv6: ip.contains(":")
        }
    }
}
