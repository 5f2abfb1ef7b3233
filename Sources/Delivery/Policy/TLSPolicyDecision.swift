import PosternCore
import TLS

/// What delivery does with one MX host: connect under a TLS plan, pass it
/// over, or fail it for now without connecting.
enum HostTLSAction: Sendable, Equatable {
    case connect(TLSPlan)
    /// Not a host for this message: it matches no `mx` pattern of an enforced
    /// MTA-STS policy (RFC 8461 5), or cannot carry a REQUIRETLS message
    /// (RFC 8689 4.2.1). Passing every host over is a failure of the domain.
    case skip(reason: String, policy: TLSPolicy)
    /// A temporary failure of the host without connecting: its TLSA lookup
    /// failed (RFC 7672 2.2), so nothing is known that would allow plaintext.
    case deferHost(reason: String, policy: TLSPolicy)
}

/// The TLS policy of direct delivery, as one pure decision per MX host from
/// what DANE and MTA-STS said and the message's REQUIRETLS tri-state:
///
/// | DANE | MTA-STS | plan |
/// |---|---|---|
/// | usable TLSA | any | STARTTLS required, DANE-verified (DANE wins: RFC 8461 2) |
/// | TLSA lookup failed | any | host fails temporarily |
/// | TLSA present, none usable | enforce | as MTA-STS enforce |
/// | TLSA present, none usable | testing, none | STARTTLS required, unverified (RFC 7672 2.2) |
/// | not applicable | enforce, host matches | STARTTLS required, PKIX-verified |
/// | not applicable | enforce, no match | host passed over |
/// | not applicable | testing | opportunistic, PKIX checked and reported, not enforced |
/// | not applicable | none | opportunistic (RFC 7435) |
///
/// `require_tls: true` (RFC 8689 4) passes over every host whose plan is not
/// required and verified. `require_tls: false` (`TLS-Required: No`, RFC 8689
/// 5) makes every plan opportunistic and unenforced: failures are recorded,
/// never a reason not to deliver, and plaintext is allowed.
enum TLSPolicyDecision {
    static func action(host: String, dane: DANEDecision, mtaSTS: MTASTSPolicy?, requireTLS: Bool?) -> HostTLSAction {
        let base = policyAction(host: host, dane: dane, mtaSTS: mtaSTS)
        switch requireTLS {
        case false?:
            return .connect(relaxed(base))
        case true?:
            guard case .connect(let plan) = base, !plan.isVerifiedAndRequired else { return base }
            return .skip(reason: "REQUIRETLS (RFC 8689): \(host) is not protected by DANE or an enforced MTA-STS policy", policy: plan.policy)
        case nil:
            return base
        }
    }

    static func policyAction(host: String, dane: DANEDecision, mtaSTS: MTASTSPolicy?) -> HostTLSAction {
        switch dane {
        case .usable(let records, let hostnames):
            return .connect(TLSPlan(policy: .dane, mode: .required, verification: .dane(records: records, hostnames: hostnames), enforce: true))
        case .failed(let reason):
            return .deferHost(reason: "\(reason); DANE may apply, so \(host) is not used without it", policy: .dane)
        case .unusable:
            if let mtaSTS, mtaSTS.mode == .enforce { return stsAction(host: host, policy: mtaSTS) }
            return .connect(TLSPlan(policy: .dane, mode: .required, verification: .none, enforce: false))
        case .notApplicable:
            guard let mtaSTS else { return .connect(.opportunistic) }
            return stsAction(host: host, policy: mtaSTS)
        }
    }

    static func stsAction(host: String, policy: MTASTSPolicy) -> HostTLSAction {
        switch policy.mode {
        case .enforce:
            guard policy.permits(host) else {
                return .skip(reason: "MTA-STS (RFC 8461): \(host) matches no mx pattern of the enforced policy", policy: .mtaSTSEnforce)
            }
            return .connect(TLSPlan(policy: .mtaSTSEnforce, mode: .required, verification: .pkix(hostnames: [host]), enforce: true))
        case .testing:
            return .connect(TLSPlan(policy: .mtaSTSTesting, mode: .opportunistic, verification: .pkix(hostnames: [host]), enforce: false))
        case .none:
            return .connect(.opportunistic)
        }
    }

    /// `TLS-Required: No`: the same checks, none of them enforced.
    static func relaxed(_ action: HostTLSAction) -> TLSPlan {
        switch action {
        case .connect(let plan):
            return TLSPlan(policy: plan.policy, mode: .opportunistic, verification: plan.verification, enforce: false)
        case .skip(_, let policy), .deferHost(_, let policy):
            return TLSPlan(policy: policy, mode: .opportunistic, verification: .none, enforce: false)
        }
    }
}
