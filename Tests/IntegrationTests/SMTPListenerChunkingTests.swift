import Foundation
import Glibc
import PosternTesting
import Spool
import Testing

/// CHUNKING (RFC 3030) in the SMTP listener, from a Python client that writes
/// BDAT commands and chunks on a raw socket (smtplib has no BDAT).
@Suite(.serialized, .enabled(if: PostfixPeer.isAvailable))
struct SMTPListenerChunkingTests {
    /// The Python helpers: `reply()` reads one reply and returns its code and last line.
    static let client = #"""
        c = socket.create_connection(('127.0.0.1', PORT))
        f = c.makefile('rb')
        def reply():
            while True:
                line = f.readline().decode()
                if line[3] == ' ': return line.strip()
        reply()
        c.sendall(b'EHLO chunks.example\r\n')
        reply()

        """#

    /// Chunks cut anywhere, inside a line and between a CR and its LF, with dots at line
    /// starts (not stuffed in BDAT) and BDAT 0 LAST to end: the message reaches smtp-sink
    /// as the same message sent with DATA would, and a second one follows on the session.
    @Test func chunkedMessageArrivesWhole() throws {
        let (fixture, port) = try SMTPListenerTests.daemon()
        defer { fixture.stop() }
        let message = "From: a@example.org\r\nTo: b@example.net\r\nSubject: chunks\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
            + "Message-ID: <chunks@example.org>\r\n\r\n.leading dot\r\nline two\r\n..two dots\r\nlast line\r\n"
        let out = try SMTPListenerTests.python(Self.client + #"""
            message = sys.stdin.buffer.read()
            cuts = [0, 30, message.index(b'\r\n\r\n') + 1, message.index(b'line two') + 4, len(message)]
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n')
            print(reply()[:3], reply()[:3])
            for a, b in zip(cuts, cuts[1:]):
                c.sendall(b'BDAT %d\r\n' % (b - a) + message[a:b])
                print(reply()[:3], end=' ')
            c.sendall(b'BDAT 0 LAST\r\n')
            print(reply()[:24].strip())
            two = b'Subject: two\r\n\r\nbody'
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT %d LAST\r\n' % len(two) + two)
            print(reply()[:3], reply()[:3], reply()[:24].strip())
            c.sendall(b'QUIT\r\n')
            print(reply()[:3])
            """#, port: port, input: message)
        #expect(out == "250 250\n250 250 250 250 250 2.0.0 Ok: queued as\n250 250 250 2.0.0 Ok: queued as\n221\n", "\(out)")
        #expect(fixture.waitForSink(2))
        let stored = try FileManager.default.contentsOfDirectory(atPath: fixture.sink.directory + "/dump")
        let texts = try stored.map { try String(contentsOfFile: fixture.sink.directory + "/dump/" + $0, encoding: .utf8) }
        let first = try #require(texts.first { $0.contains("Subject: chunks") })
        let start = try #require(first.range(of: "From: a@example.org"))
        // smtp-sink stores LF line ends, and one more at the end.
        #expect(String(first[start.lowerBound...]) == message.replacingOccurrences(of: "\r\n", with: "\n") + "\n")
        let second = try #require(texts.first { $0.contains("Subject: two") })
        #expect(second.hasSuffix("\nbody\n\n"), "the last line, without a line end, gets one")
        #expect(fixture.log.contains("msg=received"))
    }

    /// A message over the size limit is refused at the chunk that crosses it (552); the
    /// chunks already pipelined after it are read and get the same reply, BDAT LAST ends
    /// the transaction, nothing is left in the spool, the session goes on, and the
    /// refusal is counted once by reason.
    @Test func refusedMidwayThenTheSessionGoesOn() throws {
        let (fixture, port) = try SMTPListenerTests.daemon(["drop.max_message_size=10000", "metrics.listen=127.0.0.1:0"],
                                                           relayPort: 1)
        defer { fixture.stop() }
        let metrics = try #require(fixture.metricsPort)
        let out = try SMTPListenerTests.python(Self.client + #"""
            chunk = (b'y' * 70 + b'\r\n') * 80
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n'
                      + b'BDAT %d\r\n' % len(chunk) + chunk + b'BDAT %d\r\n' % len(chunk) + chunk
                      + b'BDAT %d\r\n' % len(chunk) + chunk + b'BDAT 5 LAST\r\nlast\n')
            print([reply()[:9] for _ in range(6)])
            c.sendall(b'BDAT 4\r\nNOOP')
            print(reply()[:3])
            c.sendall(b'NOOP\r\n')
            print(reply()[:3])
            """#, port: port)
        #expect(out == "['250 2.1.0', '250 2.1.5', '250 2.0.0', '552 5.3.4', '552 5.3.4', '552 5.3.4']\n503\n250\n", "\(out)")
        #expect(FullDiskTests.metric(metrics, "postern_smtp_messages_total{result=\"rejected\",reason=\"too_big\"}") == 1)
        #expect(fixture.log.contains("msg=refused client=127.0.0.1 reason=too_big"), "\(fixture.log)")
        #expect(try SMTPListenerTests.leftovers(fixture).isEmpty)
    }

    /// RSET between chunks, and a client gone before BDAT LAST, leave nothing of the message.
    @Test func unfinishedChunksLeaveNothing() throws {
        let (fixture, port) = try SMTPListenerTests.daemon(["metrics.listen=127.0.0.1:0"], relayPort: 1)
        defer { fixture.stop() }
        let metrics = try #require(fixture.metricsPort)
        let out = try SMTPListenerTests.python(Self.client + #"""
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 16\r\nSubject: reset\r\n')
            print(reply()[:3], reply()[:3], reply()[:3])
            c.sendall(b'RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 15\r\nSubject: gone\r\n')
            print(reply()[:3], reply()[:3], reply()[:3], reply()[:3])
            c.close()
            """#, port: port)
        #expect(out == "250 250 250\n250 250 250 250\n", "\(out)")
        #expect(BackgroundProcess.waitUntil(timeout: 10) {
            FullDiskTests.metric(metrics, "postern_smtp_sessions_total{result=\"disconnected\"}") == 1
        })
        #expect(try SMTPListenerTests.leftovers(fixture).isEmpty)
        #expect(!fixture.log.contains("msg=received"))
    }

    /// After RSET between chunks the next transaction starts from nothing: the chunk sent before
    /// the RSET is not part of the message that follows.
    @Test func resetBetweenChunksStartsAfresh() throws {
        let (fixture, port) = try SMTPListenerTests.daemon(relayPort: 1)
        defer { fixture.stop() }
        let out = try SMTPListenerTests.python(Self.client + #"""
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 16\r\nSubject: reset\r\n')
            print(reply()[:3], reply()[:3], reply()[:3])
            fresh = b'Subject: fresh\r\n\r\nbody\r\n'
            c.sendall(b'RSET\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT %d LAST\r\n' % len(fresh) + fresh)
            print(reply()[:3], reply()[:3], reply()[:3], reply()[:24].strip())
            c.sendall(b'QUIT\r\n')
            reply()
            """#, port: port)
        #expect(out == "250 250 250\n250 250 250 250 2.0.0 Ok: queued as\n", "\(out)")
        #expect(fixture.waitForLog("msg=received"))
        let queued = try fixture.spool.names(.queue)
        try #require(queued.count == 1, "\(queued)")
        let message = String(decoding: try fixture.spool.read("queue/\(queued[0])/message"), as: UTF8.self)
        #expect(message.contains("Subject: fresh\r\n") && message.hasSuffix("\r\nbody\r\n"))
        #expect(!message.contains("Subject: reset"), "\(message)")
    }
}
