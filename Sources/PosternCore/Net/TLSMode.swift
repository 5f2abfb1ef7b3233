/// How a connection uses TLS: the one vocabulary of the configuration
/// (`relay_tls`, a transport's `tls`), the SMTP client, the session cache,
/// logs and metrics (issue #16 replaced four look-alike types with this one).
///
/// The raw values are the configuration's and the logs' words. The plaintext
/// case is not called `none`, which `Optional.none` would shadow.
public enum TLSMode: String, Sendable, Hashable, CaseIterable {
    /// Never STARTTLS: a relay on localhost or a trusted network.
    case plaintext = "none"
    /// STARTTLS when the server offers it, plaintext otherwise (RFC 3207, RFC 7435).
    case opportunistic
    /// STARTTLS or no delivery to that server (a relay so configured, DANE, MTA-STS enforce).
    case required
    /// TLS from the first byte, for submissions on port 465 (RFC 8314 3.3).
    case implicit
}

/// How a server's certificate is checked during a handshake.
public enum TLSVerificationMode: String, Sendable, Hashable, CaseIterable {
    /// Not at all: opportunistic TLS protects against passive listeners only (RFC 7435).
    case unverified = "none"
    /// A chain to a trusted CA and the server's name (RFC 6125): MTA-STS, smarthosts.
    case pkix
    /// Against DNSSEC-signed TLSA records (RFC 7672).
    case dane
}
