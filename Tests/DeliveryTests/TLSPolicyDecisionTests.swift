import PosternCore
import TLS
import Testing
@testable import Delivery

/// The TLS policy of one MX host from DANE, MTA-STS and the message's REQUIRETLS tri-state (issue #16's tables).
struct TLSPolicyDecisionTests {
    static let record = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: Array(repeating: 7, count: 32))
    static let usable = DANEDecision.usable(records: [record], hostnames: ["mx.example"])
    static let enforce = MTASTSPolicy(mode: .enforce, mx: ["mx.example"], maxAge: 86400)
    static let enforceElsewhere = MTASTSPolicy(mode: .enforce, mx: ["other.example"], maxAge: 86400)
    static let testing = MTASTSPolicy(mode: .testing, mx: ["mx.example"], maxAge: 86400)

    enum Expected: Equatable {
        /// Policy, mode, verification, enforced.
        case connect(TLSPolicy, TLSMode, TLSVerificationMode, Bool)
        case skip(TLSPolicy)
        case deferHost(TLSPolicy)
    }

    static func summary(_ action: HostTLSAction) -> Expected {
        switch action {
        case .connect(let plan): .connect(plan.policy, plan.mode, plan.verification.mode, plan.enforce)
        case .skip(_, let policy): .skip(policy)
        case .deferHost(_, let policy): .deferHost(policy)
        }
    }

    /// DANE and MTA-STS without REQUIRETLS: DANE wins, a failed TLSA lookup defers, enforce passes non-matching hosts over.
    @Test(arguments: [
        (usable, nil, Expected.connect(.dane, .required, .dane, true)),
        (usable, enforceElsewhere, .connect(.dane, .required, .dane, true)),
        (.failed("SERVFAIL"), nil, .deferHost(.dane)),
        (.failed("SERVFAIL"), enforce, .deferHost(.dane)),
        (.unusable, nil, .connect(.dane, .required, .unverified, false)),
        (.unusable, testing, .connect(.dane, .required, .unverified, false)),
        (.unusable, enforce, .connect(.mtaSTSEnforce, .required, .pkix, true)),
        (.notApplicable("insecure"), enforce, .connect(.mtaSTSEnforce, .required, .pkix, true)),
        (.notApplicable("insecure"), enforceElsewhere, .skip(.mtaSTSEnforce)),
        (.notApplicable("insecure"), testing, .connect(.mtaSTSTesting, .opportunistic, .pkix, false)),
        (.notApplicable("insecure"), MTASTSPolicy(mode: .none, mx: [], maxAge: 60), .connect(.noPolicy, .opportunistic, .unverified, false)),
        (.notApplicable("insecure"), nil, .connect(.noPolicy, .opportunistic, .unverified, false)),
    ] as [(DANEDecision, MTASTSPolicy?, Expected)])
    func policyTable(dane: DANEDecision, sts: MTASTSPolicy?, expected: Expected) {
        #expect(Self.summary(TLSPolicyDecision.action(host: "mx.example", dane: dane, mtaSTS: sts, requireTLS: nil)) == expected)
    }

    /// REQUIRETLS (RFC 8689 4.2.1): only hosts with required, verified TLS (DANE, MTA-STS enforce) remain.
    @Test(arguments: [
        (usable, nil, Expected.connect(.dane, .required, .dane, true)),
        (.notApplicable("insecure"), enforce, .connect(.mtaSTSEnforce, .required, .pkix, true)),
        (.notApplicable("insecure"), enforceElsewhere, .skip(.mtaSTSEnforce)),
        (.notApplicable("insecure"), testing, .skip(.mtaSTSTesting)),
        (.notApplicable("insecure"), nil, .skip(.noPolicy)),
        (.unusable, nil, .skip(.dane)),
        (.failed("SERVFAIL"), nil, .deferHost(.dane)),
    ] as [(DANEDecision, MTASTSPolicy?, Expected)])
    func requireTLSTable(dane: DANEDecision, sts: MTASTSPolicy?, expected: Expected) {
        #expect(Self.summary(TLSPolicyDecision.action(host: "mx.example", dane: dane, mtaSTS: sts, requireTLS: true)) == expected)
    }

    /// TLS-Required: No (RFC 8689 5): every host is tried opportunistically, checks recorded but never enforced.
    @Test(arguments: [
        (usable, nil, Expected.connect(.dane, .opportunistic, .dane, false)),
        (.failed("SERVFAIL"), nil, .connect(.dane, .opportunistic, .unverified, false)),
        (.unusable, nil, .connect(.dane, .opportunistic, .unverified, false)),
        (.notApplicable("insecure"), enforce, .connect(.mtaSTSEnforce, .opportunistic, .pkix, false)),
        (.notApplicable("insecure"), enforceElsewhere, .connect(.mtaSTSEnforce, .opportunistic, .unverified, false)),
        (.notApplicable("insecure"), nil, .connect(.noPolicy, .opportunistic, .unverified, false)),
    ] as [(DANEDecision, MTASTSPolicy?, Expected)])
    func tlsRequiredNoTable(dane: DANEDecision, sts: MTASTSPolicy?, expected: Expected) {
        #expect(Self.summary(TLSPolicyDecision.action(host: "mx.example", dane: dane, mtaSTS: sts, requireTLS: false)) == expected)
    }

    /// A relay qualifies for REQUIRETLS only when its TLS is required (or implicit) and verified.
    @Test func relayPlans() {
        #expect(TLSPlan(mode: .required, verification: .pkix(hostnames: ["relay"]), enforce: true).isVerifiedAndRequired)
        #expect(TLSPlan(mode: .implicit, verification: .pkix(hostnames: ["relay"]), enforce: true).isVerifiedAndRequired)
        #expect(!TLSPlan(mode: .opportunistic, verification: .pkix(hostnames: ["relay"]), enforce: true).isVerifiedAndRequired)
        #expect(!TLSPlan(mode: .required, verification: .none, enforce: true).isVerifiedAndRequired)
        #expect(!TLSPlan(mode: .required, verification: .pkix(hostnames: ["relay"]), enforce: false).isVerifiedAndRequired)
    }
}
