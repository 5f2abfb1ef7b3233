import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// list, show, cat, count and check, run as the real binary.
struct InspectionCommandTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func postern(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(arguments + ["--spool", spool.layout.root])
    }

    /// Every file and directory under the spool with its size and mtime, to prove nothing changed.
    func snapshot() throws -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: spool.layout.root)!
        return try enumerator.compactMap { $0 as? String }.sorted().map { path in
            let attributes = try FileManager.default.attributesOfItem(atPath: spool.layout.root + "/" + path)
            return "\(path) \(attributes[.size] ?? 0) \(attributes[.modificationDate] ?? 0)"
        }
    }

    /// list shows dropped, queued and held messages with their recipients; --json gives one object per line.
    @Test func list() throws {
        let queued = try spool.plant(.queue, recipients: ["a@x.example", "b@y.example"]) {
            $0.recipients[0].state = .delivered
            $0.recipients[1].attempts = 2
            $0.recipients[1].lastResult = DeliveryResult(time: Date(), code: 451, enhanced: "4.7.1", text: "greylisted", host: "mx.y.example", permanent: false)
            $0.nextAttempt = Date(timeIntervalSince1970: 2_000_000_000)
        }
        let held = try spool.plant(.hold)
        let dropped = try spool.plant(.drop)

        let human = try postern(["list"])
        #expect(human.status == 0)
        #expect(human.stdout.contains("\(queued.id) queued "))
        #expect(human.stdout.contains("\(held.id) held "))
        #expect(human.stdout.contains("\(dropped.id) dropped "))
        #expect(human.stdout.contains("b@y.example (pending, 2 attempts)"))
        #expect(human.stdout.contains("last: 451 4.7.1 greylisted (mx.y.example)"))
        #expect(human.stdout.contains("next attempt: 2033-05-18T03:33:20Z"))
        #expect(human.stdout.hasSuffix("in 3 messages\n"))

        let json = try postern(["list", "--json"])
        let objects = try json.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(objects.map { $0["id"] as? String } == [queued.id.rawValue, held.id.rawValue, dropped.id.rawValue])
        #expect(objects.map { $0["state"] as? String } == ["queued", "held", "dropped"])
        #expect(objects[0]["sender"] as? String == "alice@example.org")
        let recipients = try #require(objects[0]["recipients"] as? [[String: Any]])
        #expect(recipients.map { $0["state"] as? String } == ["delivered", "pending"])

        let onlyHeld = try postern(["list", "--json", "--state", "held"])
        #expect(onlyHeld.stdout.split(separator: "\n").count == 1)
    }

    /// An empty queue says so, as mailq does; sendmail -bp is the same listing.
    @Test func emptyAndMailq() throws {
        #expect(try postern(["list"]).stdout == "Mail queue is empty\n")
        try spool.plant(.queue)
        let mailq = try PosternProcess.run(["-bp", "--spool", spool.layout.root], program: "sendmail")
        #expect(mailq.status == 0)
        #expect(mailq.stdout.hasSuffix("in 1 message\n"))
    }

    /// count prints the number alone on a line.
    @Test func count() throws {
        try spool.plant(.queue)
        try spool.plant(.drop)
        #expect(try postern(["count"]).stdout == "2\n")
        #expect(try postern(["count", "--state", "dropped"]).stdout == "1\n")
    }

    /// count reads names, not envelopes (issue #15: at once for a million): an entry named by a queue ID
    /// counts even when its envelope is unreadable; a name that is not an ID does not.
    @Test func countReadsNamesOnly() throws {
        let damaged = try spool.plant(.queue)
        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, damaged.id) + "/envelope.json"))
        try FileManager.default.createDirectory(atPath: spool.layout.directory(.queue) + "/not-an-id", withIntermediateDirectories: false)
        try spool.plant(.hold)
        #expect(try postern(["count"]).stdout == "2\n")
        #expect(try postern(["count", "--state", "queued"]).stdout == "1\n")
    }

    /// show prints the envelope in words, or exactly as stored with --json; cat prints the message bytes.
    @Test func showAndCat() throws {
        let message = "Subject: exact\r\n\r\nbytes \u{00e9}\r\n"
        let envelope = try spool.plant(.queue, message: message) {
            $0.dsnReturn = .hdrs
            $0.envelopeID = "QQ+2B1"
        }
        let shown = try postern(["show", envelope.id.rawValue])
        #expect(shown.status == 0)
        #expect(shown.stdout.contains("state:         queued"))
        #expect(shown.stdout.contains("dsn return:    hdrs\ndsn envid:     QQ+2B1\n"))
        #expect(try postern(["show", spool.plant(.queue).id.rawValue]).stdout.contains("dsn return:    default\ndsn envid:     -\n"))
        #expect(shown.stdout.contains("  bob@example.net  pending, 0 attempts"))
        let raw = try postern(["show", "--json", envelope.id.rawValue])
        #expect(Data(raw.stdout.utf8) == (try spool.read("queue/\(envelope.id)/envelope.json")))
        let cat = try postern(["cat", envelope.id.rawValue])
        #expect(cat.stdout == message)
    }

    /// Unknown and malformed IDs get clear errors and their exit statuses.
    @Test func badIDs() throws {
        let missing = try postern(["show", QueueIDGenerator().next().rawValue])
        #expect(missing.status == 66)
        #expect(missing.stderr.contains("no message"))
        let malformed = try postern(["cat", "../../etc/passwd"])
        #expect(malformed.status == 65)
        #expect(malformed.stderr.contains("is not a queue ID"))
    }

    /// Inspection never modifies the spool, even when it holds damage to report.
    @Test func readOnly() throws {
        try spool.plant(.queue)
        let bad = try spool.plant(.queue)
        try Data("{".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, bad.id) + "/envelope.json"))
        let before = try snapshot()
        let list = try postern(["list"])
        #expect(list.stderr.contains("queue/\(bad.id) cannot be trusted"))
        _ = try postern(["list", "--json"])
        _ = try postern(["count"])
        let dryRun = try postern(["check", "--dry-run"])
        #expect(dryRun.status == 65)
        #expect(try snapshot() == before)
    }

    /// check quarantines, reports, exits 65, and is clean (0) the second time.
    @Test func check() throws {
        let bad = try spool.plant(.queue)
        try FileManager.default.removeItem(atPath: spool.layout.path(.queue, bad.id) + "/message")
        let first = try postern(["check"])
        #expect(first.status == 65)
        #expect(first.stdout.contains("quarantined queue/\(bad.id) -> corrupt/\(bad.id): missing message"))
        let second = try postern(["check"])
        #expect(second.status == 0)
        #expect(second.stdout == "scanned 0 messages: 0 dropped, 0 queued, 0 held\n")
    }

    /// check says "removed" only of what it removed: a stale tmp/ entry it
    /// cannot remove (deeper than any drop) is an error, with exit 74.
    @Test func checkReportsOnlyWhatItRemoved() throws {
        var path = spool.layout.tmp + "/deep"
        for _ in 0...DirectoryHandle.maxRemovalDepth + 2 { path += "/d" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: spool.layout.tmp + "/stale"))
        var old = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        for entry in ["deep", "deep/d", "stale"] { #expect(utimensat(AT_FDCWD, spool.layout.tmp + "/" + entry, &old, AT_SYMLINK_NOFOLLOW) == 0) }
        let result = try postern(["check"])
        #expect(result.status == 74)
        #expect(result.stdout.contains("removed tmp/stale"))
        #expect(!result.stdout.contains("removed tmp/deep"))
        #expect(result.stderr.contains("cannot remove tmp/deep"))
    }

    /// check refuses to repair while another process (a daemon) holds the spool lock.
    @Test func checkRespectsLock() throws {
        let lock = try SpoolLock(layout: spool.layout)
        let result = try postern(["check"])
        #expect(result.status == 75)
        #expect(result.stderr.contains("locked"))
        withExtendedLifetime(lock) {}
    }
}

extension InspectionCommandTests {
    /// --error selects messages by how their recipients' last attempts failed.
    @Test func errorClassFilter() throws {
        let temporary = try spool.plant(.queue) {
            $0.recipients[0].lastResult = DeliveryResult(time: Date(), code: 451, text: "451 later", permanent: false)
        }
        let permanent = try spool.plant(.queue, recipients: ["a@x.example", "b@x.example"]) {
            $0.recipients[1].state = .failed
            $0.recipients[1].lastResult = DeliveryResult(time: Date(), code: 550, text: "550 no", permanent: true)
        }
        let clean = try spool.plant(.queue)
        let temp = try postern(["list", "--json", "--error", "temporary"]).stdout
        #expect(temp.contains(temporary.id.rawValue) && !temp.contains(permanent.id.rawValue) && !temp.contains(clean.id.rawValue))
        let perm = try postern(["list", "--json", "--error", "permanent"]).stdout
        #expect(perm.contains(permanent.id.rawValue) && !perm.contains(temporary.id.rawValue))
        #expect(try postern(["list", "--error", "sideways"]).status == 64)
    }
}
