import PosternBase
import PosternCore
import SMTPServer
import Testing

/// The session state machine, line by line, without sockets.
struct ServerSessionTests {
    static let loopback: [UInt8] = [127, 0, 0, 1]
    static let outsider: [UInt8] = [192, 0, 2, 7]

    static func session(_ client: [UInt8] = loopback, configure: (inout SessionSettings) -> Void = { _ in }) -> ServerSession {
        var settings = SessionSettings(hostname: "mail.example.org", maxMessageSize: 10_000, maxRecipients: 2)
        configure(&settings)
        return ServerSession(settings: settings, clientAddress: client, clientText: "client")
    }

    /// Sends a line; returns the reply's code and first line.
    static func send(_ session: inout ServerSession, _ line: String) -> (Int, String, ServerSession.Next) {
        let response = session.handle(line: Array(line.utf8)[...])
        return (response.reply.code, response.reply.lines.first ?? "", response.next)
    }

    /// EHLO without TLS offers the extensions, STARTTLS when a certificate is
    /// configured, and no AUTH (RFC 4954 4: no plaintext mechanism in clear).
    @Test func ehloKeywords() {
        var session = Self.session { $0.tlsAvailable = true; $0.users = ["alice": Array("pw".utf8)] }
        let response = session.handle(line: Array("EHLO client.example".utf8)[...])
        #expect(response.reply.lines == ["mail.example.org", "PIPELINING", "SIZE 10000", "8BITMIME", "SMTPUTF8",
                                         "ENHANCEDSTATUSCODES", "DSN", "CHUNKING", "STARTTLS"])
        #expect(String(decoding: response.reply.wire, as: UTF8.self).hasPrefix("250-mail.example.org\r\n250-PIPELINING\r\n"))
        #expect(Self.send(&session, "AUTH PLAIN AGFsaWNlAHB3").0 == 538)
        #expect(Self.send(&session, "STARTTLS").2 == .startTLS)
        session.tlsStarted()
        #expect(Self.send(&session, "MAIL FROM:<a@example.org>").0 == 503)   // EHLO again first (RFC 3207 4.2)
        let again = session.handle(line: Array("EHLO client.example".utf8)[...])
        #expect(again.reply.lines.suffix(2) == ["AUTH PLAIN LOGIN", "REQUIRETLS"])
        #expect(Self.send(&session, "AUTH PLAIN AGFsaWNlAHB3").0 == 235)
        #expect(session.authenticatedUser == "alice")
    }

    /// Relay: an outside client is refused at RCPT (554 5.7.1) unless its
    /// network is listed or it authenticated; loopback is trusted by default.
    @Test func relayAuthorization() throws {
        var outsider = Self.session(Self.outsider)
        _ = Self.send(&outsider, "EHLO x")
        #expect(Self.send(&outsider, "MAIL FROM:<a@example.org>").0 == 250)
        let refused = outsider.handle(line: Array("RCPT TO:<b@example.net>".utf8)[...])
        #expect(refused.reply.code == 554 && refused.reply.enhanced == "5.7.1")

        var listed = Self.session(Self.outsider) { $0.relay.networks = [try! #require(IPNetwork("192.0.2.0/24"))] }
        _ = Self.send(&listed, "EHLO x")
        _ = Self.send(&listed, "MAIL FROM:<a@example.org>")
        #expect(Self.send(&listed, "RCPT TO:<b@example.net>").0 == 250)

        var untrustedLoopback = Self.session { $0.relay.trustLoopback = false }
        _ = Self.send(&untrustedLoopback, "EHLO x")
        _ = Self.send(&untrustedLoopback, "MAIL FROM:<a@example.org>")
        #expect(Self.send(&untrustedLoopback, "RCPT TO:<b@example.net>").0 == 554)

        var authenticated = Self.session(Self.outsider) { $0.tlsAvailable = true; $0.users = ["bob": Array("pw".utf8)] }
        session(&authenticated, startTLSAndLogin: ["AUTH LOGIN", "Ym9i", "cHc="])
        _ = Self.send(&authenticated, "MAIL FROM:<a@example.org>")
        #expect(Self.send(&authenticated, "RCPT TO:<b@example.net>").0 == 250)
    }

    private func session(_ session: inout ServerSession, startTLSAndLogin lines: [String]) {
        _ = Self.send(&session, "EHLO x")
        _ = Self.send(&session, "STARTTLS")
        session.tlsStarted()
        _ = Self.send(&session, "EHLO x")
        var last = (0, "", ServerSession.Next.proceed)
        for line in lines { last = Self.send(&session, line) }
        #expect(last.0 == 235)
    }

    /// AUTH: a wrong password is 535; "*" cancels; PLAIN with another
    /// authorization identity is refused.
    @Test func authFailures() {
        var session = Self.session { $0.tlsAvailable = true; $0.users = ["alice": Array("pw".utf8)] }
        _ = Self.send(&session, "EHLO x")
        _ = Self.send(&session, "STARTTLS")
        session.tlsStarted()
        _ = Self.send(&session, "EHLO x")
        #expect(Self.send(&session, "AUTH PLAIN AGFsaWNlAHd4").0 == 535)         // "\0alice\0wx"
        #expect(Self.send(&session, "AUTH PLAIN Ym9iAGFsaWNlAHB3").0 == 535)     // "bob\0alice\0pw"
        #expect(Self.send(&session, "AUTH PLAIN").0 == 334)
        #expect(Self.send(&session, "*").0 == 501)
        #expect(Self.send(&session, "AUTH PLAIN not-base64!").0 == 501)
        #expect(Self.send(&session, "AUTH CRAM-MD5").0 == 504)
        #expect(session.authenticatedUser == nil)
    }

    /// MAIL parameters: SIZE over the limit 552, unknown ones 555, REQUIRETLS
    /// without TLS 530; RCPT: NOTIFY and ORCPT kept, <Postmaster> completed,
    /// the recipient limit answered 452, a source route ignored.
    @Test func transactionParameters() throws {
        var session = Self.session()
        _ = Self.send(&session, "EHLO x")
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> SIZE=20000").0 == 552)
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> FOO=1").0 == 555)
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> REQUIRETLS").0 == 530)
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=abc+2B1").0 == 250)
        #expect(Self.send(&session, "RCPT TO:<@relay.example:b@example.net> NOTIFY=NEVER ORCPT=rfc822;B+40example.net").0 == 250)
        #expect(Self.send(&session, "RCPT TO:<Postmaster>").0 == 250)
        #expect(Self.send(&session, "RCPT TO:<c@example.net>").0 == 452)
        let transaction = try #require(session.transaction)
        #expect(transaction.recipients.map(\.smtpForm) == ["b@example.net", "Postmaster@mail.example.org"])
        #expect(transaction.originals == ["b@example.net": "B@example.net"])
        #expect(transaction.neverNotify == 1)
        #expect(Self.send(&session, "DATA").2 == .receiveData)
        let done = session.finishData(.accepted(id: QueueIDGenerator().next()))
        #expect(done.reply.code == 250 && session.transaction == nil)
    }

    /// RET and ENVID on MAIL (RFC 3461 4.3, 4.4) are kept in the transaction,
    /// ENVID as received (xtext); a bad value, a repeated one, an ENVID over
    /// 100 characters or one that decodes to a control character gets 501.
    @Test func retAndEnvelopeID() throws {
        var session = Self.session()
        _ = Self.send(&session, "EHLO x")
        for bad in ["RET=BODY", "RET=HDRS RET=FULL", "ENVID=a+0Db", "ENVID=a+zz", "ENVID=" + String(repeating: "x", count: 101),
                    "ENVID=a ENVID=b", "ENVID=a=b"] {
            #expect(Self.send(&session, "MAIL FROM:<a@example.org> \(bad)").0 == 501, "\(bad)")
        }
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> ret=hdrs ENVID=QQ+2B1+20x" + String(repeating: "y", count: 89)).0 == 250)
        let transaction = try #require(session.transaction)
        #expect(transaction.dsnReturn == .hdrs)
        #expect(transaction.envelopeID == "QQ+2B1+20x" + String(repeating: "y", count: 89))
        _ = Self.send(&session, "RSET")
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> RET=FULL").0 == 250)
        #expect(session.transaction?.dsnReturn == .full && session.transaction?.envelopeID == nil)
    }

    /// Order and syntax: MAIL before EHLO, RCPT before MAIL, DATA without
    /// recipients, nested MAIL; after smtp.max_errors errors, 421 and close.
    @Test func orderAndErrorLimit() {
        var session = Self.session { $0.maxErrors = 5 }
        #expect(Self.send(&session, "MAIL FROM:<a@example.org>").0 == 503)
        #expect(Self.send(&session, "HELO").0 == 501)
        _ = Self.send(&session, "HELO x")
        #expect(Self.send(&session, "MAIL FROM:<a@example.org> SIZE=1").0 == 555)   // parameters need EHLO
        #expect(Self.send(&session, "RCPT TO:<b@example.net>").0 == 503)
        let last = Self.send(&session, "XYZZY")
        #expect(last.0 == 421 && last.2 == .close)
    }

    /// A HELO name with a control character is refused, a C1 one (U+0080 to U+009F) too; found by
    /// tools/fuzz.sh's smtp-server target, which let `EHLO cl\u{8D}x` through.
    @Test func heloNameWithControlCharacter() {
        var session = Self.session()
        for name in ["cl\u{8D}x", "a\u{9B}31m", "a\u{7F}", "a\u{1B}[0m"] {
            #expect(Self.send(&session, "EHLO \(name)").0 == 501)
            #expect(session.heloName == nil)
        }
        #expect(Self.send(&session, "EHLO bücher.example").0 == 250)
        #expect(session.heloName == "bücher.example")
    }

    /// A non-ASCII address needs SMTPUTF8 on MAIL (RFC 6531 3.4).
    @Test func smtputf8Addresses() {
        var session = Self.session()
        _ = Self.send(&session, "EHLO x")
        #expect(Self.send(&session, "MAIL FROM:<jürgen@example.org>").0 == 553)
        #expect(Self.send(&session, "MAIL FROM:<jürgen@example.org> SMTPUTF8").0 == 250)
        #expect(Self.send(&session, "RCPT TO:<zoë@example.net>").0 == 250)
    }

    /// Data outcomes become the replies a client can act on.
    @Test func dataOutcomes() {
        var session = Self.session()
        #expect(session.finishData(.tooBig).reply.code == 552)
        #expect(session.finishData(.lineTooLong).reply.enhanced == "5.6.0")
        #expect(session.finishData(.nul).reply.code == 554)
        #expect(session.finishData(.temporaryFailure("disk full")).reply.code == 451)
    }
}

/// Networks of `smtp.relay_networks`.
struct IPNetworkTests {
    /// Prefixes match bit by bit, IPv4-mapped IPv6 clients as IPv4.
    @Test func matching() throws {
        let network = try #require(IPNetwork("10.1.0.0/16"))
        #expect(network.contains([10, 1, 200, 3]))
        #expect(!network.contains([10, 2, 0, 1]))
        #expect(network.contains(Array(repeating: 0, count: 10) + [0xFF, 0xFF, 10, 1, 2, 3]))
        let v6 = try #require(IPNetwork("2001:db8::/33"))
        #expect(v6.contains(try #require(IPNetwork.bytes(of: "2001:db8:7fff::1"))))
        #expect(!v6.contains(try #require(IPNetwork.bytes(of: "2001:db8:8000::1"))))
        #expect(IPNetwork("192.0.2.1")?.prefixLength == 32)
        #expect(IPNetwork("10.0.0.0/33") == nil && IPNetwork("example.org") == nil && IPNetwork("10.0.0.0/x") == nil)
        #expect(network.description == "10.1.0.0/16")
        #expect(RelayPolicy().trusts([127, 0, 0, 9]) && !RelayPolicy().trusts([192, 0, 2, 1]))
    }
}
