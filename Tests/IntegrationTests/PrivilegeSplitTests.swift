import Foundation
import Glibc
import PosternCore
import PosternTesting
import Spool
import Testing

/// Issue #17, the privilege split with real users (setpriv(1)): the daemon
/// runs as its own unprivileged user (65530, a member of the drop group
/// 65534); 65532 and 65534 are two members who drop. What one member may do
/// to another's drop and to the queue, and what a hand-made drop can make the
/// daemon do. TrustBoundaryTests (issue #12) has the attacks on the drop
/// protocol itself (a held descriptor, forbidden fields, the set-group-ID
/// program); these are the ones it leaves out.
@Suite(.serialized) struct PrivilegeSplitTests {
    static let daemonUser = DaemonFixture.User(uid: 65530, gid: 65530, groups: [65534])
    static let victim = DaemonFixture.User(uid: 65532, gid: 65532, groups: [65534])
    static let member = TrustBoundaryTests.member

    init() throws {
        try #require(getuid() == 0, "needs root to play other users")
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// Tries, as the user running it, every way to reach the drop or queued
    /// message `ID` (whose ID it is given, the worst case), and prints what
    /// each attempt did as JSON: "ok" or the errno's name.
    static let prober = #"""
        import errno, json, os, sys
        spool, qid, mode = sys.argv[1:4]
        results = {}
        def attempt(name, action):
            try:
                action()
                results[name] = "ok"
            except OSError as error:
                results[name] = errno.errorcode.get(error.errno, str(error.errno))
        def read(path):
            with open(path, "rb") as f:
                f.read(1)
        def create(path):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))
        for area in ["tmp", "drop", "queue", "hold", "corrupt", "control"]:
            attempt("list " + area, lambda: os.listdir(spool + "/" + area))
        for area in ["drop", "queue"]:
            base = spool + "/" + area + "/" + qid
            attempt("list " + area + "/ID", lambda: os.listdir(base))
            attempt("read " + area + "/ID/message", lambda: read(base + "/message"))
            attempt("read " + area + "/ID/envelope.json", lambda: read(base + "/envelope.json"))
            if mode == "all" or area == "queue":
                attempt("create in " + area + "/ID", lambda: create(base + "/extra"))
                attempt("unlink " + area + "/ID/message", lambda: os.unlink(base + "/message"))
            # Another name: a rename onto itself succeeds without any permission check.
            other = qid[:-1] + ("1" if qid.endswith("0") else "0")
            attempt("rename " + area + "/ID", lambda: os.rename(base, spool + "/drop/" + other))
            attempt("rmdir " + area + "/ID", lambda: os.rmdir(base))
        print(json.dumps(results))
        """#

    /// `destructive`: also try to remove the message from, and plant a file
    /// in, the drop's directory.
    static func probe(_ fixture: DaemonFixture, _ id: String, as user: DaemonFixture.User,
                      destructive: Bool = false) throws -> [String: String] {
        let process = try BackgroundProcess(user.setpriv + ["/usr/bin/python3", "-c", prober, fixture.spool.layout.root, id,
                                                            destructive ? "all" : "safe"],
                                            log: fixture.spool.directory + "/probe-\(UUID().uuidString).log")
        #expect(process.wait() == 0, "\(process.log)")
        let line = try #require(process.log.split(separator: "\n").last)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
    }

    /// A drop by `user` with `postern drop` (a copy every user can reach).
    static func drop(_ fixture: DaemonFixture, as user: DaemonFixture.User, subject: String,
                     arguments: [String] = ["bob@example.net"]) throws -> PosternProcess.Result {
        try PosternProcess.run(["drop", "-v", "--spool", fixture.spool.layout.root] + arguments,
                               input: Data("Subject: \(subject)\n\nthe victim's words\n".utf8),
                               command: user.setpriv + [fixture.binary])
    }

    /// Another member's drop: the member can list neither tmp/ nor drop/
    /// (so cannot find it), cannot rename or remove its directory (the sticky
    /// bit), and, even knowing its ID, can neither list nor read nor change
    /// it while it waits in drop/: the drop's ACL lets in its writer and the
    /// spool owner, and gives the drop group nothing (spool-layout.md section
    /// 3). Both messages are delivered intact, nothing is quarantined. On the
    /// test's file system (ext4 here) and on a tmpfs mounted over the spool.
    @Test(arguments: [false, true]) func memberCannotReachAnothersDrop(onTmpfs: Bool) throws {
        let fixture = try DaemonFixture()
        let tmpfs = onTmpfs ? try SmallFileSystem(at: fixture.spool.layout.root, size: 16 << 20) : nil
        defer { tmpfs?.unmount() }
        try fixture.useDropGroup(65534, daemonUser: Self.daemonUser)
        // The tmpfs is there: the spool's tmp/ is on another device than the test's directory.
        var spoolInfo = stat(), outerInfo = stat()
        #expect(stat(fixture.spool.layout.tmp, &spoolInfo) == 0 && stat(fixture.spool.directory, &outerInfo) == 0)
        #expect((spoolInfo.st_dev != outerInfo.st_dev) == onTmpfs)
        let dropped = try Self.drop(fixture, as: Self.victim, subject: "private")
        #expect(dropped.status == 0, "\(dropped.stderr)")
        let id = dropped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(QueueID(id) != nil, "\(dropped.stdout)")
        // In drop/, not yet accepted (the daemon is not running).
        let results = try Self.probe(fixture, id, as: Self.member)
        for attempt in ["list tmp", "list drop", "list queue", "list hold", "list corrupt", "list control",
                        "rename drop/ID", "rmdir drop/ID", "read queue/ID/message", "create in queue/ID"] {
            #expect(results[attempt] != nil && results[attempt] != "ok", "\(attempt): \(results[attempt] ?? "not tried")")
        }
        for attempt in ["list drop/ID", "read drop/ID/message", "read drop/ID/envelope.json"] {
            #expect(results[attempt] == "EACCES", "\(attempt): \(results[attempt] ?? "not tried")")
        }
        let second = try Self.drop(fixture, as: Self.victim, subject: "tampered with")
        let secondID = second.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let tampering = try Self.probe(fixture, secondID, as: Self.member, destructive: true)
        for attempt in ["unlink drop/ID/message", "create in drop/ID", "rename drop/ID", "rmdir drop/ID"] {
            #expect(tampering[attempt] != nil && tampering[attempt] != "ok", "\(attempt): \(tampering[attempt] ?? "not tried")")
        }
        // The victim's own files: its uid, no group or other bits but the ACL's mask,
        // and the ACL naming the daemon's user alone.
        let directory = fixture.spool.layout.path(.drop, try #require(QueueID(secondID)))
        for path in [directory, directory + "/message", directory + "/envelope.json"] {
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_uid == Self.victim.uid, "\(path)")
            #expect(info.st_mode & 0o007 == 0, "\(path): \(String(info.st_mode, radix: 8))")
            #expect(FileACL.users(path) == [Self.daemonUser.uid: path == directory ? 0o7 : 0o4], "\(path)")
        }
        try fixture.start()
        #expect(fixture.waitForSink(2))
        #expect(fixture.sink.subjects().sorted() == ["private", "tampered with"])
        #expect(fixture.sink.messages().allSatisfy { $0.contains("the victim's words") })
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(try fixture.spool.names(.drop).isEmpty)
        #expect(fixture.stop() == 0)
    }

    /// Queued mail (held, so that it stays): a member cannot enter queue/ or
    /// hold/ at all, whatever it knows.
    @Test func memberCannotReachQueuedMail() throws {
        let fixture = try DaemonFixture(config: TrustBoundaryTests.busyConfig)
        try fixture.useDropGroup(65534, daemonUser: Self.daemonUser)
        try fixture.start()
        let dropped = try Self.drop(fixture, as: Self.victim, subject: "queued")
        let id = dropped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(QueueID(id) != nil, "\(dropped.stdout)")
        #expect(fixture.waitForLog("status=deferred"))
        let results = try Self.probe(fixture, id, as: Self.member)
        for (attempt, result) in results {
            #expect(result != "ok", "\(attempt) succeeded")
        }
        #expect(results["read queue/ID/message"] == "EACCES")
        #expect(try fixture.spool.names(.queue) == [id])
        // Adopted: the queue's copies are the daemon's own, 0700 and 0600, and
        // carry no ACL of the writer's: no way back in for the writer or the group.
        let directory = fixture.spool.layout.path(.queue, try #require(QueueID(id)))
        for (path, mode) in [(directory, 0o700), (directory + "/message", 0o600), (directory + "/envelope.json", 0o600)] {
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_uid == Self.daemonUser.uid, "\(path)")
            #expect(Int(info.st_mode & 0o777) == mode, "\(path): \(String(info.st_mode, radix: 8))")
            #expect(FileACL.users(path).isEmpty, "\(path)")
        }
        #expect(fixture.stop() == 0)
    }

    /// Builds a drop owned by the member (uid 65534, as if it had written it)
    /// whose `message` is `kind`: a symbolic link to `secret`, a hard link to
    /// it, a FIFO, or a character device (/dev/zero's numbers). Planted by
    /// root, since the kernel keeps a member from making the last two
    /// (protected_hardlinks, CAP_MKNOD); the daemon must not rely on that.
    static let planter = #"""
        import json, os, sys, time
        spool, qid, kind, secret = sys.argv[1:5]
        tmp = spool + "/tmp/" + qid
        os.mkdir(tmp, 0o2770)
        message = tmp + "/message"
        if kind == "symlink":
            os.symlink(secret, message)
        elif kind == "hardlink":
            os.link(secret, message)
        elif kind == "fifo":
            os.mkfifo(message, 0o640)
        elif kind == "device":
            os.mknod(message, 0o640 | 0o020000, os.makedev(1, 5))
        envelope = {"version": "1.0", "id": qid, "sender": "mallory@example.org", "recipients": [{"address": "bob@example.net"}],
                    "arrival": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "size": 19, "uid": 65534}
        with open(tmp + "/envelope.json", "w") as f:
            json.dump(envelope, f)
        for path in [tmp + "/envelope.json", message, tmp]:
            os.lchown(path, 65534, 65534)
        os.chmod(tmp, 0o2770)
        os.rename(tmp, spool + "/drop/" + qid)
        """#

    /// Planted entries in a member's drop: the unprivileged daemon opens
    /// nothing that is not a regular file with one link, never blocks on a
    /// FIFO or reads a device, quarantines each drop with the reason, and
    /// goes on delivering: the secret (readable by root only) reaches no one.
    @Test func daemonFollowsNoPlantedEntry() throws {
        let fixture = try DaemonFixture()
        try fixture.useDropGroup(65534, daemonUser: Self.daemonUser)
        let secret = fixture.spool.layout.root + "/tmp-secret"
        try Data("SECRET-CONTENT-0600".utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        try fixture.start()
        var planted: [String: String] = [:]
        for kind in ["symlink", "hardlink", "fifo", "device"] {
            let id = QueueIDGenerator().next().rawValue
            let process = try BackgroundProcess(["/usr/bin/python3", "-c", Self.planter, fixture.spool.layout.root, id, kind, secret],
                                                log: fixture.spool.directory + "/planter-\(kind).log")
            #expect(process.wait() == 0, "\(kind): \(process.log)")
            planted[id] = kind
        }
        #expect(try Self.drop(fixture, as: Self.victim, subject: "after the planted ones").status == 0)
        #expect(fixture.waitForSink(1))
        #expect(BackgroundProcess.waitUntil(timeout: 30) { (try? fixture.spool.corruptNames()) == planted.keys.sorted() })
        for (id, kind) in planted {
            let reason = String(decoding: (try? fixture.spool.read("corrupt/\(id)/reason")) ?? Data(), as: UTF8.self)
            #expect(!reason.isEmpty, "\(kind)")
            #expect(try fixture.spool.names(.queue).isEmpty)
        }
        #expect(fixture.sink.subjects() == ["after the planted ones"])
        #expect(!fixture.sink.messages().contains { $0.contains("SECRET-CONTENT") })
        #expect(String(decoding: try Data(contentsOf: URL(fileURLWithPath: secret)), as: UTF8.self) == "SECRET-CONTENT-0600")
        #expect(fixture.stop() == 0)
    }

    /// CR, LF and angle brackets in addresses, from the command line and in a
    /// hand-made envelope: refused before anything is written (EX_DATAERR or
    /// EX_USAGE), or quarantined; no command or header reaches the server.
    @Test func noInjectionThroughAddresses() throws {
        let fixture = try DaemonFixture()
        try fixture.useDropGroup(65534, daemonUser: Self.daemonUser)
        try fixture.start()
        let injected = ["bob@example.net\r\nRCPT TO:<evil@example.net>", "bob@example.net>\nDATA", "bob@example.net\rX-Injected: yes"]
        for address in injected {
            let result = try Self.drop(fixture, as: Self.member, subject: "recipient", arguments: [address])
            #expect([64, 65].contains(result.status), "\(address.debugDescription): \(result.status) \(result.stderr)")
            let sender = try Self.drop(fixture, as: Self.member, subject: "sender", arguments: ["-f", address, "bob@example.net"])
            #expect([64, 65].contains(sender.status), "-f \(address.debugDescription): \(sender.status) \(sender.stderr)")
        }
        // The same through a hand-made envelope (the attacker script of TrustBoundaryTests).
        let (id, attacker) = try TrustBoundaryTests.attack(fixture, as: Self.member, extra: """
            {"recipients": [{"address": "bob@example.net\\r\\nRCPT TO:<evil@example.net>"}], "sender": "a@example.org\\r\\nX-Injected: yes"}
            """)
        #expect(attacker.wait() == 0, "\(attacker.log)")
        #expect(TrustBoundaryTests.waitForReason(fixture, id, "envelope"))
        #expect(try Self.drop(fixture, as: Self.member, subject: "clean").status == 0)
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["clean"])
        #expect(!fixture.sink.messages().contains { $0.contains("evil@") || $0.contains("X-Injected") })
        #expect(fixture.stop() == 0)
    }
}
