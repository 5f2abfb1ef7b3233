import DNS
import PosternCore
import TLS

extension DirectTransport {
    /// What direct delivery would do about TLS for `domain` now, in lines for
    /// `postern tls-policy`: the MX hosts and whether DNSSEC vouched for them,
    /// the MTA-STS policy and where it came from, and per host the DANE
    /// finding and the resulting plan. Looks up DNS and may fetch a policy
    /// (blocking; a command-line tool's thread), delivers nothing.
    public func tlsPolicyDescription(for domain: String, requireTLS: Bool? = nil) -> [String] {
        var lines: [String] = []
        let hosts: [String]
        let mxAuthentic: Bool
        switch destinations(for: domain) {
        case .permanent(let reason): return ["\(domain): \(reason)"]
        case .temporary(let reason): return ["\(domain): \(reason) (delivery would wait)"]
        case .address(let ip): return ["\(domain): the address [\(ip)]; no name, so neither DANE nor MTA-STS applies: opportunistic STARTTLS"]
        case .hosts(let found, let authentic): (hosts, mxAuthentic) = (found, authentic)
        }
        lines.append("domain \(domain): MX \(hosts.joined(separator: ", ")) (\(mxAuthentic ? "DNSSEC-authentic" : "not DNSSEC-authentic"))")
        let sts = mtaSTS?.lookup(domain)
        switch (mtaSTS, sts?.policy) {
        case (nil, _): lines.append("MTA-STS: off (mta_sts.enabled = false)")
        case (_, let policy?):
            lines.append("MTA-STS: mode \(policy.mode.rawValue), mx \(policy.mx.joined(separator: " ")), max_age \(policy.maxAge), id \(sts?.id ?? "?") (\(sts?.note ?? ""))")
        case (_, nil): lines.append("MTA-STS: none (\(sts?.note ?? ""))")
        }
        if let error = sts?.fetchError { lines.append("MTA-STS fetch error: \(error)") }
        for host in hosts {
            let (ips, authentic) = addresses(of: host)
            let dane = DANE.lookup(host: host, port: port, mxAuthentic: mxAuthentic, addressesAuthentic: authentic, resolver: resolver)
            let daneText: String = switch dane {
            case .notApplicable(let why): "no DANE: \(why)"
            case .usable(let records, let names): "DANE: \(records.count) usable TLSA record(s) (\(records.map(\.description).joined(separator: ", "))), names \(names.joined(separator: " "))"
            case .unusable: "DANE: TLSA records present, none usable"
            case .failed(let why): "DANE: \(why)"
            }
            let action: String = switch TLSPolicyDecision.action(host: host, dane: dane, mtaSTS: sts?.policy, requireTLS: requireTLS) {
            case .connect(let plan):
                "policy \(plan.policy.rawValue): STARTTLS \(plan.mode == .required ? "required" : "if offered")"
                    + (plan.verification == .none ? ", unverified" : ", \(plan.verification.mode.rawValue) verification \(plan.enforce ? "enforced" : "checked, not enforced")")
            case .skip(let reason, _): "not used: \(reason)"
            case .deferHost(let reason, _): "fails for now: \(reason)"
            }
            lines.append("  \(host) [\(ips.isEmpty ? "no address" : ips.joined(separator: ", "))]: \(daneText)")
            lines.append("    -> \(action)")
        }
        return lines
    }
}
