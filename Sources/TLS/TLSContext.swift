import COpenSSL
import COpenSSLShim
import Glibc
import PosternCore

/// The certificates a client trusts for PKIX verification.
public enum TrustAnchors: Sendable, Hashable {
    /// The system store (Debian: /etc/ssl/certs), as `SSL_CTX_set_default_verify_paths` finds it.
    case system
    /// A PEM file of CA certificates (tests, private CAs).
    case file(String)
}

/// How the server's certificate is checked.
public enum TLSVerification: Sendable, Equatable {
    /// No checks: opportunistic TLS against passive eavesdroppers only (RFC 7435).
    case none
    /// PKIX: a chain to a trust anchor and one of `hostnames` in the certificate
    /// (RFC 6125), as MTA-STS (RFC 8461) and smarthosts require.
    case pkix(hostnames: [String])
    /// DANE (RFC 7671, RFC 7672) through OpenSSL's own implementation: the chain
    /// must match one of the usable `records`. DANE-EE(3) ignores names and
    /// validity dates; DANE-TA(2) checks `hostnames` (the first is the TLSA base domain).
    case dane(records: [TLSARecord], hostnames: [String])

    /// The kind of check, without its data, for logs and keys.
    public var mode: TLSVerificationMode {
        switch self {
        case .none: .unverified
        case .pkix: .pkix
        case .dane: .dane
        }
    }
}

/// Options for one TLS client handshake.
public struct TLSClientOptions: Sendable {
    public var verification: TLSVerification
    /// When false, verification is done and reported but a failure does not stop
    /// the handshake: for policy code that must record failures (TLSRPT, testing
    /// a policy) before enforcing it.
    public var enforce: Bool
    /// The SNI name; none when nil (RFC 6066 3: never an IP address literal).
    public var serverName: String?
    public var context: TLSContext

    public init(verification: TLSVerification = .none, enforce: Bool = true, serverName: String? = nil, context: TLSContext) {
        self.verification = verification
        self.enforce = enforce
        self.serverName = serverName
        self.context = context
    }
}

/// An OpenSSL client context: TLS 1.2 at least, no compression or
/// renegotiation, DANE enabled, the chosen trust anchors loaded. Loading the
/// system store costs milliseconds, so one context serves many connections.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let trustAnchors: TrustAnchors

    public init(trustAnchors: TrustAnchors = .system) throws(TLSError) {
        // OpenSSL writes to the socket with write(2), which raises SIGPIPE when the
        // peer has gone: a process that speaks TLS must ignore it, or one hostile
        // server's reset kills the daemon. So making a context ignores it.
        signal(SIGPIPE, SIG_IGN)
        guard let context = SSL_CTX_new(TLS_client_method()) else {
            throw .setup("SSL_CTX_new: \(OpenSSLErrors.drain().text)")
        }
        self.context = context
        self.trustAnchors = trustAnchors
        try Self.configureCommon(context)
        guard SSL_CTX_dane_enable(context) > 0 else { throw .setup("SSL_CTX_dane_enable: \(OpenSSLErrors.drain().text)") }
        let loaded: Int32 = switch trustAnchors {
        case .system: SSL_CTX_set_default_verify_paths(context)
        case .file(let path): SSL_CTX_load_verify_locations(context, path, nil)
        }
        guard loaded == 1 else { throw .setup("cannot load trust anchors \(trustAnchors): \(OpenSSLErrors.drain().text)") }
    }

    deinit {
        SSL_CTX_free(context)
    }

    /// What every context gets, client's or server's: TLS 1.2 at least (RFC
    /// 8996 retires 1.0 and 1.1; RFC 7672 3.1.3 asks no less of SMTP), no
    /// compression or renegotiation, partial writes.
    static func configureCommon(_ context: OpaquePointer) throws(TLSError) {
        guard shim_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw .setup("cannot set TLS 1.2 as the minimum")
        }
        SSL_CTX_set_options(context, shim_SSL_OP_NO_COMPRESSION | shim_SSL_OP_NO_RENEGOTIATION
                            | shim_SSL_OP_IGNORE_UNEXPECTED_EOF)
        _ = shim_SSL_CTX_set_mode(context, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
    }
}
