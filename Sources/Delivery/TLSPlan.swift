import PosternCore
import SMTP
import TLS

/// How TLS is used towards one server: what the policy layer decided
/// (`TLSPolicyDecision`) and what `SMTPSession` carries out.
///
/// Kept apart from `SMTPClientOptions` because it changes per host (DANE's
/// TLSA records, MTA-STS's name) while the rest of the options belong to the
/// transport.
struct TLSPlan: Sendable, Equatable {
    var policy: TLSPolicy
    var mode: TLSMode
    var verification: TLSVerification
    /// Whether a failed verification stops the handshake. False for MTA-STS
    /// `testing` and for `TLS-Required: No`, where a failure is recorded only.
    var enforce: Bool

    init(policy: TLSPolicy = .noPolicy, mode: TLSMode, verification: TLSVerification = .none, enforce: Bool = false) {
        self.policy = policy
        self.mode = mode
        self.verification = verification
        self.enforce = enforce
    }

    /// Opportunistic STARTTLS without checks (RFC 7435): direct delivery where no policy applies.
    static let opportunistic = TLSPlan(mode: .opportunistic)

    /// What a transport's own options say (relays: TLS as configured).
    static func configured(_ options: SMTPClientOptions) -> TLSPlan {
        TLSPlan(mode: options.tlsMode, verification: options.tls?.verification ?? .none, enforce: options.tls?.enforce ?? false)
    }

    /// The plaintext retry after a failed opportunistic handshake.
    var plaintext: TLSPlan {
        TLSPlan(policy: policy, mode: .plaintext, verification: .none, enforce: false)
    }

    /// Whether a server reached under this plan was authenticated, as
    /// REQUIRETLS asks (RFC 8689 4.2.1): verification required and enforced.
    var isVerifiedAndRequired: Bool {
        (mode == .required || mode == .implicit) && enforce && verification != .none
    }

    /// The transport's options with this plan's TLS: SNI is the MX host's name
    /// (RFC 7672 8.1, RFC 8461 4.2), never an address literal (RFC 6066 3).
    func apply(to options: SMTPClientOptions, host: String) -> SMTPClientOptions {
        var options = options
        options.tlsMode = mode
        if var tls = options.tls {
            tls.verification = verification
            tls.enforce = enforce
            if tls.serverName == nil, !host.hasPrefix("["), !host.contains(":"), !host.allSatisfy({ $0.isNumber || $0 == "." }) {
                tls.serverName = host
            }
            options.tls = tls
        }
        return options
    }
}
