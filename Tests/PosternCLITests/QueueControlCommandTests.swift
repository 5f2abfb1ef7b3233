import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// kick, hold, release, delete, fail and requiretls without a daemon: the command takes the lock and applies them.
struct QueueControlCommandTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func postern(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(arguments + ["--spool", spool.layout.root])
    }

    func envelope(_ id: QueueID, _ area: SpoolLayout.Area = .queue) throws -> Envelope {
        try Envelope.decode(spool.read("\(area.rawValue)/\(id)/envelope.json"))
    }

    /// Selection by sender, recipient, domain and age combines; --dry-run changes nothing.
    @Test func selectionAndDryRun() throws {
        let old = try spool.plant(.queue, recipients: ["a@x.example"]) { $0.arrival = Date(timeIntervalSinceNow: -7200) }
        let recent = try spool.plant(.queue, recipients: ["b@y.example"]) { $0.arrival = Date() }
        let other = try spool.plant(.hold, recipients: ["c@x.example"]) { $0.sender = "zed@example.org"; $0.arrival = Date(timeIntervalSinceNow: -7200) }
        let byDomain = try postern(["delete", "--dry-run", "--domain", "x.example"])
        #expect(byDomain.stdout.contains("\(old.id): would change") && byDomain.stdout.contains("\(other.id): would change"))
        #expect(byDomain.stdout.hasSuffix("2 messages would be affected by delete\n"))
        let combined = try postern(["delete", "--dry-run", "--domain", "x.example", "--sender", "alice@example.org", "--older-than", "1h"])
        #expect(combined.stdout.contains("\(old.id)") && !combined.stdout.contains("\(other.id)") && !combined.stdout.contains("\(recent.id)"))
        let json = try postern(["delete", "--dry-run", "--json", "--recipient", "B@Y.example"])
        #expect(json.stdout == "{\"action\":\"delete\",\"id\":\"\(recent.id)\",\"result\":\"would change\"}\n")
        #expect(try spool.names(.queue).count == 2 && spool.names(.hold).count == 1)
    }

    /// Nothing selected is a usage error; an unknown ID is reported with EX_NOINPUT.
    @Test func badSelections() throws {
        let none = try postern(["kick"])
        #expect(none.status == 64)
        let unknown = try postern(["kick", QueueIDGenerator().next().rawValue])
        #expect(unknown.status == 66)
        #expect(unknown.stderr.contains("no such message"))
    }

    /// With no daemon, a control command accepts the drops it selects, as the daemon would, then acts
    /// (issue #15): what `postern list` shows in drop/ can be held before any daemon starts. A damaged
    /// drop is quarantined with its reason, not left behind or deleted; --dry-run changes nothing.
    @Test func offlineControlReachesDrops() throws {
        let dropped = try spool.plant(.drop)
        let preview = try postern(["hold", "--dry-run", dropped.id.rawValue])
        #expect(preview.status == 0 && preview.stdout.contains("would change"))
        #expect(try spool.names(.drop) == [dropped.id.rawValue])
        let held = try postern(["hold", "--reason", "after the incident", dropped.id.rawValue])
        #expect(held.status == 0 && held.stdout.contains("changed"), "\(held.stderr)")
        #expect(try spool.names(.drop).isEmpty && spool.names(.hold) == [dropped.id.rawValue])
        #expect(try envelope(dropped.id, .hold).holdReason == "after the incident")

        let damaged = try spool.plant(.drop)
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.drop, damaged.id) + "/envelope.json"))
        let other = try spool.plant(.drop)
        let all = try postern(["hold", "--all"])
        #expect(all.stderr.contains("quarantined"), "\(all.stderr)")
        #expect(try spool.names(.drop).isEmpty)
        #expect(try Set(spool.names(.hold)) == [dropped.id.rawValue, other.id.rawValue])
        #expect(try spool.corruptNames().count == 1)
    }

    /// Issue #19: a drop an offline command accepts has its local recipients rewritten as the daemon
    /// would (the same `DropAcceptance`), with the original kept and the change reported.
    @Test func offlineAcceptanceRewritesLocalRecipients() throws {
        try Data("root: ops@example.net\n".utf8).write(to: URL(fileURLWithPath: spool.directory + "/aliases"))
        let config = spool.directory + "/postern.toml"
        try Data("hostname = \"vm\"\n[local]\naliases = \"\(spool.directory)/aliases\"\n".utf8).write(to: URL(fileURLWithPath: config))
        let dropped = try spool.plant(.drop, recipients: ["root@vm", "bob@example.net"])
        let held = try PosternProcess.run(["hold", "--spool", spool.layout.root, dropped.id.rawValue], environment: ["POSTERN_CONFIG": config])
        #expect(held.status == 0, "\(held.stderr)")
        #expect(held.stderr.contains("local recipient root@vm -> ops@example.net (alias)"), "\(held.stderr)")
        let envelope = try envelope(dropped.id, .hold)
        #expect(envelope.recipients.map(\.address) == ["ops@example.net", "bob@example.net"])
        #expect(envelope.recipients.map(\.original) == ["root@vm", nil])
    }

    /// hold records the reason and moves the message; release moves it back; kick then makes it due now.
    @Test func holdReleaseKick() throws {
        let message = try spool.plant(.queue) { $0.nextAttempt = Date(timeIntervalSinceNow: 3600) }
        #expect(try postern(["hold", "--reason", "spam check", message.id.rawValue]).stdout.contains("changed"))
        #expect(try envelope(message.id, .hold).holdReason == "spam check")
        #expect(try postern(["kick", message.id.rawValue]).stdout.contains("unchanged (held; release it first)"))
        #expect(try postern(["release", message.id.rawValue]).stdout.contains("changed"))
        // A release is one rename: the reason stays in the file, meaningless in queue/, until the next write.
        #expect(try spool.names(.queue) == [message.id.rawValue])
        #expect(try postern(["explain", "--json", message.id.rawValue]).stdout.contains("\"hold_reason\":null"))
        #expect(try postern(["kick", "--transport", "relay", message.id.rawValue]).stdout.contains("changed"))
        let kicked = try envelope(message.id)
        #expect(kicked.nextAttempt == nil && kicked.transport == "relay" && kicked.holdReason == nil)
    }

    /// fail marks every pending recipient failed with the operator's reason; delete removes the message.
    @Test func failAndDelete() throws {
        let message = try spool.plant(.queue, recipients: ["a@x.example", "b@x.example"]) { $0.recipients[0].state = .delivered }
        #expect(try postern(["fail", "--reason", "bad address list", "--all"]).stdout.contains("1 message affected by fail"))
        let failed = try envelope(message.id)
        #expect(failed.recipients.map(\.state) == [.delivered, .failed])
        #expect(failed.recipients[1].lastResult?.text == "failed by the operator: bad address list")
        #expect(failed.recipients[1].lastResult?.permanent == true)
        #expect(try postern(["delete", message.id.rawValue]).stdout.contains("changed"))
        #expect(try spool.names(.queue).isEmpty)
    }

    /// requiretls sets the tri-state: yes, no, and back to default.
    @Test func requireTLS() throws {
        let message = try spool.plant(.queue)
        _ = try postern(["requiretls", "yes", message.id.rawValue])
        #expect(try envelope(message.id).requireTLS == true)
        _ = try postern(["requiretls", "no", message.id.rawValue])
        #expect(try envelope(message.id).requireTLS == false)
        _ = try postern(["requiretls", "default", message.id.rawValue])
        #expect(try envelope(message.id).requireTLS == nil)
        #expect(try postern(["requiretls", "maybe", message.id.rawValue]).status == 64)
    }
}
