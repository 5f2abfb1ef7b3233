import PosternBase
import PosternCore
import SMTPServer
import Testing

/// CHUNKING (RFC 3030) in the session state machine: BDAT's syntax, the
/// chunks read even when refused, and how a transaction in chunks ends.
struct ServerSessionChunkingTests {
    static let id = QueueID("01M91SZJBJDSJACEX2G9D9PEQQ")!

    static func inTransaction(maxErrors: Int = 10) -> ServerSession {
        var session = ServerSessionTests.session { $0.maxErrors = maxErrors }
        _ = ServerSessionTests.send(&session, "EHLO client.example")
        _ = ServerSessionTests.send(&session, "MAIL FROM:<a@example.org>")
        _ = ServerSessionTests.send(&session, "RCPT TO:<b@example.net>")
        return session
    }

    /// A size that cannot be read leaves the octets to be read as commands (501); any other
    /// refused BDAT has its chunk read and thrown away (RFC 3030 2).
    @Test func syntaxAndRefusedChunks() {
        var session = ServerSessionTests.session()
        _ = ServerSessionTests.send(&session, "EHLO client.example")
        for bad in ["BDAT", "BDAT x", "BDAT -1", "BDAT +5", "BDAT 10 MORE", "BDAT 10 LAST x", "BDAT 1234567890123456789"] {
            let reply = ServerSessionTests.send(&session, bad)
            #expect(reply.0 == 501 && reply.2 == .proceed, "\(bad)")
        }
        #expect(ServerSessionTests.send(&session, "BDAT 12 LAST") == (503, "Error: need MAIL command", .discardChunk(size: 12)))
        _ = ServerSessionTests.send(&session, "MAIL FROM:<a@example.org>")
        #expect(ServerSessionTests.send(&session, "BDAT 7").2 == .discardChunk(size: 7), "no recipient yet: 554, chunk read")
        _ = ServerSessionTests.send(&session, "RCPT TO:<b@example.net>")
        #expect(ServerSessionTests.send(&session, "bdat 0 last").2 == .receiveChunk(size: 0, last: true))
    }

    /// Chunks are stored until BDAT LAST, which ends the transaction with the message's fate;
    /// DATA may not follow BDAT in one transaction.
    @Test func chunksThenLast() {
        var session = Self.inTransaction()
        #expect(ServerSessionTests.send(&session, "BDAT 100").2 == .receiveChunk(size: 100, last: false))
        #expect(session.finishChunk(.stored(octets: 100), last: false).reply.code == 250)
        #expect(ServerSessionTests.send(&session, "DATA").0 == 503)
        #expect(ServerSessionTests.send(&session, "BDAT 50 LAST").2 == .receiveChunk(size: 50, last: true))
        let end = session.finishChunk(.finished(.accepted(id: Self.id)), last: true)
        #expect(end.reply.code == 250 && end.reply.lines == ["Ok: queued as \(Self.id)"])
        #expect(session.transaction == nil)
        #expect(ServerSessionTests.send(&session, "MAIL FROM:<c@example.org>").0 == 250, "a new transaction may start")
        #expect(session.errors == 1, "only the DATA")
    }

    /// A message refused before its last chunk: the chunks already pipelined get the same
    /// reply, the refusal counts as one error, and BDAT LAST ends the transaction.
    @Test func refusalBeforeTheLastChunk() {
        var session = Self.inTransaction()
        _ = ServerSessionTests.send(&session, "BDAT 6000")
        #expect(session.finishChunk(.stored(octets: 6000), last: false).reply.code == 250)
        _ = ServerSessionTests.send(&session, "BDAT 6000")
        #expect(session.finishChunk(.finished(.tooBig), last: false).reply.code == 552)
        #expect(session.transaction != nil, "kept until BDAT LAST")
        _ = ServerSessionTests.send(&session, "BDAT 6000")
        #expect(session.finishChunk(.finished(.tooBig), last: false).reply.code == 552)
        _ = ServerSessionTests.send(&session, "BDAT 10 LAST")
        let end = session.finishChunk(.finished(.tooBig), last: true)
        #expect(end.reply.code == 552 && end.reply.enhanced == "5.3.4")
        #expect(session.transaction == nil)
        #expect(session.errors == 1)
    }

    /// RSET ends a transaction in chunks; so does a refusal at the error limit, with 421.
    @Test func resetAndErrorLimit() {
        var session = Self.inTransaction()
        _ = ServerSessionTests.send(&session, "BDAT 10")
        _ = session.finishChunk(.stored(octets: 10), last: false)
        #expect(ServerSessionTests.send(&session, "RSET").0 == 250)
        #expect(session.transaction == nil)

        var limited = Self.inTransaction(maxErrors: 1)
        _ = ServerSessionTests.send(&limited, "BDAT 10 LAST")
        let end = limited.finishChunk(.finished(.nul), last: true)
        #expect(end.reply.code == 421 && end.next == .close)
    }
}
