/// Which policy decided how TLS is used towards a server of direct delivery:
/// the `policy` of log lines, history entries and metrics.
///
/// A policy is decided per recipient domain (MTA-STS, RFC 8461) and per MX
/// host (DANE, RFC 7672, which wins where both apply: RFC 8461 2).
public enum TLSPolicy: String, Sendable, Hashable, CaseIterable {
    /// No policy: opportunistic STARTTLS (RFC 7435); relays, whose TLS is configured.
    case noPolicy = "none"
    /// DNSSEC-authentic TLSA records at `_25._tcp.HOST` (RFC 7672).
    case dane
    /// An MTA-STS policy in `enforce` mode (RFC 8461 5).
    case mtaSTSEnforce = "mta-sts-enforce"
    /// An MTA-STS policy in `testing` mode: failures are reported, not enforced.
    case mtaSTSTesting = "mta-sts-testing"
}

/// What TLS a connection ended with, once it reached SMTP (or failed trying).
public enum TLSOutcome: String, Sendable, Hashable, CaseIterable {
    /// No TLS: not offered, not asked for, or a plaintext retry.
    case plaintext = "none"
    /// TLS without (successful) verification of the peer.
    case opportunistic
    /// TLS with the certificate verified against the web PKI.
    case pkix
    /// TLS with the certificate matched against TLSA records.
    case dane
    /// TLS was attempted and failed (handshake or enforced verification).
    case failed
}
