import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// postern explain: a message's story from its envelope and the retry schedule from the configuration.
struct ExplainCommandTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func explain(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(["explain"] + arguments + ["--spool", spool.layout.root])
    }

    /// Issue #19: a recipient an alias rewrote shows what the sender wrote (its ORCPT), in text and JSON.
    @Test func originalRecipient() throws {
        let envelope = try spool.plant(.queue, recipients: ["ops@example.net", "bob@example.net"]) {
            $0.recipients[0].original = "root@vm"
        }
        let text = try explain([envelope.id.rawValue])
        #expect(text.stdout.contains("  ops@example.net (for root@vm): pending after 0 attempts"), "\(text.stdout)")
        #expect(text.stdout.contains("  bob@example.net: pending"))
        let json = try explain(["--json", envelope.id.rawValue])
        #expect(json.stdout.contains("\"original\":\"root@vm\""), "\(json.stdout)")
        #expect(json.stdout.contains("\"envid\":null") && json.stdout.contains("\"ret\":null"), "\(json.stdout)")
    }

    /// RFC 3461 RET and ENVID are in the JSON as the envelope has them.
    @Test func retAndEnvelopeID() throws {
        let envelope = try spool.plant(.queue) {
            $0.dsnReturn = .full
            $0.envelopeID = "QQ+2B1"
        }
        let json = try explain(["--json", envelope.id.rawValue])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["ret"] as? String == "full" && object["envid"] as? String == "QQ+2B1")
    }

    /// A deferred message: its attempt with host, address, TLS and reply, and the real remaining schedule.
    @Test func deferred() throws {
        let attempt = Date(timeIntervalSinceNow: -60)
        let next = Date(timeIntervalSinceNow: 3600)
        let envelope = try spool.plant(.queue) {
            $0.attempts = 1
            $0.nextAttempt = next
            let result = DeliveryResult(time: attempt, code: 451, enhanced: "4.7.1", text: "451 4.7.1 greylisted", host: "mx.example.net", permanent: false)
            $0.recipients[0].attempts = 1
            $0.recipients[0].lastResult = result
            var record = AttemptRecord(time: attempt, recipients: ["bob@example.net"], host: "mx.example.net", ip: "192.0.2.7", tls: "TLSv1.3", result: result)
            record.policy = .dane
            $0.record(record)
        }
        let text = try explain([envelope.id.rawValue])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("It is queued."))
        #expect(text.stdout.contains("Attempts made: 1 of at most 8."))
        #expect(text.stdout.contains("mx.example.net [192.0.2.7] TLS TLSv1.3 policy dane: 451 4.7.1 greylisted"))
        #expect(text.stdout.contains("bob@example.net: pending after 1 attempt; last: 451 4.7.1 greylisted from mx.example.net"))
        #expect(text.stdout.contains("Next: attempt 2 is due \(Timestamp.format(next))"))
        #expect(text.stdout.contains("7 attempts remain"))

        let json = try explain(["--json", envelope.id.rawValue])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let remaining = try #require(object["remaining_attempts"] as? [String])
        // The defaults: 15 m after attempt 2, then 30 m, 1 h, 2 h, 4 h, 8 h.
        let times = remaining.compactMap(Timestamp.parse)
        #expect(zip(times.dropFirst(), times).map { $0.timeIntervalSince($1) } == [900, 1800, 3600, 7200, 14400, 28800])
        #expect(object["delayed_dsn_sent"] as? Bool == false)
        #expect(object["state"] as? String == "queued")
        let history = try #require(object["history"] as? [[String: Any]])
        #expect(history.first?["tls_policy"] as? String == "dane")
    }

    /// A held message says why and that nothing is attempted.
    @Test func held() throws {
        let envelope = try spool.plant(.hold) { $0.holdReason = "spam check" }
        let text = try explain([envelope.id.rawValue])
        #expect(text.stdout.contains("It is held: spam check."))
        #expect(!text.stdout.contains("Next:"))
    }

    /// A quarantined message shows the scanner's reason; an unknown one is EX_NOINPUT.
    @Test func quarantinedAndMissing() throws {
        let envelope = try spool.plant(.queue)
        try Data("{".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, envelope.id) + "/envelope.json"))
        _ = try PosternProcess.run(["check", "--spool", spool.layout.root])
        let text = try explain([envelope.id.rawValue])
        #expect(text.stdout.contains("is quarantined: envelope: not valid JSON"))
        #expect(try explain([QueueIDGenerator().next().rawValue]).status == 66)
    }
}
