import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool
import Daemon
import Scheduler

/// DSNs end to end: produced by the daemon, delivered by it, parsed back by Python's email package.
@Suite(.serialized)
struct DSNEndToEndTests {
    init() throws {
        try #require(LocalSink.isAvailable && PostfixPeer.isAvailable, "Postfix and smtp-sink are needed (tools/test.sh installs them)")
    }

    /// Parses a message with Python's email package and returns what it found, as JSON.
    static func parseWithPython(_ message: Data) throws -> [String: Any] {
        let script = """
        import email, email.policy, json, sys
        msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
        out = {"headers": {k: str(v) for k, v in msg.items()}, "parts": []}
        for part in msg.iter_parts():
            entry = {"type": part.get_content_type()}
            if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
                entry["blocks"] = [dict(block.items()) for block in part.get_payload()]
            elif part.get_content_type() == "text/plain":
                entry["text"] = part.get_content()
            else:
                entry["text"] = part.as_string()
            out["parts"].append(entry)
        out["report_type"] = msg.get_param("report-type")
        print(json.dumps(out))
        """
        let data = Data(try PythonScript.run(script, input: message).utf8)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// A 550 from real Postfix drives a failure DSN, which the daemon delivers to the sender through the same server.
    @Test func failureDSNThroughPostfix() throws {
        let directory = NSTemporaryDirectory() + "/postern-dsn-certs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
        let paths = try TestCertificate.selfSigned(commonName: "mx.postern.test", dnsNames: ["mx.postern.test"]).write(to: directory, name: "smtpd")
        chmod(paths.key, 0o644)
        let peer = try PostfixPeer(certificate: paths.certificate, key: paths.key)
        let fixture = try DaemonFixture(relayPort: peer.smtpdPort)
        try fixture.start()
        let id = try fixture.drop(subject: "doomed", to: ["reject@x.example"])
        #expect(fixture.waitForLog("status=bounced"))
        let arrived = try peer.waitForSinkMessages(count: 1)
        let dsn = try PostfixPeer.body(ofSinkMessage: arrived[0])
        #expect(fixture.waitForEmptyQueue())
        #expect(fixture.stop() == 0)

        let parsed = try Self.parseWithPython(dsn)
        let headers = try #require(parsed["headers"] as? [String: String])
        #expect(headers["From"] == "MAILER-DAEMON@mail.postern.test")
        #expect(headers["To"] == "alice@example.org")
        #expect(headers["Subject"] == "Undelivered mail returned to sender")
        #expect(headers["In-Reply-To"] == "<doomed@test>" && headers["References"] == "<doomed@test>")
        #expect(headers["Auto-Submitted"] == "auto-replied")
        #expect(headers["Message-ID"]?.hasSuffix("@mail.postern.test>") == true)
        #expect(headers["Date"] != nil)
        #expect(parsed["report_type"] as? String == "delivery-status")
        let parts = try #require(parsed["parts"] as? [[String: Any]])
        #expect(parts.map { $0["type"] as? String } == ["text/plain", "message/delivery-status", "text/rfc822-headers"])
        #expect((parts[0]["text"] as? String)?.contains("<reject@x.example>:") == true)
        let blocks = try #require(parts[1]["blocks"] as? [[String: String]])
        #expect(blocks.count == 2)
        #expect(blocks[0]["Reporting-MTA"] == "dns; mail.postern.test")
        #expect(blocks[0]["X-Postern-Queue-ID"] == id)
        #expect(blocks[0]["Arrival-Date"] != nil)
        #expect(blocks[1]["Final-Recipient"] == "rfc822; reject@x.example")
        #expect(blocks[1]["Action"] == "failed")
        #expect(blocks[1]["Status"] == "5.1.1")
        #expect(blocks[1]["Remote-MTA"] == "dns; 127.0.0.1")
        #expect(blocks[1]["Diagnostic-Code"]?.hasPrefix("smtp; 550 5.1.1 <reject@x.example>") == true)
        #expect(blocks[1]["Last-Attempt-Date"] != nil)
        #expect((parts[2]["text"] as? String)?.contains("Subject: doomed") == true)
    }

    /// A failing message with the null sender (a bounce) gets no DSN: logged, and gone.
    @Test func noDSNForNullSender() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-f", "RCPT"])
        try fixture.start()
        let id = try fixture.drop(subject: "bounce", to: ["nobody@x.example"], from: nil)
        #expect(fixture.waitForLog("undeliverable bounce"))
        #expect(fixture.waitForEmptyQueue())
        #expect(!fixture.log.contains("msg=dsn "))
        #expect(try fixture.spool.names(.drop).isEmpty)
        // No dsn.postmaster to tell: the double bounce is kept in hold/ with a reason, never discarded.
        #expect(fixture.waitForLog("double bounce kept in hold/"))
        #expect(try fixture.spool.names(.hold) == [id])
        #expect(try fixture.envelope(id, in: .hold).holdReason?.contains("undeliverable bounce kept for the postmaster") == true)
        #expect(fixture.stop() == 0)
        // A restart keeps it held (not retried, not removed).
        try fixture.start()
        #expect(try fixture.spool.names(.hold) == [id])
        #expect(fixture.stop() == 0)
    }

    /// With dsn.delay_warning_attempts=2 and max_attempts=3, one delayed DSN, then one failure DSN at expiry.
    @Test func delayedOnceThenExpired() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"],
                                        overrides: ["queue.backoff_base=1s", "queue.max_attempts=3", "dsn.delay_warning_attempts=2"])
        try fixture.start()
        let id = try fixture.drop(subject: "slowpoke", to: ["late@x.example"])
        #expect(fixture.waitForLog("status=expired"))
        #expect(fixture.waitForLog("msg=dsn", count: 2))
        let dsnLines = fixture.log.split(separator: "\n").filter { $0.contains("msg=dsn ") && $0.contains("id=\(id)") }
        #expect(dsnLines.filter { $0.contains("kind=delayed") }.count == 1)
        #expect(dsnLines.filter { $0.contains("kind=failed") }.count == 1)
        #expect(fixture.stop() == 0)
    }
}

extension DSNEndToEndTests {
    /// dsn.postmaster hears of failed bounces and gets copies of failure DSNs; none of that is ever answered by another DSN.
    @Test func postmasterNotifications() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-f", "RCPT"],
                                        overrides: ["dsn.postmaster=postmaster@example.org", "dsn.copy_failures_to_postmaster=true"])
        try fixture.start()
        let id = try fixture.drop(subject: "rejected", to: ["nobody@x.example"])
        // The failure DSN to the sender and its copy to the postmaster; both bounce too (the
        // sink rejects every recipient). The bounced DSN is reported to the postmaster once;
        // the postmaster's own notifications (notify=never) are reported to no one.
        #expect(fixture.waitForLog("to=alice@example.org"))
        #expect(fixture.waitForLog("undeliverable bounce"))
        #expect(fixture.waitForLog("undeliverable notification", count: 2))
        #expect(fixture.waitForEmptyQueue())
        let lines = fixture.log.split(separator: "\n").filter { $0.contains("msg=dsn ") }
        #expect(lines.filter { $0.contains("id=\(id)") }.count == 2)
        #expect(lines.count == 3)
        #expect(fixture.stop() == 0)
    }
}

/// The schedule a delayed DSN promises is the one the daemon will follow.
struct RemainingScheduleTests {
    /// After attempt 5 of 8 with the defaults, the remaining attempts are the registered next one, then +4 h, then +8 h.
    @Test func defaultsAfterFifthAttempt() throws {
        var settings = DaemonSettings(hostname: "mail.example.org")
        settings.backoff = Backoff(base: 450, factor: 2, jitter: 5)
        let next = Date(timeIntervalSince1970: 1_800_000_000)
        var envelope = Envelope(id: QueueIDGenerator().next(), sender: "a@b.example", recipients: [Recipient(address: "c@d.example")],
                                arrival: next, size: 1, uid: 0)
        envelope.attempts = 5
        envelope.nextAttempt = next
        let schedule = settings.remainingSchedule(for: envelope)
        #expect(schedule.map { $0.timeIntervalSince(next) } == [0, 14_400, 14_400 + 28_800])
        envelope.maxAttempts = 6
        #expect(settings.remainingSchedule(for: envelope) == [next])
        envelope.attempts = 6
        #expect(settings.remainingSchedule(for: envelope).isEmpty)
    }
}

extension DSNEndToEndTests {
    static let failConfig = """
        [transports.forbidden]
        kind = "fail"
        code = 554
        enhanced = "5.7.1"
        text = "mail to forbidden.test is not permitted"

        [transports.busy]
        kind = "fail"
        code = 451
        text = "try again later"

        [[routes]]
        recipient_domains = ["forbidden.test"]
        transport = "forbidden"

        [[routes]]
        recipient_domains = ["later.test"]
        transport = "busy"
        """

    /// The fail transport's 5xx bounces at once with a failure DSN carrying its
    /// code and text; its 4xx defers, and `kick --transport` sends the message on.
    @Test func failTransport() throws {
        let fixture = try DaemonFixture(overrides: ["queue.keep_retired=1h", "queue.backoff_base=1h"], config: Self.failConfig)
        try fixture.start()
        let forbidden = try fixture.drop(subject: "forbidden", to: ["victim@forbidden.test"])
        let later = try fixture.drop(subject: "later", to: ["patient@later.test"])
        #expect(fixture.waitForLog("status=bounced"))
        #expect(fixture.waitForLog("status=deferred"))
        #expect(fixture.waitForSink(1))
        let dsn = try #require(fixture.sink.messages().first)
        // smtp-sink's records and Received: come first, as extra header lines the parser reads past.
        let parsed = try Self.parseWithPython(Data(dsn.utf8))
        let parts = try #require(parsed["parts"] as? [[String: Any]])
        let blocks = try #require(parts.first { $0["type"] as? String == "message/delivery-status" }?["blocks"] as? [[String: String]])
        #expect(blocks.last?["Final-Recipient"] == "rfc822; victim@forbidden.test")
        #expect(blocks.last?["Action"] == "failed")
        #expect(blocks.last?["Status"] == "5.7.1")
        #expect(blocks.last?["Diagnostic-Code"] == "smtp; 554 5.7.1 mail to forbidden.test is not permitted")
        // The recorded outcome: in the retired envelope, and in the deferred one.
        let retired = try Envelope.decode(fixture.spool.read("retired/\(forbidden)/envelope.json"))
        #expect(retired.recipients[0].lastResult?.code == 554 && retired.recipients[0].state == .failed)
        let waiting = try fixture.envelope(later)
        #expect(waiting.recipients[0].lastResult?.code == 451 && waiting.recipients[0].state == .pending)
        #expect(try fixture.postern(["kick", "--transport", "relay", later]).status == 0)
        #expect(fixture.waitForLog("status=sent", count: 2))
        #expect(fixture.waitForSink(2))
        #expect(fixture.stop() == 0)
    }
}
