import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Issue #19, end to end: mail for this machine's own users, through a real
/// daemon relaying to smtp-sink on loopback. The fixture's host name is
/// `mail.postern.test`, so the local domains are it and `localhost`.
@Suite(.serialized)
struct LocalRecipientsEndToEndTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// An aliases file of its own, outside the spool (the fixture's overrides are fixed at its creation).
    static func aliasesFile(_ text: String) throws -> String {
        let directory = NSTemporaryDirectory() + "postern-aliases-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/aliases"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The recipients smtp-sink recorded for each message it received.
    static func rcpts(_ fixture: DaemonFixture) -> [[String]] {
        fixture.sink.messages().map { text in
            text.split(separator: "\n").filter { $0.hasPrefix("X-Rcpt-Args: ") }.map { String($0.dropFirst(13)) }
        }
    }

    /// `postern drop root`, as cron runs it: completed to root@mail.postern.test,
    /// rewritten by the aliases (a local name followed to a second alias), and
    /// delivered to their targets; the envelope keeps root@… as each one's ORCPT,
    /// and the RCPT commands carry it.
    @Test func sendmailRootReachesTheAliasTargets() throws {
        let aliases = try Self.aliasesFile("# aliases\npostmaster: root\nroot: ops@example.net,\n\tAdmin, |/bin/false\nadmin: boss@example.org\n")
        let fixture = try DaemonFixture(overrides: ["queue.keep_retired=1h", "local.aliases=\(aliases)"])
        try fixture.start()
        let dropped = try PosternProcess.run(["drop", "--spool", fixture.spool.layout.root, "-v", "root"],
                                             input: Data("Subject: cron\n\nhello\n".utf8),
                                             environment: ["POSTERN_HOSTNAME": "mail.postern.test"])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        let id = dropped.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // One transaction or one per domain: the daemon's choice; the sink has both recipients.
        #expect(BackgroundProcess.waitUntil(timeout: 60) { Self.rcpts(fixture).joined().count >= 2 })
        #expect(fixture.waitForEmptyQueue())
        // smtp-sink offers DSN: each carries what the sender wrote as ORCPT (RFC 3461 4.2).
        #expect(Self.rcpts(fixture).joined().sorted() == ["<boss@example.org> ORCPT=rfc822;root@mail.postern.test",
                                                          "<ops@example.net> ORCPT=rfc822;root@mail.postern.test"])
        let retired = try Envelope.decode(fixture.spool.read("retired/\(id)/envelope.json"))
        #expect(retired.recipients.map(\.address) == ["ops@example.net", "boss@example.org"])
        #expect(retired.recipients.map(\.original) == ["root@mail.postern.test", "root@mail.postern.test"])
        #expect(retired.recipients.allSatisfy { $0.state == .delivered })
        let line = try #require(fixture.log.split(separator: "\n").first { $0.contains("msg=\"local recipient\"") })
        for field in ["id=\(id)", "recipient=root@mail.postern.test", "to=ops@example.net,boss@example.org", "by=alias"] {
            #expect(line.contains(field), "\(line)")
        }
        // The command target is reported when the file is read, and never run.
        #expect(fixture.log.contains("commands are never run; skipped"))
        #expect(fixture.stop() == 0)
    }

    /// A bounce to a local sender (root@ this host, which has no MX) goes to
    /// local.admin_address, with what the sender was as the DSN's ORCPT.
    @Test func bounceToLocalSenderReachesTheAdmin() throws {
        let fixture = try DaemonFixture(overrides: ["local.aliases=", "local.admin_address=admin@example.net", "queue.keep_retired=1h"],
                                        config: DSNEndToEndTests.failConfig)
        try fixture.start()
        let id = try fixture.drop(subject: "doomed", to: ["victim@forbidden.test"], from: "root@mail.postern.test")
        #expect(fixture.waitForLog("status=bounced"))
        #expect(fixture.waitForSink(1))
        #expect(fixture.waitForEmptyQueue())
        #expect(Self.rcpts(fixture) == [["<admin@example.net> ORCPT=rfc822;root@mail.postern.test"]])
        let dsn = try #require(fixture.sink.messages().first)
        #expect(dsn.contains("Subject: Undelivered mail returned to sender") && dsn.contains("X-Postern-Queue-ID: \(id)"))
        let line = try #require(fixture.log.split(separator: "\n").first { $0.contains("msg=\"local recipient\"") })
        for field in ["recipient=root@mail.postern.test", "to=admin@example.net", "by=admin_address"] {
            #expect(line.contains(field), "\(line)")
        }
        #expect(fixture.stop() == 0)
    }

    /// When the admin address refuses it too, the DSN is a double bounce: kept
    /// in hold/ with its reason, as before, its recipient's ORCPT the local sender.
    @Test func doubleBounceIsStillHeld() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-f", "RCPT"], overrides: ["local.aliases=", "local.admin_address=admin@example.net"])
        try fixture.start()
        try fixture.drop(subject: "doomed", to: ["nobody@x.example"], from: "root@mail.postern.test")
        #expect(fixture.waitForLog("double bounce kept in hold/"))
        let held = try #require(try fixture.spool.names(.hold).first)
        let envelope = try fixture.envelope(held, in: .hold)
        #expect(envelope.sender == nil)
        #expect(envelope.recipients.map(\.address) == ["admin@example.net"])
        #expect(envelope.recipients.map(\.original) == ["root@mail.postern.test"])
        #expect(envelope.holdReason?.contains("undeliverable bounce kept for the postmaster") == true)
        // postern explain shows what the sender wrote beside the address it became.
        let explained = try fixture.postern(["explain", held])
        #expect(explained.stdout.contains("  admin@example.net (for root@mail.postern.test): "), "\(explained.stdout)")
        #expect(fixture.stop() == 0)
    }
}
