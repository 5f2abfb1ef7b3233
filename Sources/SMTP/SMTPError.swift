import TLS

/// Why something failed in an SMTP session, classified for delivery code.
///
/// The client only classifies; what to do about it (retry, try another host,
/// bounce) is the caller's decision. The rule (RFC 5321 4.2.1): a 5xx reply is
/// permanent; a 4xx reply, and every network, timeout, TLS and protocol failure,
/// is temporary. Refusals the client makes itself say which rule they follow.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The server answered with a failure reply.
        case reply(SMTPReply)
        /// The connection failed: closed, reset, a system call error.
        case network(StreamError)
        /// The server did not answer within the command's deadline.
        case timeout
        /// TLS failed (handshake, verification, protocol version).
        case tls(TLSError)
        /// The server broke the protocol: garbage, overlong lines, too many lines.
        case protocolViolation(String)
        /// The client refused to go on, before sending what would fail.
        case refused(Refusal)
    }

    /// Refusals the client makes on its own.
    public enum Refusal: Error, Sendable, Equatable {
        /// The message is larger than the server's SIZE (RFC 1870): permanent.
        case messageTooLarge(size: Int, limit: Int)
        /// The message needs SMTPUTF8 and the server lacks it (RFC 6531 3.4): temporary, another host may have it.
        case smtputf8Unsupported
        /// REQUIRETLS was asked and the server does not offer it over verified TLS (RFC 8689 4.2.1): temporary per host.
        case requireTLSUnsupported
        /// TLS is required and the server does not offer STARTTLS: temporary.
        case startTLSUnavailable
        /// Credentials would go over a connection without TLS: temporary (configuration).
        case authenticationWithoutTLS
        /// None of the configured mechanisms is offered: temporary (configuration).
        case noCommonAuthMechanism(offered: [String])
        /// The message is not CRLF throughout (a bare CR or LF at this offset): permanent.
        case bareLineEnding(offset: Int)
        /// The message could not be read from the spool.
        case messageUnreadable(String)
        /// The server's SASL exchange was wrong (bad challenge, bad signature).
        case authentication(String)
    }

    public let kind: Kind
    /// The step that failed: `greeting`, `EHLO`, `STARTTLS`, `AUTH`, `MAIL FROM`,
    /// `RCPT TO`, `DATA`, `end of data`, `message`.
    public let command: String

    public init(_ kind: Kind, command: String) {
        self.kind = kind
        self.command = command
    }

    /// Whether the failure is final for the recipients. A refused AUTH never
    /// is, whatever its code: it says our credentials are wrong, not the mail,
    /// and the admin who fixes them expects the queue to go out (Postfix's
    /// smtp_sasl_auth_soft_bounce, on by default, does the same).
    public var isPermanent: Bool {
        switch kind {
        case .reply where command == "AUTH": false
        case .reply(let reply): reply.isPermanent
        case .refused(.messageTooLarge), .refused(.bareLineEnding): true
        default: false
        }
    }

    public var reply: SMTPReply? {
        if case .reply(let reply) = kind { return reply }
        return nil
    }

    public var code: Int? { reply?.code }
    public var enhanced: EnhancedStatusCode? { reply?.enhanced }

    public var description: String {
        let what: String = switch kind {
        case .reply(let reply): "server replied \(reply.text.replacingOccurrences(of: "\n", with: " / "))"
        case .network(let error): "network error: \(error)"
        case .timeout: "timed out waiting for the server"
        case .tls(let error): error.description
        case .protocolViolation(let detail): "protocol error: \(detail)"
        case .refused(let refusal): "not sent: \(refusal)"
        }
        return "\(command): \(what) (\(isPermanent ? "permanent" : "temporary"))"
    }

    /// Failures below the level of commands, given their command by the session.
    enum Failure: Error, Sendable, Equatable {
        case stream(StreamError)
        case `protocol`(String)

        func at(_ command: String) -> SMTPError {
            switch self {
            case .stream(.timeout): SMTPError(.timeout, command: command)
            case .stream(.tls(let error)): SMTPError(.tls(error), command: command)
            case .stream(let error): SMTPError(.network(error), command: command)
            case .protocol(let detail): SMTPError(.protocolViolation(detail), command: command)
            }
        }
    }
}

extension SMTPError.Refusal: CustomStringConvertible {
    public var description: String {
        switch self {
        case .messageTooLarge(let size, let limit): "message of \(size) octets exceeds the server's SIZE limit of \(limit)"
        case .smtputf8Unsupported: "the message needs SMTPUTF8, which the server does not offer"
        case .requireTLSUnsupported: "REQUIRETLS was requested and the server does not offer it over verified TLS"
        case .startTLSUnavailable: "TLS is required and the server does not offer STARTTLS"
        case .authenticationWithoutTLS: "credentials are never sent without TLS unless the configuration allows it"
        case .noCommonAuthMechanism(let offered): "no configured AUTH mechanism is offered (server offers: \(offered.joined(separator: " ")))"
        case .bareLineEnding(let offset): "the message has a bare CR or LF at octet \(offset); it must be CRLF throughout"
        case .messageUnreadable(let detail): "cannot read the message: \(detail)"
        case .authentication(let detail): "authentication failed: \(detail)"
        }
    }
}
