import Delivery
import Foundation
import PosternCore
import PosternTesting
import Spool
import Testing

/// The TLS policy of direct delivery end to end (issue #16), each scenario
/// against real peers on loopback (`PolicyPeers`: Postfix smtpd listeners as MX
/// hosts, NSD and a validating unbound for DANE, Python's HTTPS server for
/// MTA-STS), driving the daemon as an administrator runs it: DANE pass and
/// mismatch, STARTTLS stripped, MTA-STS enforce, testing and a failed refresh,
/// REQUIRETLS delivered and bounced, `TLS-Required: No`.
@Suite(.serialized, .policyPeers)
struct TLSPolicyScenarioTests {
    let peers: PolicyPeers

    init() throws {
        try #require(PostfixPeer.isAvailable, "Postfix and smtp-sink are needed (tools/test.sh installs them); run as root")
        try #require(DNSSECPeer.isAvailable, "NSD, ldnsutils and unbound are needed (tools/test.sh installs them)")
        try #require(MTASTSPeer.isAvailable, "python3 is needed (tools/test.sh installs it)")
        peers = try #require(PolicyPeers.current)
    }

    /// Drops a message with `postern drop` (`--require-tls` when asked), with `headers` above the Subject.
    @discardableResult
    func drop(_ fixture: DaemonFixture, to recipients: [String], from sender: String = "alice@sender.test",
              requireTLS: Bool = false, headers: [String] = []) throws -> String {
        let text = (headers + ["Subject: scenario", "Message-ID: <\(UUID().uuidString)@sender.test>", "", "hello", ""]).joined(separator: "\n")
        let result = try PosternProcess.run(["drop", "--spool", fixture.spool.layout.root, "-v", "-f", sender]
                                                + (requireTLS ? ["--require-tls"] : []) + recipients,
                                            input: Data(text.utf8), environment: ["POSTERN_HOSTNAME": "sender.test"])
        try #require(result.status == 0, "\(result.stderr)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Waits for the daemon's delivery line of `recipient` with `status` and returns it.
    func deliveryLine(_ fixture: DaemonFixture, _ recipient: String, status: String) throws -> String {
        var found: Substring?
        _ = BackgroundProcess.waitUntil(timeout: 30) {
            found = fixture.log.split(separator: "\n").first { $0.contains("recipient=\(recipient) ") && $0.contains("status=\(status) ") }
            return found != nil
        }
        return String(try #require(found, "no status=\(status) line for \(recipient):\n\(fixture.log)"))
    }

    /// DANE-EE 3 1 1 and DANE-TA 2 1 1: STARTTLS required and verified against the signed TLSA records,
    /// the messages delivered to the listeners the records name, and the attempts' log and history say so.
    @Test func danePass() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        let id = try drop(fixture, to: ["pass@dane-ee.test", "pass@dane-ta.test"])
        for (recipient, ip) in [("pass@dane-ee.test", "127.0.0.2"), ("pass@dane-ta.test", "127.0.0.3")] {
            let line = try deliveryLine(fixture, recipient, status: "sent")
            #expect(line.contains("tls_policy=dane") && line.contains("tls_outcome=dane"), "\(line)")
            let message = try #require(peers.firstSinkMessage(to: recipient))
            #expect(message.contains("by \(peers.listener(ip).hostname) (Postfix) with ESMTPS"), "\(message)")
        }
        let explained = try fixture.postern(["explain", id])
        #expect(explained.stdout.components(separatedBy: "policy dane").count - 1 == 2, "\(explained.stdout)")
        #expect(fixture.stop() == 0)
    }

    /// A certificate that matches no TLSA record: the host fails for now, nothing goes in plaintext,
    /// and the message waits in the queue with the reason.
    @Test func daneMismatchDefers() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        let before = peers.lines(of: peers.listener("127.0.0.2"), containing: " connect from").count
        let id = try drop(fixture, to: ["mismatch@mismatch.test"])
        let line = try deliveryLine(fixture, "mismatch@mismatch.test", status: "deferred")
        #expect(line.contains("tls_policy=dane") && line.contains("tls_outcome=failed"), "\(line)")
        let recipient = try #require(try fixture.envelope(id).recipients.first)
        #expect(recipient.state == .pending)
        #expect(recipient.lastResult?.text.contains("DANE mismatch") == true, "\(String(describing: recipient.lastResult))")
        // One connection, which ended after the handshake: no second, plaintext one.
        #expect(BackgroundProcess.waitUntil(timeout: 10) {
            peers.lines(of: peers.listener("127.0.0.2"), containing: " connect from").count == before + 1
        })
        #expect(try peers.sinkMessages(to: "mismatch@mismatch.test").isEmpty)
        #expect(fixture.stop() == 0)
        #expect(peers.lines(of: peers.listener("127.0.0.2"), containing: " connect from").count == before + 1)
    }

    /// A DANE host whose EHLO lacks STARTTLS (as if an attacker stripped it): a temporary failure; MAIL is never sent.
    @Test func starttlsStrippedDefers() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        let id = try drop(fixture, to: ["stripped@stripped.test"])
        let line = try deliveryLine(fixture, "stripped@stripped.test", status: "deferred")
        #expect(line.contains("tls_policy=dane"), "\(line)")
        let recipient = try #require(try fixture.envelope(id).recipients.first)
        #expect(recipient.state == .pending && recipient.lastResult?.text.contains("STARTTLS") == true,
                "\(String(describing: recipient.lastResult))")
        #expect(fixture.stop() == 0)
        let plain = peers.listener("127.0.0.4")
        #expect(BackgroundProcess.waitUntil(timeout: 10) { !peers.lines(of: plain, containing: "disconnect from").isEmpty })
        // The listener without STARTTLS never sees a MAIL command, in any scenario.
        #expect(peers.lines(of: plain, containing: "disconnect from").allSatisfy { !$0.contains("mail=") }, "\(peers.postfix.log)")
        #expect(try peers.sinkMessages(to: "stripped@stripped.test").isEmpty)
    }

    /// MTA-STS enforce: the preferred MX, not named by the policy, is never dialed (though it would take the
    /// message); the matching MX gets it over PKIX-verified TLS. With no matching MX at all, the message waits.
    @Test func mtaSTSEnforce() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        let skipped = peers.listener("127.0.0.5")
        let before = peers.lines(of: skipped, containing: " connect from").count
        try drop(fixture, to: ["sts@enforce.test"])
        let line = try deliveryLine(fixture, "sts@enforce.test", status: "sent")
        for field in ["host=mx2.enforce.test", "tls_policy=mta-sts-enforce", "tls_outcome=pkix"] {
            #expect(line.contains(field), "\(line)")
        }
        let message = try #require(peers.firstSinkMessage(to: "sts@enforce.test"))
        #expect(message.contains("by \(peers.listener("127.0.0.3").hostname) (Postfix) with ESMTPS"))
        #expect(peers.sts.requests(for: "mta-sts.enforce.test") == 1)

        let id = try drop(fixture, to: ["sts@nomatch.test"])
        let deferred = try deliveryLine(fixture, "sts@nomatch.test", status: "deferred")
        #expect(deferred.contains("tls_policy=mta-sts-enforce"), "\(deferred)")
        #expect(try fixture.envelope(id).recipients.first?.lastResult?.text.contains("matches no mx pattern") == true)
        #expect(fixture.stop() == 0)
        #expect(peers.lines(of: skipped, containing: " connect from").count == before)
        #expect(try peers.sinkMessages(to: "sts@nomatch.test").isEmpty)
        // The policy was fetched once and cached in the spool.
        #expect(FileManager.default.fileExists(atPath: fixture.spool.layout.mtaSTSCache + "/enforce.test.json"))
    }

    /// MTA-STS testing: a certificate that fails PKIX does not stop delivery, and the failure is counted for
    /// TLSRPT; the second count, written behind (within the 10 seconds of the first), is written when the daemon stops.
    @Test func mtaSTSTestingDeliversAndReports() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        try drop(fixture, to: ["testing@testing.test"])
        let line = try deliveryLine(fixture, "testing@testing.test", status: "sent")
        #expect(line.contains("tls_policy=mta-sts-testing") && line.contains("tls_outcome=opportunistic"), "\(line)")
        #expect(peers.firstSinkMessage(to: "testing@testing.test") != nil)
        #expect(try peers.sinkMessages(to: "testing@testing.test").count == 1)
        try drop(fixture, to: ["second@testing.test"])
        _ = try deliveryLine(fixture, "second@testing.test", status: "sent")
        #expect(fixture.stop() == 0)
        let result = try fixture.postern(["tlsrpt", "--domain", "testing.test"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout)")
        let policy = try #require((report["policies"] as? [[String: Any]])?.first)
        #expect((policy["policy"] as? [String: Any])?["policy-type"] as? String == "sts")
        #expect((policy["summary"] as? [String: Int])?["total-failure-session-count"] == 2, "\(policy)")
        let failure = try #require((policy["failure-details"] as? [[String: Any]])?.first)
        #expect(failure["result-type"] as? String == "certificate-not-trusted", "\(failure)")
        #expect(failure["failed-session-count"] as? Int == 2, "\(failure)")
        #expect(failure["receiving-mx-hostname"] as? String == "mx.testing.test", "\(failure)")
    }

    /// A cached enforce policy due for refresh whose fetch fails (HTTP 500) still applies: the plaintext-only
    /// MX is refused (STARTTLS required), and the fetch error is logged.
    @Test func failedRefreshKeepsCachedPolicy() throws {
        let fixture = try peers.daemon()
        let text = "version: STSv1\nmode: enforce\nmx: mx.cached.test\nmax_age: 2592000\n"
        // Fetched two days ago: past its refresh, long before its expiry.
        try MTASTSCache(directory: fixture.spool.layout.mtaSTSCache).store(CachedMTASTSPolicy(
            domain: "cached.test", id: "1", fetched: Date().timeIntervalSince1970 - 2 * 86400, text: text,
            policy: try MTASTSPolicy.parse(Array(text.utf8))))
        try fixture.start()
        let id = try drop(fixture, to: ["cached@cached.test"])
        let line = try deliveryLine(fixture, "cached@cached.test", status: "deferred")
        #expect(line.contains("tls_policy=mta-sts-enforce") && line.contains("mta_sts_error="), "\(line)")
        #expect(line.contains("500"), "\(line)")
        #expect(peers.sts.requests(for: "mta-sts.cached.test") == 1)
        #expect(try fixture.envelope(id).recipients.first?.state == .pending)
        #expect(fixture.stop() == 0)
        #expect(try peers.sinkMessages(to: "cached@cached.test").isEmpty)
        #expect(MTASTSCache(directory: fixture.spool.layout.mtaSTSCache).load("cached.test")?.text == text)
    }

    /// REQUIRETLS to a DANE host that offers it (a scripted peer: Postfix 3.7 does not): MAIL FROM carries
    /// REQUIRETLS over the verified session, and the message is delivered.
    @Test func requireTLSDelivered() throws {
        let tls = ScriptedSMTPPeer.ServerTLS(certificateChain: peers.ee.certificate, key: peers.ee.key)
        let scripted = try ScriptedSMTPPeer(listening: [[
            .send("220 mx.requiretls.test ESMTP"), .expect("EHLO mail.postern.test"), .send("250-mx.requiretls.test\n250 STARTTLS"),
            .expect("STARTTLS"), .send("220 2.0.0 ready"), .startTLS(tls),
            .expect("EHLO mail.postern.test"), .send("250-mx.requiretls.test\n250 REQUIRETLS"),
            .expect("MAIL FROM:<alice@sender.test> REQUIRETLS"), .send("250 2.1.0 ok"),
            .expect("RCPT TO:<rt@requiretls.test>"), .send("250 2.1.5 ok"),
            .expect("DATA"), .send("354 go on"), .receiveData, .send("250 2.0.0 queued"),
            .expect("QUIT"), .send("221 bye"), .waitForClose,
        ]], ip: "127.0.0.6", port: peers.port)
        let fixture = try peers.daemon()
        try fixture.start()
        let id = try drop(fixture, to: ["rt@requiretls.test"], requireTLS: true)
        let line = try deliveryLine(fixture, "rt@requiretls.test", status: "sent")
        #expect(line.contains("tls_policy=dane") && line.contains("tls_outcome=dane"), "\(line)")
        #expect(try Envelope.decode(fixture.spool.read("retired/\(id)/envelope.json")).requireTLS == true)
        #expect(fixture.stop() == 0)
        let outcome = scripted.finish()
        #expect(outcome.failures.isEmpty, "\(outcome.transcript)")
        #expect(outcome.messages.count == 1)
    }

    /// REQUIRETLS where no host qualifies: a DANE host (Postfix) that does not offer REQUIRETLS, and a domain
    /// with no policy at all. Both recipients fail at once with 554 5.7.30, and a DSN saying why reaches the sender.
    @Test func requireTLSBounced() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        try drop(fixture, to: ["rt@dane-ee.test", "rt@plain.test"], requireTLS: true)
        for recipient in ["rt@dane-ee.test", "rt@plain.test"] {
            let line = try deliveryLine(fixture, recipient, status: "bounced")
            #expect(line.contains("code=554") && line.contains("enhanced=5.7.30"), "\(line)")
        }
        #expect(BackgroundProcess.waitUntil(timeout: 30) { ((try? peers.sinkMessages(to: "alice@sender.test")) ?? []).count >= 1 })
        let dsn = try #require(try peers.sinkMessages(to: "alice@sender.test").first { $0.contains("rt@plain.test") })
        #expect(dsn.contains("X-Mail-Args: <>"), "\(dsn)")
        for text in ["5.7.30", "does not offer REQUIRETLS", "not protected by DANE", "rt@dane-ee.test"] {
            #expect(dsn.contains(text), "\(text) missing from:\n\(dsn)")
        }
        #expect(try peers.sinkMessages(to: "rt@dane-ee.test").isEmpty && peers.sinkMessages(to: "rt@plain.test").isEmpty)
        #expect(fixture.stop() == 0)
    }

    /// `TLS-Required: No` (RFC 8689 5): a DANE mismatch and an MX that an enforced MTA-STS policy does not name
    /// no longer stop delivery; both messages arrive with the header as it was written.
    @Test func tlsRequiredNoFallsBack() throws {
        let fixture = try peers.daemon()
        try fixture.start()
        try drop(fixture, to: ["no@mismatch.test", "no@nomatch.test"], headers: ["TLS-Required: No"])
        for (recipient, ip, policy) in [("no@mismatch.test", "127.0.0.2", "dane"), ("no@nomatch.test", "127.0.0.5", "mta-sts-enforce")] {
            let line = try deliveryLine(fixture, recipient, status: "sent")
            #expect(line.contains("tls_policy=\(policy)") && line.contains("tls_outcome=opportunistic"), "\(line)")
            let message = try #require(try peers.sinkMessages(to: recipient).first)
            #expect(message.contains("by \(peers.listener(ip).hostname) (Postfix)"), "\(message)")
            #expect(message.components(separatedBy: "\nTLS-Required: No\n").count == 2, "\(message)")
        }
        #expect(fixture.stop() == 0)
    }
}
