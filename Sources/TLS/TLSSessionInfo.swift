import PosternCore

/// What a TLS handshake established, for logs, the envelope's history and policy.
public struct TLSSessionInfo: Sendable, Equatable {
    /// As OpenSSL names it: `TLSv1.3`, `TLSv1.2`.
    public var version: String
    public var cipher: String
    /// The peer certificate's subject, one line (`/CN=mx.example.net`).
    public var peerSubject: String?
    /// How verification was asked for.
    public var verificationMode: TLSVerificationMode
    /// Whether the requested verification succeeded (false for mode `none`).
    public var verified: Bool
    /// Why it did not, when it was requested and failed.
    public var verificationFailure: VerificationFailure?
    /// The TLSA record the chain matched (DANE).
    public var matchedTLSA: TLSARecord?
    /// TLSA records OpenSSL could not use (unknown usage, selector or matching type).
    public var unusableTLSA: [TLSARecord]

    /// One line for logs and `postern smtp-probe`: `TLSv1.3 TLS_AES_256_GCM_SHA384 verified=pkix`.
    public var summary: String {
        let outcome = verified ? "verified=\(verificationMode.rawValue)"
            : verificationMode == .unverified ? "unverified" : "verification failed: \(verificationFailure?.description ?? "unknown")"
        return "\(version) \(cipher) \(outcome)"
    }
}
