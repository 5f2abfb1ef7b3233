import Foundation
import PosternTesting
import Spool
import Testing

/// Issue #17, hostile servers at the daemon's level: one destination is a
/// hostile server, another a good one (smtp-sink). With a single delivery slot
/// (queue.max_concurrent = 1) the good mail can only go out if the hostile
/// attempt gives the slot back: nothing waits on the hostile server's goodwill,
/// and its mail is deferred with a reason an operator can read.
@Suite(.serialized) struct HostileDestinationTests {
    /// Greeting drip-fed (slowloris), an endless reply, and a hang after the
    /// final dot; with the expected reason for the deferral.
    static let servers: [([ScriptedSMTPPeer.Step], String)] = [
        ([.drip(Array("220 \(String(repeating: "s", count: 400)) ESMTP\r\n".utf8), interval: 0.1)],
         "attempt aborted after 2s"),
        ([.send("220 mx.hostile.test ESMTP"), .expectPrefix("EHLO "), .flood(Array("250-AGAIN\r\n".utf8), limit: 64 << 20)],
         "reply of more than 100 lines"),
        ([.send("220 mx.hostile.test ESMTP"), .expectPrefix("EHLO "), .send("250 mx.hostile.test"),
          .expectPrefix("MAIL FROM:"), .send("250 ok"), .expectPrefix("RCPT TO:"), .send("250 ok"),
          .expect("DATA"), .send("354 go"), .receiveData, .waitForClose],
         "attempt aborted after 2s"),
    ]

    /// The hostile attempt ends within the attempt timeout (or at once, for a
    /// protocol error), its message is deferred with the reason, the slot
    /// comes back, and mail for the good destination is delivered.
    @Test(arguments: 0..<3)
    func hostileDestinationDoesNotStopOtherMail(_ index: Int) throws {
        let (script, reason) = Self.servers[index]
        let peer = try ScriptedSMTPPeer(listening: script)
        let fixture = try DaemonFixture(overrides: ["queue.max_concurrent=1", "queue.attempt_timeout=2s", "queue.backoff_base=1h"],
                                        config: """
            [transports.hostile]
            kind = "relay"
            host = "127.0.0.1:\(peer.port)"
            tls = "none"

            [[routes]]
            recipient_domains = ["hostile.test"]
            transport = "hostile"
            """)
        try fixture.start()
        defer { fixture.stop() }
        let hostile = try fixture.drop(subject: "hostile", to: ["victim@hostile.test"])
        // Registered, so launched: it holds the only slot now.
        #expect(BackgroundProcess.waitUntil(timeout: 30) { ((try? fixture.envelope(hostile).attempts) ?? 0) >= 1 })
        try fixture.drop(subject: "good", to: ["bob@example.net"])
        #expect(fixture.waitForSink(1, timeout: 60))
        #expect(fixture.waitForLog("status=deferred"))
        // The hostile server saw the client hang up: no thread is left talking to it.
        let outcome = peer.finish()
        #expect(outcome.flooded < 64 << 20)
        let recipient = try #require(try fixture.envelope(hostile).recipients.first)
        #expect(recipient.state == .pending)
        #expect(recipient.lastResult?.text.contains(reason) == true, "\(String(describing: recipient.lastResult))")
        // The slot is free for the next message too.
        try fixture.drop(subject: "after", to: ["carol@example.net"])
        #expect(fixture.waitForSink(2, timeout: 60))
        #expect(fixture.stop() == 0)
    }
}
