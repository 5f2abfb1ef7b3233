import Daemon
import Foundation
import Glibc
import Logging
import PosternCore
import PosternTesting
import SMTP
import Spool
import Testing

/// Issue #12 with real users and a running daemon: the tests run as root and
/// play the others with setpriv(1). uid/gid 65534 (nobody/nogroup) is the
/// drop group's member who attacks; the spool's drop group is 65534.
@Suite(.serialized)
struct TrustBoundaryTests {
    static let member = DaemonFixture.User(uid: 65534, gid: 65534)

    init() throws {
        try #require(getuid() == 0, "needs root to play other users")
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// Writes a drop by the protocol as the user running it, keeps a
    /// descriptor of its directory and, once the file `go` appears, tries to
    /// swap the message for a link to `secret` through that descriptor.
    static let attacker = #"""
        import json, os, sys, time
        spool, qid, secret, go, extra = sys.argv[1:6]
        body = b"Subject: from a drop-group member\r\nMessage-ID: <attack@test>\r\n\r\nhello\r\n"
        tmp = spool + "/tmp/" + qid
        os.mkdir(tmp, 0o770)
        def write(name, data):
            fd = os.open(tmp + "/" + name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
        write("message", body)
        envelope = {"version": "1.0", "id": qid, "sender": "alice@example.org",
                    "recipients": [{"address": "bob@example.net"}],
                    "arrival": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "size": len(body), "uid": os.getuid()}
        envelope.update(json.loads(extra))
        if "sparse_size" in envelope:   # a hole of that size: no disk space, but a huge copy
            envelope["size"] = envelope.pop("sparse_size")
            os.truncate(tmp + "/message", envelope["size"])
        write("envelope.json", json.dumps(envelope).encode())
        held = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        os.rename(tmp, spool + "/drop/" + qid)
        print("dropped", flush=True)
        if go == "-":
            sys.exit(0)
        deadline = time.time() + 60
        while not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.02)
        try:
            os.unlink("message", dir_fd=held)
            os.symlink(secret, "message", dir_fd=held)
            print("swapped", flush=True)
        except OSError as error:
            print("refused", error.errno, flush=True)
        """#

    /// With `stageOnly`, the drop is built in `DIR/staged/` instead, for the test to move by hand.
    static func attack(_ fixture: DaemonFixture, as user: DaemonFixture.User?, secret: String = "/nonexistent",
                       go: String = "-", extra: String = "{}", stageOnly: Bool = false) throws -> (id: String, process: BackgroundProcess) {
        let id = QueueIDGenerator().next().rawValue
        var root = fixture.spool.layout.root
        if stageOnly {
            root = fixture.spool.directory + "/staged"
            for area in ["", "/tmp", "/drop"] {
                try FileManager.default.createDirectory(atPath: root + area, withIntermediateDirectories: true)
                chmod(root + area, 0o777)
            }
        }
        let process = try BackgroundProcess((user?.setpriv ?? []) + ["/usr/bin/python3", "-c", attacker, root, id, secret, go, extra],
                                            log: fixture.spool.directory + "/attacker-\(id).log")
        if stageOnly {
            process.wait()
            // Out of staged/drop/ to staged/ID, owned by the member: what corrupt/NAME/entry would be.
            #expect(rename(root + "/drop/" + id, root + "/" + id) == 0)
        }
        return (id, process)
    }

    /// Waits until `corrupt/ID/reason` says `text` (the quarantine writes it after its mkdir).
    static func waitForReason(_ fixture: DaemonFixture, _ id: String, _ text: String) -> Bool {
        BackgroundProcess.waitUntil(timeout: 30) {
            String(decoding: (try? fixture.spool.read("corrupt/\(id)/reason")) ?? Data(), as: UTF8.self).contains(text)
        }
    }

    static let busyConfig = """
        [transports.busy]
        kind = "fail"
        code = 451
        text = "try again later"

        [[routes]]
        recipient_domains = ["example.net"]
        transport = "busy"
        """

    /// Item 2: a member who kept a descriptor of its drop's directory cannot
    /// reach the accepted message: the daemon queued a copy of its own, so
    /// the swap for a link to a file only the daemon may read fails, and the
    /// failure DSN carries the message, not the secret.
    @Test func heldDescriptorCannotReachTheAcceptedMessage() throws {
        let fixture = try DaemonFixture(config: Self.busyConfig)
        try fixture.useDropGroup(65534)
        let secret = fixture.spool.directory + "/secret"
        try Data("SECRET-CONTENT-0600".utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        try fixture.start()
        let go = fixture.spool.directory + "/go"
        let (id, attacker) = try Self.attack(fixture, as: Self.member, secret: secret, go: go)
        #expect(fixture.waitForLog("status=deferred"))
        // Taken away: a directory and files of the daemon's own user.
        var info = stat()
        #expect(lstat(fixture.spool.layout.path(.queue, QueueID(id)!), &info) == 0)
        #expect(info.st_uid == getuid() && info.st_mode & 0o777 == 0o700)
        _ = FileManager.default.createFile(atPath: go, contents: nil)
        #expect(attacker.wait() == 0)
        #expect(attacker.log.contains("refused"), "\(attacker.log)")
        #expect(String(decoding: try fixture.spool.read("queue/\(id)/message"), as: UTF8.self).contains("hello"))

        #expect(try fixture.postern(["fail", id]).status == 0)
        #expect(fixture.waitForSink(1))
        let dsn = try #require(fixture.sink.messages().first)
        #expect(dsn.contains("from a drop-group member"))
        #expect(!dsn.contains("SECRET-CONTENT"))
        #expect(fixture.stop() == 0)
    }

    /// Item 8: a drop by a member cannot choose its transport (a smarthost's
    /// credentials, a forbidden destination) nor its number of attempts; the
    /// same fields from root are honoured.
    @Test func untrustedDropCannotChooseItsTransport() throws {
        let fixture = try DaemonFixture(config: "")
        let maildir = fixture.spool.directory + "/Maildir"
        try Data("""
            [transports.box]
            kind = "maildir"
            path = "\(maildir)"

            [transports.forbidden]
            kind = "fail"
            code = 550
            enhanced = "5.7.1"
            text = "mail to example.net is not permitted"

            [[routes]]
            recipient_domains = ["example.net"]
            transport = "forbidden"
            """.utf8).write(to: URL(fileURLWithPath: fixture.configPath))
        try fixture.useDropGroup(65534)
        try fixture.start()
        let fields = #"{"transport": "box", "max_attempts": 100}"#
        let (member, memberDrop) = try Self.attack(fixture, as: Self.member, extra: fields)
        #expect(memberDrop.wait() == 0)
        #expect(fixture.waitForLog("status=bounced"))
        #expect(fixture.log.contains("drop fields ignored"), "\(fixture.log)")
        #expect(fixture.log.contains("fields=transport,max_attempts"))
        #expect(fixture.waitForSink(1))   // the failure DSN, to alice through the relay
        #expect(fixture.sink.messages().first?.contains("not permitted") == true)
        #expect(((try? DirectoryListing.names(in: maildir + "/new")) ?? []).isEmpty)
        #expect(!fixture.log.contains("id=\(member) recipient=bob@example.net domain=example.net attempt=1 status=sent"))

        // A hand-made drop over the recipient limit is quarantined too: what postern-drop refuses.
        let many = (0...Submission.defaultMaxRecipients).map { #"{"address": "u\#($0)@example.net"}"# }.joined(separator: ",")
        let (crowd, crowdDrop) = try Self.attack(fixture, as: Self.member, extra: #"{"recipients": ["# + many + "]}")
        #expect(crowdDrop.wait() == 0)
        #expect(Self.waitForReason(fixture, crowd, "over drop.max_recipients"))

        // A member's directory moved into hold/ by hand (an operator restoring it
        // from corrupt/) is adopted before it is read: its transport goes.
        let restored = try Self.attack(fixture, as: Self.member, extra: fields, stageOnly: true)
        #expect(restored.process.wait() == 0)
        #expect(rename(fixture.spool.directory + "/staged/" + restored.id, fixture.spool.layout.path(.hold, QueueID(restored.id)!)) == 0)
        #expect(fixture.waitForLog("msg=adopted"))
        #expect(fixture.log.contains("id=\(restored.id) ignored=transport,max_attempts"), "\(fixture.log)")
        var adopted = stat()
        #expect(lstat(fixture.spool.layout.path(.hold, QueueID(restored.id)!), &adopted) == 0 && adopted.st_uid == getuid())

        // A hand-made drop over the size limit is quarantined, not copied.
        let (big, bigDrop) = try Self.attack(fixture, as: Self.member, extra: #"{"sparse_size": 70000000}"#)
        #expect(bigDrop.wait() == 0)
        #expect(Self.waitForReason(fixture, big, "over drop.max_message_size"))

        let (_, rootDrop) = try Self.attack(fixture, as: nil, extra: fields)
        #expect(rootDrop.wait() == 0)
        #expect(BackgroundProcess.waitUntil(timeout: 30) { ((try? DirectoryListing.names(in: maildir + "/new")) ?? []).count == 1 })
        #expect(fixture.stop() == 0)
    }

    /// Item 6: a message with the most recipients a drop allows, deferred by
    /// its route: every result is recorded, the envelope stays readable, and
    /// the daemon stops on SIGTERM as usual.
    @Test func mostRecipientsDeferredStayReadable() throws {
        let fixture = try DaemonFixture(config: Self.busyConfig)
        try fixture.start()
        let recipients = (0..<Submission.defaultMaxRecipients).map { "user\($0)@example.net" }
        let id = try fixture.drop(subject: "many", to: recipients)
        #expect(BackgroundProcess.waitUntil(timeout: 60) {
            (try? fixture.envelope(id))?.recipients.allSatisfy { $0.lastResult != nil } == true
        })
        let stored = try fixture.spool.read("queue/\(id)/envelope.json")
        #expect(stored.count < Envelope.maxEncodedSize)
        #expect(try Envelope.decode(stored).recipients.count == 1000)
        #expect(fixture.stop() == 0)
    }

    /// Item 3: the daemon runs as its own user, a member of the drop group; a
    /// user whose primary group is another, but who is a member too, drops;
    /// the drop is readable by the daemon and delivered, not quarantined.
    @Test func memberWithAnotherPrimaryGroupDropsToAnUnprivilegedDaemon() throws {
        let fixture = try DaemonFixture()
        try fixture.useDropGroup(65534, daemonUser: .init(uid: 65530, gid: 65530, groups: [65534]))
        try fixture.start()
        let dropper = DaemonFixture.User(uid: 65532, gid: 65532, groups: [65534])
        let result = try PosternProcess.run(["drop", "--spool", fixture.spool.layout.root, "-v", "bob@example.net"],
                                            input: Data("Subject: other primary group\n\nhi\n".utf8),
                                            command: dropper.setpriv + [fixture.binary])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["other primary group"])
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(fixture.stop() == 0)
    }

    /// Item 3: README's set-group-ID install, for a user outside the drop
    /// group, in a private mount namespace whose /var/spool/postern is this
    /// test's spool: the drop works, and --spool and POSTERN_* (here, a size
    /// limit that would refuse it) are ignored. Like `postern drop`, it lets
    /// the spool owner alone into the drop, by an ACL (spool-layout.md section 3).
    @Test func setGroupIDDropWorksForAnOutsider() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "unshare(1) from util-linux")
        let fixture = try DaemonFixture()
        try fixture.useDropGroup(65534, daemonUser: .init(uid: 65530, gid: 65530, groups: [65534]))
        let installed = fixture.spool.directory + "/postern-drop-sgid"
        try PosternProcess.copyBinary(PosternProcess.dropBinary, to: installed)
        #expect(chown(installed, 0, 65534) == 0 && chmod(installed, 0o2755) == 0)
        let link = fixture.spool.directory + "/sendmail"
        #expect(symlink(installed, link) == 0)
        for directory in ["/var/spool/postern", "/etc/postern"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let outsider = DaemonFixture.User(uid: 65533, gid: 65533)
        let script = #"mount --bind "$1" /var/spool/postern && mount -t tmpfs none /etc/postern && shift && exec "$@""#
        let result = try PosternProcess.run(["-v", "--spool", "/nonexistent", "bob@example.net"],
                                            input: Data("Subject: set-group-id\n\nhi\n".utf8),
                                            environment: ["POSTERN_MESSAGE_SIZE_LIMIT": "10", "POSTERN_SPOOL": "/nonexistent"],
                                            command: ["/usr/bin/unshare", "--mount", "--propagation", "private", "--",
                                                      "/bin/sh", "-c", script, "sh", fixture.spool.layout.root] + outsider.setpriv + [link])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("set-group-ID: ignoring --spool, POSTERN_CONFIG, POSTERN_HOSTNAME, POSTERN_MESSAGE_SIZE_LIMIT, POSTERN_SPOOL"))
        let id = try #require(QueueID(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "\(result.stdout)")
        let directory = fixture.spool.layout.path(.drop, id)
        #expect(FileACL.users(directory) == [65530: 0o7])
        #expect(FileACL.users(directory + "/message") == [65530: 0o4])
        #expect(FileACL.users(directory + "/envelope.json") == [65530: 0o4])
        try fixture.start()
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["set-group-id"])
        #expect(fixture.log.contains("uid=65533"))
        #expect(fixture.stop() == 0)
    }
}
