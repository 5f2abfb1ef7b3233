import PosternBase

/// The server side of one SMTP session (RFC 5321 4.1, 4.3.2) as a state
/// machine without I/O: each command line in, one reply and what the
/// connection must do next out. `ServerConnection` performs the I/O; tests
/// drive this directly, line by line.
public struct ServerSession: Sendable {
    /// What the connection does after sending the reply.
    public enum Next: Sendable, Equatable {
        case proceed
        /// Start the TLS handshake (after 220 to STARTTLS, RFC 3207 4).
        case startTLS
        /// Read the message (after 354 to DATA), then call `finishData`.
        case receiveData
        /// Read a BDAT chunk of `size` octets into the message, then call
        /// `finishChunk`; the response's reply is not sent (RFC 3030 2: a
        /// chunk's reply comes after the chunk).
        case receiveChunk(size: Int, last: Bool)
        /// Read a BDAT chunk of `size` octets and throw it away; the reply
        /// (an error) is sent (RFC 3030 2: a refused chunk is still read).
        case discardChunk(size: Int)
        /// Close the connection (after 221 or 421).
        case close
    }

    public struct Response: Sendable, Equatable {
        public var reply: ServerReply
        public var next: Next
    }

    /// Why a message was refused after its data, for the reply and the metrics.
    public enum DataOutcome: Sendable, Equatable {
        case accepted(id: QueueID)
        case tooBig
        case lineTooLong
        case nul
        /// The message or envelope broke a drop rule (recipients, headers): the text says which.
        case invalid(String)
        /// The spool could not take it (disk full, I/O error): try again later.
        case temporaryFailure(String)
    }

    enum Phase: Sendable, Equatable {
        /// Before HELO or EHLO, and again after STARTTLS.
        case fresh
        case greeted
        case mail
    }

    enum AuthStep: Sendable, Equatable {
        case plain
        case loginUser
        case loginPassword(user: String)
    }

    public let settings: SessionSettings
    /// The client's IP address as octets, and as text for logs and `Received:`.
    public let clientAddress: [UInt8]
    public let clientText: String
    var phase = Phase.fresh
    public private(set) var heloName: String?
    public private(set) var esmtp = false
    public private(set) var tls = false
    public internal(set) var authenticatedUser: String?
    public internal(set) var transaction: MailTransaction?
    public private(set) var errors = 0
    var authStep: AuthStep?

    public init(settings: SessionSettings, clientAddress: [UInt8], clientText: String) {
        self.settings = settings
        self.clientAddress = clientAddress
        self.clientText = clientText
    }

    /// The 220 greeting (RFC 5321 4.3.1).
    public var greeting: ServerReply {
        ServerReply(220, nil, "\(settings.hostname) ESMTP Postern")
    }

    /// Whether the client may relay: trusted by address, or authenticated.
    public var mayRelay: Bool {
        authenticatedUser != nil || settings.relay.trusts(clientAddress)
    }

    /// One command line (or AUTH response line), without its CRLF.
    public mutating func handle(line: ArraySlice<UInt8>) -> Response {
        if authStep != nil { return count(authResponse(line)) }
        let command = ServerCommand(line: line)
        return count(dispatch(command, line: line))
    }

    /// A command line longer than the limit was discarded (RFC 5321 4.5.3.1.4).
    public mutating func lineTooLong() -> Response {
        authStep = nil
        return count(Response(reply: ServerReply(500, "5.5.2", "Line too long"), next: .proceed))
    }

    /// The handshake after STARTTLS succeeded: everything learnt before it is
    /// forgotten (RFC 3207 4.2), and the client must EHLO again.
    public mutating func tlsStarted() {
        tls = true
        phase = .fresh
        heloName = nil
        esmtp = false
        transaction = nil
    }

    /// The data of the current transaction was read and handled.
    public mutating func finishData(_ outcome: DataOutcome) -> Response {
        transaction = nil
        phase = .greeted
        return count(Response(reply: reply(to: outcome), next: .proceed))
    }

    /// The reply to a message's end: queued, or why not.
    func reply(to outcome: DataOutcome) -> ServerReply {
        switch outcome {
        case .accepted(let id): ServerReply(250, "2.0.0", "Ok: queued as \(id)")
        case .tooBig: ServerReply(552, "5.3.4", "Message size exceeds fixed limit of \(settings.maxMessageSize) octets")
        case .lineTooLong: ServerReply(554, "5.6.0", "Message has a line longer than 998 octets (RFC 5322 2.1.1)")
        case .nul: ServerReply(554, "5.6.0", "Message contains a NUL octet")
        case .invalid(let why): ServerReply(554, "5.6.0", "Message refused: \(Self.printable(why))")
        case .temporaryFailure: ServerReply(451, "4.3.0", "Local error: the message could not be stored; try again later")
        }
    }

    /// Counts an error reply; past the limit, the session ends (RFC 5321 4.3.2 allows 421 at any time).
    mutating func count(_ response: Response) -> Response {
        guard response.reply.isError else { return response }
        errors += 1
        guard errors >= settings.maxErrors, response.next != .close else { return response }
        return Response(reply: ServerReply(421, "4.7.0", "\(settings.hostname) Too many errors, closing connection"), next: .close)
    }

    private mutating func dispatch(_ command: ServerCommand, line: ArraySlice<UInt8>) -> Response {
        func reply(_ code: Int, _ enhanced: String?, _ text: String, _ next: Next = .proceed) -> Response {
            Response(reply: ServerReply(code, enhanced, text), next: next)
        }
        switch command.verb {
        case "EHLO", "HELO":
            return hello(command)
        case "MAIL":
            return mail(command.argument)
        case "RCPT":
            return recipient(command.argument)
        case "DATA":
            guard command.argument.isEmpty else { return reply(501, "5.5.4", "Syntax: DATA") }
            guard let transaction else { return reply(503, "5.5.1", "Error: need MAIL command") }
            guard !transaction.recipients.isEmpty else { return reply(554, "5.5.1", "Error: no valid recipients") }
            // RFC 3030 2: DATA and BDAT cannot be used in the same transaction.
            guard !transaction.chunked else { return reply(503, "5.5.1", "Error: BDAT in progress") }
            return reply(354, nil, "End data with <CR><LF>.<CR><LF>", .receiveData)
        case "BDAT":
            return chunk(command.argument)
        case "RSET":
            transaction = nil
            if phase == .mail { phase = .greeted }
            return reply(250, "2.0.0", "Ok")
        case "NOOP":
            return reply(250, "2.0.0", "Ok")
        case "QUIT":
            return reply(221, "2.0.0", "Bye", .close)
        case "VRFY":
            // RFC 5321 3.5.3: 252 when the server will not verify but will try to deliver.
            return reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")
        case "HELP":
            return reply(214, "2.0.0", "See RFC 5321")
        case "STARTTLS":
            guard settings.tlsAvailable else { return reply(502, "5.5.1", "Error: command not implemented") }
            guard !tls else { return reply(503, "5.5.1", "Error: TLS already active") }
            guard command.argument.isEmpty else { return reply(501, "5.5.4", "Syntax: STARTTLS") }
            guard transaction == nil else { return reply(503, "5.5.1", "Error: MAIL transaction in progress") }
            return reply(220, "2.0.0", "Ready to start TLS", .startTLS)
        case "AUTH":
            return auth(command.argument)
        default:
            return reply(502, "5.5.2", "Error: command not recognized")
        }
    }

    private mutating func hello(_ command: ServerCommand) -> Response {
        let name = command.argument.trimmingWhitespace()
        // No space and no control character, C1 included (TerminalText.isControl): the name is logged and
        // written into `Received:`.
        guard !name.isEmpty, !name.unicodeScalars.contains(where: { $0 == " " || TerminalText.isControl($0) }) else {
            return Response(reply: ServerReply(501, "5.5.4", "Syntax: \(command.verb) hostname"), next: .proceed)
        }
        // RFC 5321 4.1.4: HELO or EHLO in the middle of a transaction resets it.
        transaction = nil
        heloName = String(name.prefix(255))
        phase = .greeted
        guard command.verb == "EHLO" else {
            esmtp = false
            return Response(reply: ServerReply(250, nil, settings.hostname), next: .proceed)
        }
        esmtp = true
        var lines = [settings.hostname, "PIPELINING", "SIZE \(settings.maxMessageSize)", "8BITMIME", "SMTPUTF8",
                     "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]
        if settings.tlsAvailable && !tls { lines.append("STARTTLS") }
        // RFC 4954 4: no plaintext mechanism without TLS.
        if tls && !settings.users.isEmpty && authenticatedUser == nil { lines.append("AUTH PLAIN LOGIN") }
        // RFC 8689 4.1: REQUIRETLS only on a TLS session.
        if tls { lines.append("REQUIRETLS") }
        return Response(reply: ServerReply(250, nil, lines: lines), next: .proceed)
    }

    /// Text from a client or an error, made safe for a reply line.
    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" }.prefix(200))
    }
}
