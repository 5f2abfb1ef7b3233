import Foundation
import PosternTesting
import Testing
@testable import SMTP

/// Transactions against a scripted server: pipelining, recipients, limits, DATA.
struct SMTPTransactionTests {
    typealias H = SessionHarness

    /// Without PIPELINING each command waits for its reply; the message arrives as sent.
    @Test func plainTransaction() throws {
        let message = "Subject: t\r\n\r\nhello\r\n"
        let (report, outcome) = try H.run(H.opening() + [
            .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
            .expect("RCPT TO:<bob@example.net>"), .send("250 ok"),
            .expect("DATA"), .send("354 go ahead"),
            .receiveData, .send("250 2.0.0 queued as 1234"),
        ] + H.quit) { client in
            try client.open()
            let report = client.deliver(H.transaction(["bob@example.net"], message: message))
            client.quit()
            return report
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.codes == ["bob@example.net": 250])
        #expect(report.delivered == ["bob@example.net"])
        #expect(report.transactions == 1 && report.connectionUsable)
        #expect(outcome.messages == [Array(message.utf8)])
    }

    /// With PIPELINING, MAIL, every RCPT and DATA go out before any reply; a refused recipient does not stop the others.
    @Test func pipelinedPartialRejection() throws {
        let (report, outcome) = try H.run(H.opening(["PIPELINING"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .expect("RCPT TO:<a@x.example>"),
            .expect("RCPT TO:<b@x.example>"), .expect("RCPT TO:<c@x.example>"), .expect("DATA"),
            .send("250 ok\n250 ok\n550 5.1.1 no such user\n250 ok\n354 go"),
            .receiveData, .send("250 queued"),
        ] + H.quit) { client in
            try client.open()
            let report = client.deliver(H.transaction(["a@x.example", "b@x.example", "c@x.example"]))
            client.quit()
            return report
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.codes == ["a@x.example": 250, "b@x.example": 550, "c@x.example": 250])
        let rejected = try #require(report.error(for: "b@x.example"))
        #expect(rejected.isPermanent && rejected.command == "RCPT TO")
        #expect(rejected.reply?.lines == ["5.1.1 no such user"])
    }

    /// MAIL FROM carries SIZE, BODY=8BITMIME, SMTPUTF8 and REQUIRETLS when the message and the server call for them.
    @Test func mailParameters() throws {
        var transaction = H.transaction(["jürgen@x.example"])
        transaction.eightBit = true
        transaction.smtputf8 = true
        let size = transaction.message.size
        let (report, outcome) = try H.run(H.opening(["SIZE 1000000", "8BITMIME", "SMTPUTF8"]) + [
            .expect("MAIL FROM:<alice@example.org> SIZE=\(size) BODY=8BITMIME SMTPUTF8"), .send("250 ok"),
            .expect("RCPT TO:<jürgen@x.example>"), .send("250 ok"),
            .expect("DATA"), .send("354 go"), .receiveData, .send("250 ok"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(transaction)
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.delivered == ["jürgen@x.example"])
    }

    /// Issue #19: a recipient an alias rewrote carries its original as ORCPT (RFC 3461 4.2, xtext) to a
    /// server that offers DSN; to one that does not, and for recipients without an original, nothing.
    @Test func orcptForRewrittenRecipients() throws {
        var transaction = H.transaction(["ops@x.example", "bob@x.example", "u@x.example"])
        transaction.originalRecipients = ["ops@x.example": "root+cron=1@vm", "u@x.example": "jürgen@vm"]
        for dsn in [true, false] {
            let orcpt = dsn ? " ORCPT=rfc822;root+2Bcron+3D1@vm" : ""
            let (report, outcome) = try H.run(H.opening(dsn ? ["DSN"] : []) + [
                .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
                .expect("RCPT TO:<ops@x.example>\(orcpt)"), .send("250 ok"),
                .expect("RCPT TO:<bob@x.example>"), .send("250 ok"),
                .expect("RCPT TO:<u@x.example>"), .send("250 ok"),
                .expect("DATA"), .send("354 go"), .receiveData, .send("250 ok"),
            ] + H.quit) { client in
                try client.open()
                defer { client.quit() }
                return client.deliver(transaction)
            }
            #expect(outcome.failures.isEmpty, "\(outcome.failures)")
            #expect(report.delivered.count == 3)
        }
    }

    /// RET and ENVID (RFC 3461 4.3, 4.4) go on MAIL FROM, the ENVID as stored
    /// (xtext), to a server that offers DSN; to one that does not, never.
    @Test func retAndEnvelopeIDOnlyWithDSN() throws {
        var transaction = H.transaction(["bob@x.example"])
        transaction.dsnReturn = .hdrs
        transaction.envelopeID = "QQ+2B1+20x"
        for dsn in [true, false] {
            let parameters = dsn ? " RET=HDRS ENVID=QQ+2B1+20x" : ""
            let (report, outcome) = try H.run(H.opening(dsn ? ["DSN"] : []) + [
                .expect("MAIL FROM:<alice@example.org>\(parameters)"), .send("250 ok"),
                .expect("RCPT TO:<bob@x.example>"), .send("250 ok"),
                .expect("DATA"), .send("354 go"), .receiveData, .send("250 ok"),
            ] + H.quit) { client in
                try client.open()
                defer { client.quit() }
                return client.deliver(transaction)
            }
            #expect(outcome.failures.isEmpty, "\(outcome.failures)")
            #expect(report.delivered == ["bob@x.example"])
        }
    }

    /// A message larger than the server's SIZE is refused, permanently, before MAIL.
    @Test func sizeRefusal() throws {
        let (report, outcome) = try H.run(H.opening(["SIZE 10"]) + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example"]))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        let error = try #require(report.error(for: "a@x.example"))
        #expect(error.isPermanent)
        #expect(error.kind == .refused(.messageTooLarge(size: H.transaction([]).message.size, limit: 10)))
    }

    /// A message that needs SMTPUTF8 or REQUIRETLS is not sent to a server without them; both are temporary.
    @Test func missingExtensions() throws {
        var utf8 = H.transaction(["jürgen@x.example"])
        utf8.smtputf8 = true
        var requireTLS = H.transaction(["a@x.example"])
        requireTLS.requireTLS = true
        let (reports, outcome) = try H.run(H.opening(["REQUIRETLS"]) + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return (client.deliver(utf8), client.deliver(requireTLS))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        let first = try #require(reports.0.error(for: "jürgen@x.example"))
        #expect(first.kind == .refused(.smtputf8Unsupported) && !first.isPermanent)
        // REQUIRETLS is announced, but not over TLS: not good enough (RFC 8689 4.2.1).
        let second = try #require(reports.1.error(for: "a@x.example"))
        #expect(second.kind == .refused(.requireTLSUnsupported) && !second.isPermanent)
    }

    /// RCPTMAX splits the recipients into transactions on one connection, with RSET between them.
    @Test func recipientLimit() throws {
        let (report, outcome) = try H.run(H.opening(["LIMITS RCPTMAX=2"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
            .expect("RCPT TO:<a@x.example>"), .send("250 ok"),
            .expect("RCPT TO:<b@x.example>"), .send("250 ok"),
            .expect("DATA"), .send("354 go"), .receiveData, .send("250 first"),
            .expect("RSET"), .send("250 reset"),
            .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
            .expect("RCPT TO:<c@x.example>"), .send("250 ok"),
            .expect("DATA"), .send("354 go"), .receiveData, .send("250 second"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example", "b@x.example", "c@x.example"]))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.transactions == 2)
        #expect(report.delivered == ["a@x.example", "b@x.example", "c@x.example"])
        #expect(outcome.messages.count == 2)
    }

    /// A 452 after an accepted recipient moves that recipient and the rest into the next transaction.
    @Test func tooManyRecipients452() throws {
        let (report, outcome) = try H.run(H.opening(["PIPELINING"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .expect("RCPT TO:<a@x.example>"),
            .expect("RCPT TO:<b@x.example>"), .expect("RCPT TO:<c@x.example>"), .expect("DATA"),
            .send("250 ok\n250 ok\n452 4.5.3 too many recipients\n452 4.5.3 too many recipients\n354 go"),
            .receiveData, .send("250 first"),
            .expect("RSET"), .send("250 reset"),
            .expect("MAIL FROM:<alice@example.org>"), .expect("RCPT TO:<b@x.example>"),
            .expect("RCPT TO:<c@x.example>"), .expect("DATA"),
            .send("250 ok\n250 ok\n250 ok\n354 go"), .receiveData, .send("250 second"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example", "b@x.example", "c@x.example"]))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.transactions == 2)
        #expect(Set(report.delivered) == ["a@x.example", "b@x.example", "c@x.example"])
    }

    /// A 452 for the first recipient is an ordinary temporary failure, not a split.
    @Test func first452IsTemporary() throws {
        let (report, outcome) = try H.run(H.opening() + [
            .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
            .expect("RCPT TO:<a@x.example>"), .send("452 4.2.2 mailbox full"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example"]))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(report.transactions == 1)
        let error = try #require(report.error(for: "a@x.example"))
        #expect(!error.isPermanent && error.code == 452)
    }

    /// Pipelined, with every recipient refused: the DATA refusal stands and no message is sent.
    @Test func noAcceptedRecipientPipelined() throws {
        let (report, outcome) = try H.run(H.opening(["PIPELINING"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .expect("RCPT TO:<a@x.example>"), .expect("DATA"),
            .send("250 ok\n550 no\n554 no valid recipients"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example"]))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.messages.isEmpty)
        #expect(report.codes == ["a@x.example": 550])
    }

    /// Lines starting with a dot are dot-stuffed on the wire; the server sees them doubled.
    @Test func dotStuffing() throws {
        let message = "Subject: dots\r\n\r\n.hidden\r\n.\r\n..two\r\nend\r\n"
        let (_, outcome) = try H.run(H.opening() + [
            .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"), .expect("RCPT TO:<a@x.example>"), .send("250 ok"),
            .expect("DATA"), .send("354 go"), .receiveData, .send("250 ok"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example"], message: message))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.messages == [Array("Subject: dots\r\n\r\n..hidden\r\n..\r\n...two\r\nend\r\n".utf8)])
    }

    /// A message with a bare LF or bare CR is refused before MAIL FROM is sent.
    @Test(arguments: ["Subject: x\r\n\r\nbare\nlf\r\n", "Subject: x\r\n\r\nbare\rcr\r\n", "Subject: x\r\n\r\nend\r"])
    func bareLineEndings(_ message: String) throws {
        let (report, outcome) = try H.run(H.opening() + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return client.deliver(H.transaction(["a@x.example"], message: message))
        }
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        let error = try #require(report.error(for: "a@x.example"))
        guard case .refused(.bareLineEnding) = error.kind else {
            Issue.record("expected a bare line ending refusal, got \(error)")
            return
        }
        #expect(error.isPermanent)
    }

    /// A server that answers MAIL with 5xx and hangs up leaves a permanent result, not a network error.
    @Test func hangUpAfter5xx() throws {
        let (report, _) = try H.run(H.opening(["PIPELINING"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .expect("RCPT TO:<a@x.example>"), .expect("DATA"),
            .send("554 5.7.1 go away"), .close,
        ]) { client in
            try client.open()
            return client.deliver(H.transaction(["a@x.example"]))
        }
        let error = try #require(report.error(for: "a@x.example"))
        #expect(error.isPermanent && error.code == 554 && error.command == "MAIL FROM")
        #expect(!report.connectionUsable)
    }

    /// Enhanced codes are read only when announced, and only when their class matches the reply's.
    @Test func enhancedStatusCodes() throws {
        let (reports, _) = try H.run(H.opening(["ENHANCEDSTATUSCODES"]) + [
            .expect("MAIL FROM:<alice@example.org>"), .send("250 2.1.0 ok"),
            .expect("RCPT TO:<a@x.example>"), .send("550 5.1.1 unknown"),
            .expect("MAIL FROM:<alice@example.org>"), .send("250 2.1.0 ok"),
            .expect("RCPT TO:<b@x.example>"), .send("450 5.7.1 mismatched class"),
        ] + H.quit) { client in
            try client.open()
            defer { client.quit() }
            return (client.deliver(H.transaction(["a@x.example"])), client.deliver(H.transaction(["b@x.example"])))
        }
        #expect(reports.0.error(for: "a@x.example")?.enhanced == EnhancedStatusCode(codeClass: 5, subject: 1, detail: 1))
        #expect(reports.1.error(for: "b@x.example")?.enhanced == nil)
        #expect(reports.1.error(for: "b@x.example")?.code == 450)
    }
}
