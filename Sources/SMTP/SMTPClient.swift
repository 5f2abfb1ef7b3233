import Foundation
import PosternCore
import TLS

/// What the client learnt about a session, for logs, history and policy.
public struct SessionFacts: Sendable {
    public var greeting: SMTPReply?
    /// The last EHLO (or HELO) reply; after STARTTLS, the one sent over TLS.
    public var hello: SMTPReply?
    public var extensions = Extensions()
    /// The server did not understand EHLO and HELO was used (RFC 5321 3.2).
    public var usedHELO = false
    public var tls: TLSSessionInfo?
    /// A refusal of STARTTLS that opportunistic mode went on without.
    public var startTLSRefused: SMTPReply?
    public var authMechanism: String?
}

/// One step of a session, for `postern smtp-probe` and debug logs.
public enum SMTPTraceEvent: Sendable {
    /// A command line as sent (AUTH data replaced by `****`).
    case sent(String)
    case received(SMTPReply)
    case tls(TLSSessionInfo)
}

/// An SMTP client for one connection (RFC 5321), with STARTTLS (RFC 3207),
/// AUTH (RFC 4954), PIPELINING (RFC 2920) and the extensions delivery needs.
///
/// It knows nothing about queues or policy: it is handed a connected stream and
/// options, speaks SMTP, and reports per recipient what the server said. Every
/// wait is bounded by the RFC 5321 4.5.3.2 timeout of the command at hand.
/// It is not thread-safe: one session is driven by one thread.
public final class SMTPClient {
    public private(set) var stream: ByteStream
    public let options: SMTPClientOptions
    public internal(set) var facts = SessionFacts()
    /// Called for each command, reply and TLS handshake.
    public var trace: ((SMTPTraceEvent) -> Void)?
    var reader = ReplyReader()

    public init(stream: ByteStream, options: SMTPClientOptions) {
        self.stream = stream
        self.options = options
    }

    /// Reads the greeting, says EHLO, starts TLS as the mode asks, authenticates
    /// when credentials are given. Returns what was learnt.
    @discardableResult
    public func open() throws(SMTPError) -> SessionFacts {
        if options.tlsMode == .implicit { try startTLS(command: "TLS") }
        let greeting = try readReply(command: "greeting", timeout: options.timeouts.greeting)
        facts.greeting = greeting
        // RFC 5321 4.2 and 3.1: 220 to go on; 554 (or any 5xx) refuses for good, 4xx for now.
        guard greeting.code == 220 else {
            if greeting.isPositive { throw SMTPError(.protocolViolation("greeting with code \(greeting.code)"), command: "greeting") }
            throw SMTPError(.reply(greeting), command: "greeting")
        }
        try hello()
        if options.tlsMode == .opportunistic || options.tlsMode == .required, facts.tls == nil {
            if facts.extensions.startTLS {
                let reply = try command("STARTTLS", timeout: options.timeouts.command)
                if reply.code == 220 {
                    try startTLS(command: "STARTTLS")
                    // RFC 3207 4.2: forget everything learnt before TLS.
                    facts.extensions = Extensions()
                    try hello()
                } else if options.tlsMode == .required {
                    throw SMTPError(.reply(reply), command: "STARTTLS")
                } else {
                    facts.startTLSRefused = reply
                }
            } else if options.tlsMode == .required {
                throw SMTPError(.refused(.startTLSUnavailable), command: "STARTTLS")
            }
        }
        if let credentials = options.credentials { try authenticate(credentials) }
        return facts
    }

    /// EHLO, or HELO when the server does not know EHLO (500 to 504).
    private func hello() throws(SMTPError) {
        let reply = try command("EHLO \(options.ehloName)", timeout: options.timeouts.command)
        if reply.code == 250 {
            facts.hello = reply
            facts.extensions = Extensions(ehloReply: reply)
            facts.usedHELO = false
            return
        }
        guard (500...504).contains(reply.code) else { throw SMTPError(.reply(reply), command: "EHLO") }
        let helo = try command("HELO \(options.ehloName)", timeout: options.timeouts.command)
        guard helo.code == 250 else { throw SMTPError(.reply(helo), command: "HELO") }
        facts.hello = helo
        facts.extensions = Extensions()
        facts.usedHELO = true
    }

    private func startTLS(command: String) throws(SMTPError) {
        guard let tlsOptions = options.tls else {
            throw SMTPError(.tls(.setup("no TLS options were given")), command: command)
        }
        // RFC 3207 5: nothing the server sent before the handshake may be used.
        guard !reader.hasBufferedInput else {
            throw SMTPError(.protocolViolation("data after the STARTTLS reply, before the handshake"), command: command)
        }
        do {
            let secured = try TLSStream(over: stream, options: tlsOptions, deadline: .after(options.timeouts.tlsHandshake))
            stream = secured
            facts.tls = secured.info
            trace?(.tls(secured.info))
        } catch {
            throw SMTPError.Failure.stream(error).at(command)
        }
    }

    /// RSET (RFC 5321 4.1.1.5): before the next message on a kept session,
    /// which also proves the server still answers.
    public func reset() throws(SMTPError) {
        let reply = try command("RSET", timeout: options.timeouts.command)
        guard reply.code == 250 else { throw SMTPError(.reply(reply), command: "RSET") }
    }

    /// Ends the session politely; failures no longer matter here.
    public func quit() {
        _ = try? command("QUIT", timeout: 10)   // the answer to QUIT changes nothing
        (stream as? TLSStream)?.shutdown()
    }

    // MARK: Commands and replies

    /// Sends one command line and reads its reply.
    func command(_ line: String, timeout: Double, traced: String? = nil) throws(SMTPError) -> SMTPReply {
        let name = Self.commandName(line)
        try send([line], traced: traced.map { [$0] }, timeout: timeout, command: name)
        return try readReply(command: name, timeout: timeout)
    }

    /// Sends lines in one write (pipelining sends a whole transaction so).
    func send(_ lines: [String], traced: [String]? = nil, timeout: Double, command: String) throws(SMTPError) {
        for line in traced ?? lines { trace?(.sent(line)) }
        let bytes = Array(lines.map { $0 + "\r\n" }.joined().utf8)
        do { try stream.write(bytes, deadline: .after(timeout)) } catch { throw SMTPError.Failure.stream(error).at(command) }
    }

    func readReply(command: String, timeout: Double) throws(SMTPError) -> SMTPReply {
        do {
            var reply = try reader.read(from: stream, deadline: .after(timeout))
            if facts.extensions.enhancedStatusCodes { reply = reply.withEnhancedCode() }
            trace?(.received(reply))
            return reply
        } catch {
            throw error.at(command)
        }
    }

    static func commandName(_ line: String) -> String {
        let upper = line.uppercased()
        for name in ["MAIL FROM", "RCPT TO"] where upper.hasPrefix(name) { return name }
        return String(upper.split(separator: " ").first ?? "")
    }
}
