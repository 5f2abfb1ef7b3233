import Foundation
import Glibc
import PosternCore
import PosternTesting
import Spool
import Testing

/// The SMTP listener of `postern run` against Python's smtplib, an
/// independent client, on loopback; the daemon relays to smtp-sink.
@Suite(.serialized, .enabled(if: PostfixPeer.isAvailable))
struct SMTPListenerTests {
    /// A daemon with a listener on a free port; `relayPort: 1` (nothing
    /// listens there) keeps mail in the queue.
    static func daemon(_ overrides: [String] = [], relayPort: UInt16? = nil,
                       listen: String = "127.0.0.1:0") throws -> (DaemonFixture, UInt16) {
        let fixture = try DaemonFixture(overrides: ["smtp.listen=[\"\(listen)\"]"] + overrides, relayPort: relayPort)
        try fixture.start()
        let port = try #require(fixture.smtpPort, "no smtp listening line: \(fixture.log)")
        return (fixture, port)
    }

    /// Runs a Python program with smtplib imported and PORT set; `input` on its standard input.
    static func python(_ body: String, port: UInt16, input: String? = nil) throws -> String {
        try PythonScript.run("import smtplib, socket, sys, ssl, json, time\nPORT = \(port)\n" + body,
                             input: input.map { Data($0.utf8) })
    }

    /// The message as smtp-sink stored it (with LF line ends), without what
    /// smtp-sink puts first: its X- lines and its own Received: field.
    static func sinkMessage(_ fixture: DaemonFixture) throws -> String {
        let dump = fixture.sink.directory + "/dump"
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: dump).first)
        var lines = try String(contentsOfFile: dump + "/" + name, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)[...]
        while lines.first?.hasPrefix("X-") == true { lines = lines.dropFirst() }
        if lines.first?.hasPrefix("Received: ") == true {
            lines = lines.dropFirst()
            while lines.first?.hasPrefix("\t") == true { lines = lines.dropFirst() }
        }
        return lines.joined(separator: "\n")
    }

    /// Every message directory left anywhere in the spool, temporary ones
    /// included, once the daemon has stopped (it must exit 0). Stopped,
    /// because while it runs `tmp/` holds blanks (spool-layout.md 6.4), and a
    /// blank made ahead that an unfinished message took and left behind
    /// would look just like one: the daemon removes its blanks as it stops,
    /// so whatever else is left, a refused message left.
    static func leftovers(_ fixture: DaemonFixture) throws -> [String] {
        let status = fixture.stop()
        return try fixture.spool.names(.drop) + fixture.spool.names(.queue) + fixture.spool.temporaryNames()
            + (status == 0 ? [] : ["(the daemon exited \(status))"])
    }

    /// End to end: submitted by SMTP, the message reaches smtp-sink through the
    /// relay transport byte for byte, with only the Received: line added on top.
    @Test func endToEndThroughTheRelay() throws {
        let (fixture, port) = try Self.daemon()
        defer { fixture.stop() }
        let message = "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: e2e\r\n"
            + "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <e2e@example.org>\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + "Grüße aus Köln\r\n.leading dot\r\n..two dots\r\n\r\nlast line\r\n"
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            s.ehlo('client.example')
            print(s.sendmail('alice@example.org', ['bob@example.net'], sys.stdin.buffer.read(), mail_options=['BODY=8BITMIME']))
            s.quit()
            """, port: port, input: message)
        #expect(out == "{}\n")
        #expect(fixture.waitForSink(1))
        // smtp-sink stores LF line ends, and one more at the end.
        let text = try Self.sinkMessage(fixture)
        #expect(text.hasPrefix("Received: from client.example ([127.0.0.1])\n\tby mail.postern.test (Postern) with ESMTP id "))
        let start = try #require(text.range(of: "From: Alice"))
        #expect(String(text[start.lowerBound...]) == message.replacingOccurrences(of: "\r\n", with: "\n") + "\n")
        // Only the Received: field (three lines here) was added above the submitter's header section.
        #expect(text[..<start.lowerBound].split(separator: "\n").count == 3)
        #expect(fixture.log.contains("msg=received"))
    }

    /// The listener queues what it receives itself: the message goes from
    /// tmp/ straight into queue/ (never through drop/, so the daemon accepts
    /// no drop: no "accepted" line) and is delivered; a message to a local
    /// recipient goes through drop/ instead, where acceptance rewrites it
    /// through the aliases (spool-layout.md 6.1, "Straight into the queue").
    @Test func straightIntoTheQueueUnlessLocal() throws {
        let aliases = try LocalRecipientsEndToEndTests.aliasesFile("postmaster: ops@example.net\n")
        let (fixture, port) = try Self.daemon(["queue.keep_retired=1h", "local.aliases=\(aliases)"])
        defer { fixture.stop() }
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            print(s.sendmail('alice@example.org', ['bob@example.net'], b'Subject: remote\\r\\n\\r\\nhi\\r\\n'))
            print(s.sendmail('alice@example.org', ['postmaster@mail.postern.test'], b'Subject: local\\r\\n\\r\\nhi\\r\\n'))
            s.quit()
            """, port: port)
        #expect(out == "{}\n{}\n")
        #expect(fixture.waitForSink(2))
        #expect(fixture.waitForEmptyQueue())
        let received = fixture.log.split(separator: "\n").filter { $0.contains("msg=received") }
        let ids = received.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("id=") }.map { String($0.dropFirst(3)) } }
        try #require(ids.count == 2, "\(received)")
        let accepted = fixture.log.split(separator: "\n").filter { $0.contains("msg=accepted") }
        #expect(!accepted.contains { $0.contains("id=\(ids[0])") }, "the remote message went through drop/")
        #expect(accepted.contains { $0.contains("id=\(ids[1])") }, "the local message skipped drop/")
        let local = try Envelope.decode(fixture.spool.read("retired/\(ids[1])/envelope.json"))
        #expect(local.recipients.map(\.address) == ["ops@example.net"])
        #expect(local.recipients.map(\.original) == ["postmaster@mail.postern.test"])
        let remote = try Envelope.decode(fixture.spool.read("retired/\(ids[0])/envelope.json"))
        #expect(remote.recipients.map(\.state) == [.delivered])
    }

    /// A delivered message's directory is kept in tmp/ as it is (`BlankPool`),
    /// and once an fsync of queue/ (the next message's commit) has made its
    /// removal durable, a later message is built in it: the same directory
    /// inode goes round, the message arrives whole, and a stopped daemon leaves
    /// no blank behind (spool-layout.md 6.4, "Blanks"). Blanks made ahead
    /// (empty) serve the second message meanwhile.
    @Test func deliveredDirectoryCarriesALaterMessage() throws {
        let (fixture, port) = try Self.daemon()
        defer { fixture.stop() }
        let tmp = fixture.spool.layout.tmp
        /// The kept blanks in tmp/ by name (those holding a delivered message
        /// and its envelope; made ones are empty, and may be half made as
        /// this looks): their directory inodes, once there are `count` of them.
        func kept(_ count: Int) -> [String: ino_t]? {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: tmp) else { return nil }
            var found: [String: ino_t] = [:]
            for name in names {
                var info = stat(), message = stat()
                if lstat(tmp + "/" + name, &info) == 0,
                   (try? FileManager.default.contentsOfDirectory(atPath: tmp + "/" + name).sorted()) == ["envelope.json", "message"],
                   lstat(tmp + "/" + name + "/message", &message) == 0, message.st_size > 0 {
                    found[name] = info.st_ino
                }
            }
            return found.count == count ? found : nil
        }
        func send(_ subject: String, then count: Int) throws -> [String: ino_t] {
            let out = try Self.python("""
                s = smtplib.SMTP('127.0.0.1', PORT)
                print(s.sendmail('alice@example.org', ['bob@example.net'], b'Subject: \(subject)\\r\\n\\r\\nbody of \(subject)\\r\\n'))
                s.quit()
                """, port: port)
            #expect(out == "{}\n")
            #expect(fixture.waitForSink(count))
            #expect(fixture.waitForEmptyQueue())
            var found: [String: ino_t]?
            #expect(BackgroundProcess.waitUntil(timeout: 60) {
                found = kept(min(count, 2))
                return found != nil
            }, "kept blanks in tmp/: \(count)")
            return try #require(found)
        }
        // The first blank waits for the second message's commit to fsync queue/; the third message takes it.
        let first = try send("first", then: 1)
        let second = try send("second", then: 2)
        #expect(second.values.contains(try #require(first.values.first)), "the second message should not have had it yet")
        let third = try send("third", then: 3)
        let reused = Set(third.values).intersection(first.values)
        #expect(reused.count == 1, "the third message was not built in the first one's directory: \(first) \(third)")
        #expect(Set(third.keys).isDisjoint(with: first.keys), "the blank of the first message is still there under its name")
        let bodies = fixture.sink.messages()
        #expect(bodies.contains { $0.contains("body of third") && !$0.contains("body of first") })
        #expect(fixture.stop() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty)
    }

    /// With nothing delivered (the relay refuses connections), no message
    /// leaves a blank: the first message, finding none, has a batch of 32
    /// blanks made ahead (spool-layout.md 6.4, "Blanks made ahead"), private
    /// and empty, counted in the metrics once the pool has them, and the
    /// next message is built in one of them, whole. A stopped daemon
    /// removes the rest.
    @Test func blanksAreMadeAheadWhenNothingIsDelivered() throws {
        let (fixture, port) = try Self.daemon(["metrics.listen=127.0.0.1:0"], relayPort: 1)
        defer { fixture.stop() }
        let metrics = try #require(fixture.metricsPort)
        #expect(FullDiskTests.metric(metrics, "postern_smtp_blanks_made_total") == 0)
        let tmp = fixture.spool.layout.tmp
        func send(_ subject: String) throws {
            let out = try Self.python("""
                s = smtplib.SMTP('127.0.0.1', PORT)
                print(s.sendmail('alice@example.org', ['bob@example.net'], b'Subject: \(subject)\\r\\n\\r\\nbody of \(subject)\\r\\n'))
                s.quit()
                """, port: port)
            #expect(out == "{}\n")
        }
        /// The made blanks in tmp/ by directory inode, once there are some:
        /// each the daemon's, 0700, holding its two files, empty and 0600.
        func made() -> [ino_t: String]? {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: tmp), !names.isEmpty else { return nil }
            var found: [ino_t: String] = [:]
            for name in names {
                let path = tmp + "/" + name
                var info = stat(), message = stat(), envelope = stat()
                guard lstat(path, &info) == 0, info.st_mode & 0o7777 == 0o700, info.st_uid == geteuid(),
                      (try? FileManager.default.contentsOfDirectory(atPath: path).sorted()) == ["envelope.json", "message"],
                      lstat(path + "/message", &message) == 0, lstat(path + "/envelope.json", &envelope) == 0,
                      [message, envelope].allSatisfy({ $0.st_size == 0 && $0.st_mode == S_IFREG | 0o600 && $0.st_nlink == 1 })
                else { return nil }
                found[info.st_ino] = name
            }
            return found
        }
        try send("first")
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            FullDiskTests.metric(metrics, "postern_smtp_blanks_made_total") == 32
        }, "no batch of blanks made ahead")
        let blanks = try #require(made())
        #expect(blanks.count == 32)
        let before = Set(try fixture.spool.names(.queue))
        try send("second")
        let id = try #require(Set(try fixture.spool.names(.queue)).subtracting(before).first)
        let queued = fixture.spool.layout.directory(.queue) + "/" + id
        var info = stat()
        #expect(lstat(queued, &info) == 0 && blanks[info.st_ino] != nil, "the second message was not built in a blank made ahead")
        let message = try String(contentsOfFile: queued + "/message", encoding: .utf8)
        #expect(message.hasPrefix("Received: ") && message.hasSuffix("\r\n\r\nbody of second\r\n"), "\(message)")
        #expect(try fixture.envelope(id).recipients.map(\.address) == ["bob@example.net"])
        #expect(fixture.stop() == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty)
        #expect(Set(try fixture.spool.names(.queue)) == before.union([id]))
    }

    /// A commit that fails after its rename into queue/ (every fsync of queue/
    /// made to fail, `POSTERN_TEST_FAIL_SYNC_OF`): the client is told 4xx, the
    /// daemon, told the listener is unsure, finds the message in queue/ and
    /// delivers it once. The client's retry could make a second copy; the message is never lost.
    @Test func commitFailingAfterItsRenameIsDeliveredAllTheSame() throws {
        let fixture = try DaemonFixture(overrides: ["smtp.listen=[\"127.0.0.1:0\"]"])
        defer { fixture.stop() }
        fixture.environment["POSTERN_TEST_FAIL_SYNC_OF"] = "queue"
        try fixture.start()
        let port = try #require(fixture.smtpPort, "no smtp listening line: \(fixture.log)")
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            try:
                s.sendmail('alice@example.org', ['bob@example.net'], b'Subject: unsure\\r\\n\\r\\nbody\\r\\n')
                print('accepted')
            except smtplib.SMTPDataError as e:
                print(e.smtp_code, e.smtp_error.decode())
            s.quit()
            """, port: port)
        #expect(out.hasPrefix("4"), "\(out)")
        #expect(fixture.waitForSink(1))
        #expect(fixture.waitForEmptyQueue())
        let delivered = fixture.sink.messages()
        #expect(delivered.count == 1 && delivered.first?.contains("Subject: unsure") == true, "\(delivered)")
        #expect(fixture.stop() == 0)
    }

    /// A control action on a message the listener handed over (its envelope in
    /// memory, `QueueInbox`), taken while the message waits for a delivery
    /// thread, reaches its first attempt: the only delivery thread is kept busy
    /// by a first message (the sink waits 5 s before answering its DATA); the
    /// second is then told `kick --transport refuse`, and bounces through that
    /// fail transport instead of leaving by the relay.
    @Test func controlActionBeforeTheFirstAttemptIsHeeded() throws {
        let config = """
            [transports.refuse]
            kind = "fail"
            code = 554
            enhanced = "5.7.1"
            text = "refused by the operator"
            """
        let fixture = try DaemonFixture(sinkOptions: ["-w", "5"], overrides: [
            "smtp.listen=[\"127.0.0.1:0\"]", "queue.max_concurrent=1", "queue.per_domain=1",
        ], config: config)
        defer { fixture.stop() }
        try fixture.start()
        let port = try #require(fixture.smtpPort, "no smtp listening line: \(fixture.log)")
        func send(_ subject: String) throws -> String {
            let out = try Self.python("""
                s = smtplib.SMTP('127.0.0.1', PORT)
                s.ehlo()
                s.mail('alice@example.org')
                s.rcpt('bob@example.net')
                code, text = s.data(b'Subject: \(subject)\\r\\n\\r\\nbody\\r\\n')
                print(code, text.decode().split()[-1])
                s.quit()
                """, port: port)
            let words = out.split(separator: " ")
            #expect(words.first == "250", "\(out)")
            return String(words.last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let first = try send("first")
        // Its attempt is under way once registered: the envelope's time set a backoff ahead (6.5).
        let registered = BackgroundProcess.waitUntil(timeout: 30) {
            var info = stat()
            let path = fixture.spool.layout.path(.queue, QueueID(first)!) + "/envelope.json"
            return stat(path, &info) == 0 && Double(info.st_mtim.tv_sec) > Date().timeIntervalSince1970 + 60
        }
        #expect(registered, "the first message's attempt did not start")
        let second = try send("second")
        let kick = try fixture.postern(["kick", "--transport", "refuse", second])
        #expect(kick.status == 0, "\(kick.stdout)\(kick.stderr)")
        #expect(fixture.waitForLog("id=\(second)"))
        #expect(fixture.waitForLog("status=bounced"))
        let lines = fixture.log.split(separator: "\n").filter { $0.contains("msg=delivery") && $0.contains("id=\(second)") }
        #expect(lines.count == 1 && lines[0].contains("transport=refuse") && lines[0].contains("status=bounced"), "\(lines)")
        #expect(fixture.waitForLog("status=sent"), "the first message was not delivered")
        #expect(fixture.stop() == 0)
    }

    /// PIPELINING: commands sent in one write get their replies in order, and
    /// several transactions share one connection.
    @Test func pipelining() throws {
        let (fixture, port) = try Self.daemon(relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python(#"""
            c = socket.create_connection(('127.0.0.1', PORT))
            f = c.makefile('rb')
            def reply():
                lines = []
                while True:
                    line = f.readline().decode()
                    lines.append(line.strip())
                    if line[3] == ' ': return lines
            reply()
            c.sendall(b'EHLO pipe.example\r\n')
            assert 'PIPELINING' in ' '.join(reply())
            c.sendall(b'MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\nDATA\r\n')
            print([reply()[0][:3] for _ in range(4)])
            c.sendall(b'Subject: one\r\n\r\nbody\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<d@example.net>\r\nDATA\r\n')
            print([reply()[0][:3] for _ in range(4)])
            c.sendall(b'Subject: two\r\n\r\nbody\r\n.\r\nQUIT\r\n')
            print([reply()[0][:3] for _ in range(2)])
            """#, port: port)
        #expect(out == "['250', '250', '250', '354']\n['250', '250', '250', '354']\n['250', '221']\n")
        #expect(fixture.waitForLog("msg=received", count: 2))
    }

    /// SMTPUTF8 and 8-bit: a non-ASCII address and body are accepted with
    /// SMTPUTF8, marked in the envelope; without SMTPUTF8 the address is refused.
    @Test func smtputf8AndEightBit() throws {
        let (fixture, port) = try Self.daemon(relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            s.ehlo()
            assert s.has_extn('smtputf8') and s.has_extn('8bitmime')
            s.command_encoding = 'utf-8'   # smtplib sends non-ASCII only with SMTPUTF8 otherwise
            print(s.docmd('MAIL FROM:<jürgen@example.org>')[0])
            s.rset()
            print(s.sendmail('jürgen@example.org', ['zoë@example.net'], 'Subject: ü\\r\\n\\r\\nGrüße\\r\\n'.encode(),
                             mail_options=['SMTPUTF8', 'BODY=8BITMIME']))
            s.quit()
            """, port: port)
        #expect(out == "553\n{}\n")
        #expect(fixture.waitForLog("msg=received"))
        let id = try #require(try fixture.spool.names(.queue).first)
        let envelope = try fixture.envelope(id)
        #expect(envelope.smtputf8)
        #expect(envelope.eightBit)
        #expect(envelope.recipients.map(\.address) == ["zoë@example.net"])
    }

    /// A 50 MiB message streams through into the spool whole.
    @Test func fiftyMebibytes() throws {
        let (fixture, port) = try Self.daemon(relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python("""
            line = b'x' * 78 + b'\\r\\n'
            body = b'Subject: big\\r\\n\\r\\n' + line * (50 * 1024 * 1024 // len(line))
            s = smtplib.SMTP('127.0.0.1', PORT)
            print(s.sendmail('a@example.org', ['b@example.net'], body), len(body))
            s.quit()
            """, port: port)
        let size = try #require(Int(out.split(separator: " ").last!.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(out.hasPrefix("{}"))
        #expect(fixture.waitForLog("msg=received"))
        let id = try #require(try fixture.spool.names(.queue).first)
        let envelope = try fixture.envelope(id)
        // The added Received:, Date: and Message-ID: lines, nothing else.
        #expect(envelope.size > size && envelope.size < size + 400)
    }

    /// SIZE: the limit is announced, a larger SIZE= is refused at MAIL, and a
    /// larger message sent anyway is refused after its data and leaves nothing.
    @Test func sizeRefusal() throws {
        let (fixture, port) = try Self.daemon(["drop.max_message_size=10000"], relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            s.ehlo()
            print(s.esmtp_features['size'])
            print(s.docmd('MAIL FROM:<a@example.org> SIZE=20000')[0])
            s.does_esmtp = False   # send it without SIZE=
            try:
                s.sendmail('a@example.org', ['b@example.net'], b'Subject: big\\r\\n\\r\\n' + (b'y' * 70 + b'\\r\\n') * 300)
            except smtplib.SMTPDataError as e:
                print(e.smtp_code, e.smtp_error.decode()[:5])
            print(s.noop()[0])
            """, port: port)
        #expect(out == "10000\n552\n552 5.3.4\n250\n")
        #expect(try Self.leftovers(fixture).isEmpty)
    }

    /// Relay authorization: a client that is neither trusted nor authenticated
    /// is refused at RCPT with 554 5.7.1; after STARTTLS and AUTH it may relay.
    /// Loopback is not trusted here, only 127.0.0.1, and the client connects
    /// from 127.0.0.3 to the listener on 127.0.0.2.
    @Test func relayRefusalThenStartTLSAndAuth() throws {
        let (fixture, port, directory) = try Self.nonLoopbackDaemon()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        defer { fixture.stop() }
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.2', PORT, source_address=('127.0.0.3', 0))
            s.ehlo()
            print(s.has_extn('auth'), s.has_extn('starttls'))
            s.mail('a@example.org')
            print(s.rcpt('b@example.net'))
            s.rset()
            print(s.docmd('AUTH PLAIN AGFsaWNlAHMzY3JldCBwYXNz')[0])
            s.starttls(context=ssl._create_unverified_context())
            s.ehlo()
            print(s.has_extn('auth'), s.esmtp_features.get('auth', '').strip())
            try:
                s.login('alice', 'wrong')
            except smtplib.SMTPAuthenticationError as e:
                print(e.smtp_code)
            s.login('alice', 's3cret pass')
            print(s.sendmail('a@example.org', ['b@example.net'], b'Subject: authenticated\\r\\n\\r\\nhi\\r\\n'))
            s.quit()
            """, port: port)
        #expect(out == "False True\n(554, b'5.7.1 <b@example.net>: Relay access denied')\n538\nTrue PLAIN LOGIN\n535\n{}\n")
        #expect(fixture.waitForLog("msg=received"))
        let id = try #require(try fixture.spool.names(.queue).first)
        let message = String(decoding: try fixture.spool.read("queue/\(id)/message"), as: UTF8.self)
        #expect(message.contains("from [127.0.0.3] ([127.0.0.3])") || message.contains("([127.0.0.3])"))
        #expect(message.contains("with ESMTPSA id \(id)"))
        #expect(fixture.log.contains("user=alice"))
    }

    /// A daemon whose listener on 127.0.0.2 trusts no loopback client but
    /// 127.0.0.1 (a client connecting from 127.0.0.3 is an outsider), with a
    /// certificate for STARTTLS and the user alice (password `s3cret pass`);
    /// mail stays in the queue. The directory holds the files: remove it.
    static func nonLoopbackDaemon() throws -> (DaemonFixture, UInt16, String) {
        let directory = NSTemporaryDirectory() + "smtp-listener-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificate = try TestCertificate.selfSigned(commonName: "mail.postern.test", dnsNames: ["mail.postern.test"])
        let files = try certificate.write(to: directory, name: "listener")
        let credentials = directory + "/alice.credentials"
        try Data("username = \"alice\"\npassword = \"s3cret pass\"\n".utf8).write(to: URL(fileURLWithPath: credentials))
        chmod(credentials, 0o600)
        let (fixture, port) = try daemon([
            "smtp.trust_loopback=false", "smtp.relay_networks=[\"127.0.0.1\"]", "smtp.tls_certificate=\(files.certificate)",
            "smtp.tls_key=\(files.key)", "smtp.users=[\"\(credentials)\"]",
        ], relayPort: 1, listen: "127.0.0.2:0")
        return (fixture, port, directory)
    }

    /// Bad commands get 5xx replies and count as errors; at smtp.max_errors the
    /// session is closed with 421.
    @Test func badCommands() throws {
        let (fixture, port) = try Self.daemon(["smtp.max_errors=7"], relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            print(s.docmd('MAIL FROM:<a@example.org>')[0])
            s.ehlo()
            print(s.docmd('FOO bar')[0], s.docmd('RCPT TO:<b@example.net>')[0], s.docmd('MAIL FROM:<not an address>')[0],
                  s.docmd('MAIL FROM:a@example.org')[0], s.docmd('DATA')[0])
            print(s.docmd('NOOP')[0], s.docmd('VRFY root')[0])
            print(s.docmd('BDAT 10 LAST'))
            """, port: port)
        #expect(out == "503\n502 503 553 501 503\n250 252\n(421, b'4.7.0 mail.postern.test Too many errors, closing connection')\n")
    }

    /// Overlong lines: a command line over the limit gets 500 5.5.2 and the
    /// session goes on; a message line over 998 octets refuses the message
    /// (554 5.6.0), leaving nothing in the spool, counted by reason in the metrics.
    @Test func overlongLines() throws {
        let (fixture, port) = try Self.daemon(["metrics.listen=127.0.0.1:0"], relayPort: 1)
        defer { fixture.stop() }
        let metrics = try #require(fixture.metricsPort)
        let out = try Self.python("""
            s = smtplib.SMTP('127.0.0.1', PORT)
            s.ehlo()
            print(s.docmd('NOOP ' + 'x' * 5000)[0])
            try:
                s.sendmail('a@example.org', ['b@example.net'], b'Subject: long\\r\\n\\r\\n' + b'z' * 1200 + b'\\r\\n')
            except smtplib.SMTPDataError as e:
                print(e.smtp_code, e.smtp_error.decode()[:5])
            print(s.noop()[0])
            """, port: port)
        #expect(out == "500\n554 5.6.0\n250\n")
        #expect(FullDiskTests.metric(metrics, "postern_smtp_messages_total{result=\"rejected\",reason=\"line_too_long\"}") == 1)
        #expect(FullDiskTests.metric(metrics, "postern_smtp_messages_total{result=\"rejected\",reason=\"too_big\"}") == 0)
        #expect(try Self.leftovers(fixture).isEmpty)
    }

    /// Beyond smtp.max_connections_per_client, a client's next connection gets
    /// 421 and is closed (RFC 5321 3.8); once one of its sessions ends, it
    /// is served again.
    @Test func connectionsPerClientAreBounded() throws {
        let (fixture, port) = try Self.daemon(["smtp.max_connections_per_client=2"], relayPort: 1)
        defer { fixture.stop() }
        let out = try Self.python("""
            held = []
            for _ in range(2):
                c = socket.create_connection(('127.0.0.1', PORT)); f = c.makefile('rb')
                print(f.readline().decode()[:3]); held.append((c, f))
            third = socket.create_connection(('127.0.0.1', PORT)); f3 = third.makefile('rb')
            print(f3.readline().decode()[:9]); print(repr(f3.readline()))
            c, f = held.pop(); c.sendall(b'QUIT\\r\\n'); f.readline(); c.close()
            for _ in range(50):
                again = socket.create_connection(('127.0.0.1', PORT)); line = again.makefile('rb').readline().decode()[:3]
                again.close()
                if line == '220': break
                time.sleep(0.1)
            print(line)
            """, port: port)
        #expect(out == "220\n220\n421 4.7.0\nb''\n220\n", "\(out)")
        #expect(fixture.log.contains("msg=\"smtp refused\" client=127.0.0.1 reason=\"too many connections\""), "\(fixture.log)")
    }

    /// A client that stops in the middle of DATA leaves nothing in drop/,
    /// queue/ or tmp/.
    @Test func clientStopsMidData() throws {
        let (fixture, port) = try Self.daemon(["metrics.listen=127.0.0.1:0"], relayPort: 1)
        defer { fixture.stop() }
        let metrics = try #require(fixture.metricsPort)
        _ = try Self.python(#"""
            c = socket.create_connection(('127.0.0.1', PORT))
            f = c.makefile('rb')
            f.readline()
            c.sendall(b'EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n')
            while not f.readline().startswith(b'354'): pass
            c.sendall(b'Subject: cut\r\n\r\n' + b'part of a message\r\n' * 5000)
            c.close()
            """#, port: port)
        // The session is over once the listener counts it disconnected; then nothing of it is left.
        #expect(BackgroundProcess.waitUntil(timeout: 10) {
            FullDiskTests.metric(metrics, "postern_smtp_sessions_total{result=\"disconnected\"}") == 1
        })
        #expect(try Self.leftovers(fixture).isEmpty)
        #expect(!fixture.log.contains("msg=received"))
    }

    /// A 250 after the data means the message is in the spool: the daemon
    /// killed right after it, the message is there, and a restarted daemon
    /// delivers it. The listener queues the message itself, so the killed
    /// daemon may already have begun its first attempt (to a port where
    /// nothing listens), which then counts and defers it: `kick`, before the
    /// restart, makes it due now either way.
    @Test func sigkillRightAfterTheReply() throws {
        let (fixture, port) = try Self.daemon(["relay=127.0.0.1:1"])
        defer { fixture.stop() }
        let pid = try #require(fixture.daemon?.pid)
        let out = try Self.python("""
            import os, signal
            s = smtplib.SMTP('127.0.0.1', PORT)
            print(s.sendmail('a@example.org', ['b@example.net'], b'Subject: survivor\\r\\n\\r\\nstill here\\r\\n'))
            os.kill(\(pid), signal.SIGKILL)
            """, port: port)
        #expect(out == "{}\n")
        #expect(fixture.stop(SIGKILL) != 0)
        #expect(try fixture.spool.names(.drop).count + fixture.spool.names(.queue).count == 1)
        let id = try #require(try fixture.spool.names(.queue).first ?? fixture.spool.names(.drop).first)
        // Offline (no daemon runs): the command takes the spool's lock and applies it itself.
        #expect(try fixture.postern(["kick", id]).status == 0)
        fixture.overrides.removeAll { $0 == "relay=127.0.0.1:1" }
        try fixture.start()
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["survivor"])
    }
}
