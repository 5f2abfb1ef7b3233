@testable import Daemon
import Foundation
import Glibc
import Logging
import PosternCore
import PosternTesting
import SMTP
import Spool
import Testing

/// Issue #12, items 5 and 10: a failure DSN survives a full disk and a crash
/// (the `dsn_pending` mark), and the daemon bounds what a hostile or broken
/// peer, or a damaged envelope, can do to its schedule.
@Suite(.serialized)
struct FailureDSNTests {
    init() throws {
        try #require(getuid() == 0, "mounts a file system and attaches strace")
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    static let forbiddenConfig = """
        [transports.forbidden]
        kind = "fail"
        code = 554
        enhanced = "5.7.1"
        text = "mail to example.net is not permitted"

        [[routes]]
        recipient_domains = ["example.net"]
        transport = "forbidden"
        """

    /// A message waiting in hold/ before the daemon starts, so that the test
    /// can prepare the ground before it releases it for its attempt.
    static func held(_ fixture: DaemonFixture) throws -> String {
        try fixture.spool.plant(.hold).id.rawValue
    }

    /// With no room in tmp/ (its own file system without a free inode), the
    /// DSN cannot be dropped: the message stays, marked, and the DSN goes out
    /// after a restart once there is room.
    @Test func failureDSNWaitsForRoomOnAFullDisk() throws {
        let fixture = try DaemonFixture(config: Self.forbiddenConfig)
        let id = try Self.held(fixture)
        try fixture.start()
        let tmp = fixture.spool.layout.tmp
        #expect(mount("none", tmp, "tmpfs", 0, "size=64k,nr_inodes=1") == 0, "\(String(cString: strerror(errno)))")
        defer { umount2(tmp, Int32(MNT_DETACH)) }

        #expect(try fixture.postern(["release", id]).status == 0)
        // Said once, as a condition of the spool (SpoolTrouble), not per DSN.
        #expect(fixture.waitForLog("msg=\"spool not writable\" condition=no_space"))
        #expect(fixture.log.contains("No space left on device"))
        #expect(try fixture.envelope(id).dsnPending == ["bob@example.net"])
        #expect(fixture.stop() == 0)
        #expect(try fixture.spool.names(.queue) == [id])

        #expect(umount2(tmp, Int32(MNT_DETACH)) == 0)
        try fixture.start()
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.messages().first?.contains("not permitted") == true)
        #expect(fixture.waitForLog("delivered=0 failed=1 id=\(id)"))
        #expect(!(try fixture.spool.names(.queue).contains(id)))
        #expect(fixture.stop() == 0)
    }

    /// Killed at the DSN's mkdir, after the update that marked the recipient
    /// failed: the restarted daemon sends the DSN before it removes the message.
    @Test func failureDSNSurvivesACrash() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "strace (tools/test.sh installs it)")
        let fixture = try DaemonFixture(config: Self.forbiddenConfig)
        let id = try Self.held(fixture)
        try fixture.start()
        let daemon = try #require(fixture.daemon)
        let tracer = try BackgroundProcess(["/usr/bin/strace", "-f", "-o", "/dev/null", "-e", "trace=mkdir,mkdirat",
                                            "-e", "inject=mkdir,mkdirat:signal=SIGKILL", "-p", "\(daemon.pid)"],
                                           log: fixture.spool.directory + "/strace.log")
        // strace says it has attached on standard error (its -o goes elsewhere).
        #expect(BackgroundProcess.waitUntil(timeout: 30) { tracer.log.contains("attached") })
        #expect(try fixture.postern(["release", id]).status == 0)
        #expect(daemon.wait() == 128 + SIGKILL)
        tracer.wait()
        #expect(try fixture.envelope(id).dsnPending == ["bob@example.net"])
        #expect(fixture.sink.messages().isEmpty)

        try fixture.start()
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.messages().first?.contains("not permitted") == true)
        #expect(fixture.waitForLog("delivered=0 failed=1 id=\(id)"))
        #expect(fixture.stop() == 0)
    }

    /// A server that accepts the connection and never speaks keeps within
    /// every per-read timeout for minutes; queue.attempt_timeout ends the
    /// attempt as a temporary failure that says why.
    @Test func attemptDeadlineAbortsASilentServer() throws {
        let silent = try SilentListener()
        let fixture = try DaemonFixture(overrides: ["queue.attempt_timeout=2s"], relayPort: silent.port)
        try fixture.start()
        let id = try fixture.drop(subject: "silent")
        #expect(fixture.waitForLog("attempt timed out", timeout: 30))
        #expect(fixture.waitForLog("status=deferred", timeout: 30))
        #expect(fixture.log.contains("queue.attempt_timeout"))
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            (try? fixture.envelope(id))?.recipients[0].lastResult?.text.contains("attempt aborted after 2s") == true
        })
        #expect(fixture.stop() == 0)
    }

    /// A message whose envelope was damaged while it waited is quarantined when
    /// it comes due, with a log line, instead of silently leaving the schedule;
    /// with only `envelope.json` damaged, the envelope the last update replaced
    /// (the spare) holds, with a warning, as after a power loss that tore it.
    @Test func damagedEnvelopeIsQuarantinedWhenDue() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"], overrides: ["queue.backoff_base=1s"])
        try fixture.start()
        let id = try fixture.drop(subject: "damaged")
        #expect(fixture.waitForLog("status=deferred"))
        // After the daemon has written the attempt's result, which would replace the damage.
        #expect(BackgroundProcess.waitUntil(timeout: 30) { (try? fixture.envelope(id))?.lastResult != nil })
        let directory = fixture.spool.layout.path(.queue, QueueID(id)!)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/envelope.json"))
        #expect(fixture.waitForLog("envelope.json is damaged"))
        #expect(fixture.log.contains("id=\(id)"))
        #expect(fixture.waitForLog("status=deferred", count: 2))
        #expect(BackgroundProcess.waitUntil(timeout: 30) { (try? fixture.envelope(id))?.attempts ?? 0 >= 2 })
        for name in ["envelope.json", "envelope.json.tmp"] {
            try Data("{not json".utf8).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        #expect(TrustBoundaryTests.waitForReason(fixture, id, "from: queue/\(id)"))
        #expect(fixture.log.contains("cannot read a due message"))
        #expect(fixture.stop() == 0)
    }

    /// A DSN never carries a line over 998 octets (RFC 5322 2.1.1), even when
    /// the original it returns was hand-made with one: the original is left out.
    @Test func dsnLinesStayWithinTheLimit() throws {
        let spool = try TemporarySpool()
        let long = String(repeating: "x", count: 5000)
        let envelope = try spool.plant(.queue, message: "Subject: long\r\n\r\n\(long)\r\n") {
            $0.recipients[0].state = .failed
            $0.recipients[0].lastResult = DeliveryResult(time: Date(), code: 550, text: "550 " + long, permanent: true)
        }
        let dsn = SpoolDSN(layout: spool.layout, settings: .init(hostname: "test.example", returnFullUpTo: 1 << 20),
                           logger: Logger(label: "test"))
        #expect(dsn.failed(envelope, recipients: envelope.recipients))
        let id = try #require(try spool.names(.drop).first)
        let bytes = Array(try spool.read("drop/\(id)/message"))
        #expect(SpoolDSN.longestLine(bytes) <= 998)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("Subject: long"))
        #expect(SpoolDSN.longestLine(Array("ab\r\ncde\r\n".utf8)) == 3)
    }

    /// A REQUIRETLS message that bounces comes back as headers only, whatever dsn.return_full_up_to says (RFC 8689 4.4).
    @Test func requireTLSBounceReturnsHeadersOnly() throws {
        let spool = try TemporarySpool()
        let envelope = try spool.plant(.queue, message: "Subject: secret plans\r\n\r\nthe body stays here\r\n") {
            $0.requireTLS = true
            $0.recipients[0].state = .failed
            $0.recipients[0].lastResult = DeliveryResult(time: Date(), code: 554, enhanced: "5.7.30",
                                                         text: "REQUIRETLS support required", permanent: true)
        }
        let dsn = SpoolDSN(layout: spool.layout, settings: .init(hostname: "test.example", returnFullUpTo: 1 << 20),
                           logger: Logger(label: "test"))
        #expect(dsn.failed(envelope, recipients: envelope.recipients))
        let id = try #require(try spool.names(.drop).first)
        let text = String(decoding: Array(try spool.read("drop/\(id)/message")), as: UTF8.self)
        #expect(text.contains("Subject: secret plans"))
        #expect(text.contains("5.7.30"))
        #expect(!text.contains("the body stays here"))
    }

    /// Spool files are never opened as FIFOs or through links: the DSN's copy
    /// of the original and the SMTP client's message source refuse at once.
    @Test func fifoInPlaceOfTheMessageDoesNotHang() throws {
        let spool = try TemporarySpool()
        let envelope = try spool.plant(.queue)
        let message = spool.layout.path(.queue, envelope.id) + "/message"
        try FileManager.default.removeItem(atPath: message)
        #expect(mkfifo(message, 0o600) == 0)
        let dsn = SpoolDSN(layout: spool.layout, settings: .init(hostname: "test.example"), logger: Logger(label: "test"))
        #expect(throws: (any Error).self) { try dsn.readOriginal(envelope.id, size: envelope.size, full: true) }
        #expect(throws: SMTPError.Refusal.self) { try FileMessageSource(path: message) }
        try FileManager.default.removeItem(atPath: message)
        #expect(symlink("/etc/hostname", message) == 0)
        #expect(throws: SMTPError.Refusal.self) { try FileMessageSource(path: message) }
    }
}

/// A loopback TCP port that completes connections (the kernel's backlog) and
/// never says a word: the slowest possible SMTP server.
final class SilentListener {
    let fd: Int32
    let port: UInt16

    init() throws {
        (fd, port) = try bindLoopback()
        guard listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
    }

    deinit {
        close(fd)
    }
}
