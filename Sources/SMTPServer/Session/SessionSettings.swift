import PosternBase

/// What a session needs from the configuration: limits, who may relay, the
/// AUTH users. Plain values, so that the session is tested without sockets.
public struct SessionSettings: Sendable {
    /// Announced in the greeting, EHLO and `Received:`.
    public var hostname: String
    /// The largest message as stored, in octets (`drop.max_message_size`; SIZE, RFC 1870).
    public var maxMessageSize: Int
    /// The most recipients one message may have (`drop.max_recipients`).
    public var maxRecipients: Int
    /// 4xx and 5xx replies a session may earn before it is closed with 421.
    public var maxErrors = 10
    public var relay = RelayPolicy()
    /// AUTH users: name and password, from credentials files. AUTH is offered
    /// only when there is at least one, and only over TLS.
    public var users: [String: [UInt8]] = [:]
    /// Whether STARTTLS is offered (a certificate is configured).
    public var tlsAvailable = false

    public init(hostname: String, maxMessageSize: Int, maxRecipients: Int) {
        self.hostname = hostname
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
    }
}

/// The mail transaction a session is building (RFC 5321 3.3): MAIL, then RCPTs.
public struct MailTransaction: Sendable {
    /// nil is the null reverse-path `<>`.
    public var sender: MailboxAddress?
    public var recipients: [MailboxAddress] = []
    /// RFC 3461 ORCPT by recipient SMTP form, when given.
    public var originals: [String: String] = [:]
    /// Recipients that asked NOTIFY=NEVER; the envelope holds one `notify`
    /// for the message, so NEVER is kept only when every recipient asked it.
    public var neverNotify = 0
    /// RET= on MAIL (RFC 3461 4.3): what a failure DSN returns.
    public var dsnReturn: DSNReturn?
    /// ENVID= on MAIL (RFC 3461 4.4), as received (xtext).
    public var envelopeID: String?
    /// REQUIRETLS (RFC 8689) on MAIL.
    public var requireTLS = false
    /// SIZE= on MAIL (RFC 1870), a hint only.
    public var declaredSize: Int?
    /// SMTPUTF8 on MAIL (RFC 6531): non-ASCII addresses are allowed.
    public var smtputf8 = false
    /// The message comes in BDAT chunks (RFC 3030): DATA may not follow.
    public var chunked = false
    /// Why the message was refused before its last chunk: the chunks still
    /// in the pipeline get the same reply, and BDAT LAST ends the transaction.
    public var chunkRefusal: ServerSession.DataOutcome?
}
