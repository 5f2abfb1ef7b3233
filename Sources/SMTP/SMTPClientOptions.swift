import PosternCore
import TLS

/// Timeouts in seconds. The defaults are RFC 5321 4.5.3.2's minimums.
public struct SMTPTimeouts: Sendable {
    /// 4.5.3.2.1: initial 220 greeting, 5 minutes.
    public var greeting: Double = 300
    /// 4.5.3.2.2: MAIL, 5 minutes.
    public var mail: Double = 300
    /// 4.5.3.2.3: RCPT, 5 minutes.
    public var recipient: Double = 300
    /// 4.5.3.2.4: DATA initiation (the 354), 2 minutes.
    public var dataInitiation: Double = 120
    /// 4.5.3.2.5: each data block sent, 3 minutes.
    public var dataBlock: Double = 180
    /// 4.5.3.2.6: the reply after the final dot, 10 minutes.
    public var dataTermination: Double = 600
    /// EHLO, HELO, STARTTLS, AUTH, RSET, QUIT: 5 minutes (4.5.3.2.7's server
    /// timeout is the same and nothing shorter is safe).
    public var command: Double = 300
    /// The TLS handshake: not in RFC 5321; 1 minute.
    public var tlsHandshake: Double = 60

    public init() {}

    /// The same limit for every wait, for tools that want answers quickly.
    public init(uniform seconds: Double) {
        greeting = seconds
        mail = seconds
        recipient = seconds
        dataInitiation = seconds
        dataBlock = seconds
        dataTermination = seconds
        command = seconds
        tlsHandshake = seconds
    }
}

/// Everything the client needs to know about one connection.
public struct SMTPClientOptions: Sendable {
    /// The name in EHLO/HELO: this host's fully qualified name (RFC 5321 4.1.4).
    public var ehloName: String
    public var tlsMode: TLSMode
    /// Verification, SNI and trust anchors for STARTTLS or implicit TLS.
    public var tls: TLSClientOptions?
    public var credentials: Credentials?
    /// Mechanisms to use, in order of preference; the first the server offers wins.
    public var authMechanisms: [SASLMechanismName] = [.scramSHA256Plus, .scramSHA256, .cramMD5, .plain, .login]
    /// Whether credentials may be sent without TLS (never, unless explicitly configured).
    public var allowAuthenticationWithoutTLS = false
    public var timeouts = SMTPTimeouts()

    public init(ehloName: String, tlsMode: TLSMode = .opportunistic, tls: TLSClientOptions? = nil) {
        self.ehloName = ehloName
        self.tlsMode = tlsMode
        self.tls = tls
    }
}
