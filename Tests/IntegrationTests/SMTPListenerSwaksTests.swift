import Foundation
import Glibc
import PosternTesting
import Spool
import Testing

/// The SMTP listener of `postern run` against swaks, the second independent
/// client the issue names (beside Python's smtplib in SMTPListenerTests):
/// what swaks prints of the conversation, and what reached the spool or
/// smtp-sink. Debian 12's swaks (20201014) has no option for MAIL FROM
/// parameters (BODY=, SMTPUTF8), so an 8-bit message goes without BODY= and
/// a non-ASCII address without SMTPUTF8; smtplib covers them with it.
@Suite(.serialized, .enabled(if: PostfixPeer.isAvailable && Swaks.isAvailable))
struct SMTPListenerSwaksTests {
    /// The transcript's lines.
    static func lines(_ transcript: String) -> [String] {
        transcript.split(separator: "\n").map(String.init)
    }

    /// swaks's common arguments: the listener, a sender, and no prompt.
    static func swaks(_ arguments: [String], server: String = "127.0.0.1", port: UInt16,
                      input: String? = nil) throws -> (status: Int32, transcript: String) {
        try Swaks.run(["--server", server, "--port", "\(port)", "--from", "alice@example.org", "--timeout", "30"] + arguments,
                      input: input.map { Data($0.utf8) })
    }

    /// --pipeline: MAIL, both RCPTs and DATA go out before the first reply
    /// (RFC 2920), each reply comes back in order, and the message reaches
    /// smtp-sink through the relay.
    @Test func pipelining() throws {
        let (fixture, port) = try SMTPListenerTests.daemon()
        defer { fixture.stop() }
        let run = try Self.swaks(["--pipeline", "--ehlo", "swaks.example", "--to", "bob@example.net,carol@example.net",
                                  "--data", "-"], port: port, input: "Subject: swaks pipelined\nTo: bob@example.net\n\nhello\n")
        #expect(run.status == 0, "\(run.transcript)")
        let lines = Self.lines(run.transcript)
        #expect(lines.contains("<-  250-PIPELINING"), "\(run.transcript)")
        let mail = try #require(lines.firstIndex { $0.hasPrefix(" -> MAIL FROM:<alice@example.org>") }, "\(run.transcript)")
        let data = try #require(lines.firstIndex(of: " -> DATA"), "\(run.transcript)")
        let firstReply = try #require(lines[mail...].firstIndex { $0.hasPrefix("<-") }, "\(run.transcript)")
        #expect(lines[mail..<data].filter { $0.hasPrefix(" -> RCPT TO:") }.count == 2)
        #expect(data < firstReply, "not pipelined: \(run.transcript)")
        #expect(lines[firstReply..<(firstReply + 4)].map { String($0.prefix(7)) } == ["<-  250", "<-  250", "<-  250", "<-  354"])
        #expect(lines.contains { $0.hasPrefix("<-  250 2.0.0 ") }, "\(run.transcript)")
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["swaks pipelined"])
        let rcpts = fixture.sink.messages().first?.split(separator: "\n").filter { $0.hasPrefix("X-Rcpt-Args: ") }
        #expect(rcpts == ["X-Rcpt-Args: <bob@example.net>", "X-Rcpt-Args: <carol@example.net>"])
    }

    /// An outsider (127.0.0.3 to a listener on 127.0.0.2 that trusts only
    /// 127.0.0.1) is refused at RCPT with 554 5.7.1, and offered no AUTH in
    /// the clear; after STARTTLS, AUTH PLAIN and AUTH LOGIN each let it relay.
    @Test func relayRefusalThenStartTLSAndAuth() throws {
        let (fixture, port, directory) = try SMTPListenerTests.nonLoopbackDaemon()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        defer { fixture.stop() }
        let outsider = ["--local-interface", "127.0.0.3", "--to", "bob@example.net"]

        let refused = try Self.swaks(outsider, server: "127.0.0.2", port: port)
        #expect(refused.status != 0)
        #expect(Self.lines(refused.transcript).contains("<** 554 5.7.1 <bob@example.net>: Relay access denied"), "\(refused.transcript)")

        let clear = try Self.swaks(outsider + ["--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret pass"],
                                   server: "127.0.0.2", port: port)
        #expect(clear.status != 0)
        #expect(!clear.transcript.contains("AUTH PLAIN"), "\(clear.transcript)")
        #expect(Self.lines(clear.transcript).contains { $0.hasPrefix("<-  250") && $0.hasSuffix("STARTTLS") }, "\(clear.transcript)")

        for mechanism in ["PLAIN", "LOGIN"] {
            let run = try Self.swaks(outsider + ["--tls", "--auth", mechanism, "--auth-user", "alice", "--auth-password", "s3cret pass",
                                                 "--header", "Subject: swaks \(mechanism)"], server: "127.0.0.2", port: port)
            #expect(run.status == 0, "\(run.transcript)")
            let lines = Self.lines(run.transcript)
            #expect(lines.contains { $0.hasPrefix("=== TLS started with cipher TLSv1.3") }, "\(run.transcript)")
            #expect(lines.contains("<~  250-AUTH PLAIN LOGIN"), "\(run.transcript)")
            #expect(lines.contains { $0.hasPrefix(" ~> AUTH \(mechanism)") }, "\(run.transcript)")
            #expect(lines.contains { $0.hasPrefix("<~  235 2.7.0 ") }, "\(run.transcript)")
            #expect(lines.contains { $0.hasPrefix("<~  250 2.0.0 ") }, "\(run.transcript)")
        }
        #expect(fixture.waitForLog("msg=received", count: 2))
        let messages = try fixture.spool.names(.queue).map { String(decoding: try fixture.spool.read("queue/\($0)/message"), as: UTF8.self) }
        #expect(messages.count == 2)
        #expect(messages.allSatisfy { $0.contains("([127.0.0.3])") && $0.contains("with ESMTPSA id") })
        #expect(Set(messages.compactMap { $0.split(separator: "\r\n").first { $0.hasPrefix("Subject: ") } })
                == ["Subject: swaks PLAIN", "Subject: swaks LOGIN"])
    }

    /// An 8-bit message is stored byte for byte and marked eight_bit; a
    /// non-ASCII address without SMTPUTF8 on MAIL is refused with 553 5.6.7
    /// (RFC 6531 3.4), as swaks cannot ask for SMTPUTF8.
    @Test func eightBitAndNonASCIIAddress() throws {
        let (fixture, port) = try SMTPListenerTests.daemon(relayPort: 1)
        defer { fixture.stop() }
        let body = "Subject: Gr\u{FC}\u{DF}e\nMessage-ID: <swaks8@example.org>\n\nK\u{F6}ln, Z\u{FC}rich, \u{6771}\u{4EAC}\n"
        let run = try Self.swaks(["--to", "bob@example.net", "--data", "-"], port: port, input: body)
        #expect(run.status == 0, "\(run.transcript)")
        #expect(run.transcript.contains("<-  250-8BITMIME") && run.transcript.contains("<-  250-SMTPUTF8"))
        #expect(fixture.waitForLog("msg=received"))
        let id = try #require(try fixture.spool.names(.queue).first)
        let envelope = try fixture.envelope(id)
        #expect(envelope.eightBit && !envelope.smtputf8)
        let stored = String(decoding: try fixture.spool.read("queue/\(id)/message"), as: UTF8.self)
        // swaks ends DATA with a CRLF of its own before the dot: one empty line more at the end.
        #expect(stored.contains("\r\nSubject: Gr\u{FC}\u{DF}e\r\n"), "\(stored)")
        #expect(stored.hasSuffix("\r\n\r\nK\u{F6}ln, Z\u{FC}rich, \u{6771}\u{4EAC}\r\n\r\n"), "\(stored)")

        let utf8 = try Self.swaks(["--to", "z\u{F6}e@example.net"], port: port)
        #expect(utf8.status != 0)
        #expect(Self.lines(utf8.transcript).contains("<** 553 5.6.7 Non-ASCII address needs SMTPUTF8"), "\(utf8.transcript)")
        #expect(try fixture.spool.names(.queue) == [id])
    }

    /// SIZE: the limit is announced; a larger message (swaks sends no SIZE=)
    /// is refused after its data with 552 5.3.4 and leaves nothing anywhere.
    @Test func sizeRefusal() throws {
        let (fixture, port) = try SMTPListenerTests.daemon(["drop.max_message_size=10000"], relayPort: 1)
        defer { fixture.stop() }
        let big = "Subject: too big\n\n" + String(repeating: String(repeating: "y", count: 70) + "\n", count: 300)
        let run = try Self.swaks(["--to", "bob@example.net", "--data", "-", "--suppress-data"], port: port, input: big)
        #expect(run.status != 0)
        let lines = Self.lines(run.transcript)
        #expect(lines.contains("<-  250-SIZE 10000"), "\(run.transcript)")
        #expect(lines.contains { $0.hasPrefix("<** 552 5.3.4 ") }, "\(run.transcript)")
        #expect(try SMTPListenerTests.leftovers(fixture).isEmpty)
    }
}
