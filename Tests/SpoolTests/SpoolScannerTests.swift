import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

struct SpoolScannerTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func scan(_ mode: SpoolScanner.Mode = .repair, maxAge: TimeInterval = 3600) -> (ScanReport, [ScanItem]) {
        var items: [ScanItem] = []
        var scanner = SpoolScanner(layout: spool.layout, mode: mode)
        scanner.temporaryMaxAge = maxAge
        let report = scanner.scan { items.append($0) }
        return (report, items)
    }

    func reason(of name: String) throws -> String {
        String(decoding: try spool.read("corrupt/\(name)/reason"), as: UTF8.self)
    }

    /// Valid messages in every area are visited with what a scheduler needs.
    @Test func visitsValidMessages() throws {
        let queued = try spool.plant(.queue, recipients: ["a@x.example", "b@X.example", "c@y.example"]) {
            $0.nextAttempt = Date(timeIntervalSince1970: 2_000_000_000)
            $0.recipients[2].state = .delivered
        }
        let held = try spool.plant(.hold)
        let dropped = try spool.plant(.drop)
        let (report, items) = scan()
        #expect(report.quarantined.isEmpty && report.errors.isEmpty)
        #expect(report.messages == [.queue: 1, .hold: 1, .drop: 1])
        #expect(items.map(\.id) == [queued.id, held.id, dropped.id])
        #expect(items[0].domains == ["x.example"])
        #expect(items[0].nextAttempt == Date(timeIntervalSince1970: 2_000_000_000))
        #expect(!items[0].held && items[1].held)
    }

    /// Each kind of damage is quarantined with its reason, and nothing else is touched.
    @Test func quarantinesDamage() throws {
        let good = try spool.plant(.queue)
        let badJSON = try spool.plant(.queue)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, badJSON.id) + "/envelope.json"))
        let future = try spool.plant(.queue)
        try Data(#"{"version":"9.0"}"#.utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, future.id) + "/envelope.json"))
        let short = try spool.plant(.queue) { $0.size += 1 }
        let missing = try spool.plant(.hold)
        try FileManager.default.removeItem(atPath: spool.layout.path(.hold, missing.id) + "/message")
        let mismatched = try spool.plant(.drop)
        let other = QueueIDGenerator().next()
        try FileManager.default.moveItem(atPath: spool.layout.path(.drop, mismatched.id), toPath: spool.layout.path(.drop, other))
        try Data("junk".utf8).write(to: URL(fileURLWithPath: spool.layout.directory(.queue) + "/notes.txt"))
        #expect(mkfifo(spool.layout.directory(.drop) + "/" + QueueIDGenerator().next().rawValue, 0o600) == 0)

        let (report, items) = scan()
        #expect(items.map(\.id) == [good.id])
        let reasons = Dictionary(uniqueKeysWithValues: report.quarantined.map { ($0.origin, $0.reason) })
        #expect(reasons["queue/\(badJSON.id)"] == "envelope: not valid JSON")
        #expect(reasons["queue/\(future.id)"]?.contains("major version 9") == true)
        #expect(reasons["queue/\(short.id)"]?.contains("the envelope says") == true)
        #expect(reasons["hold/\(missing.id)"] == "missing message")
        #expect(reasons["drop/\(other)"]?.contains("does not match") == true)
        #expect(reasons["queue/notes.txt"]?.contains("not a queue ID") == true)
        #expect(report.quarantined.count == 7)
        #expect(try spool.corruptNames().count == 7)
        #expect(try reason(of: badJSON.id.rawValue).hasPrefix("reason: envelope: not valid JSON\nfrom: queue/\(badJSON.id)\n"))
        // The quarantined directory is kept whole: nothing is deleted.
        #expect(try spool.read("corrupt/\(badJSON.id)/entry/message").count > 0)
        #expect(try spool.names(.queue) == [good.id.rawValue])
    }

    /// Symbolic links, in a drop, in the queue or inside a message directory, are moved, never followed.
    @Test func neverFollowsSymlinks() throws {
        let outside = spool.directory + "/secret"
        try Data("do not touch".utf8).write(to: URL(fileURLWithPath: outside))
        let target = try spool.plant(.queue)
        let linkInDrop = QueueIDGenerator().next()
        try FileManager.default.createSymbolicLink(atPath: spool.layout.path(.drop, linkInDrop), withDestinationPath: spool.layout.path(.queue, target.id))
        let linkInQueue = QueueIDGenerator().next()
        try FileManager.default.createSymbolicLink(atPath: spool.layout.path(.queue, linkInQueue), withDestinationPath: spool.directory)
        let linkedFile = try spool.plant(.queue)
        let message = spool.layout.path(.queue, linkedFile.id) + "/message"
        try FileManager.default.removeItem(atPath: message)
        try FileManager.default.createSymbolicLink(atPath: message, withDestinationPath: outside)

        let (report, items) = scan()
        #expect(items.map(\.id) == [target.id])
        let reasons = Dictionary(uniqueKeysWithValues: report.quarantined.map { ($0.origin, $0.reason) })
        #expect(reasons["drop/\(linkInDrop)"] == "a symbolic link, not a message directory")
        #expect(reasons["queue/\(linkInQueue)"] == "a symbolic link, not a message directory")
        #expect(reasons["queue/\(linkedFile.id)"] == "message is a symbolic link")
        // The links themselves were moved; their targets are untouched.
        let moved = try FileManager.default.destinationOfSymbolicLink(atPath: spool.layout.corrupt + "/\(linkInDrop)/entry")
        #expect(moved == spool.layout.path(.queue, target.id))
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "do not touch")
        #expect(FileManager.default.fileExists(atPath: spool.layout.path(.queue, target.id) + "/message"))
    }

    /// A drop whose directory belongs to one user but claims another uid is quarantined.
    @Test func wrongOwner() throws {
        let claimed = try spool.plant(.drop) { $0.uid = 4242 }
        #expect(chown(spool.layout.path(.drop, claimed.id), 4343, 4343) == 0)
        let honest = try spool.plant(.drop) { $0.uid = 4343 }
        let directory = spool.layout.path(.drop, honest.id)
        for path in [directory, directory + "/message", directory + "/envelope.json"] { #expect(chown(path, 4343, 4343) == 0) }
        let planted = try spool.plant(.drop) { $0.uid = 4343 }
        #expect(chown(spool.layout.path(.drop, planted.id), 4343, 4343) == 0)
        #expect(chown(spool.layout.path(.drop, planted.id) + "/message", 4444, 4444) == 0)

        let (report, items) = scan()
        #expect(items.map(\.id) == [honest.id])
        let reasons = Dictionary(uniqueKeysWithValues: report.quarantined.map { ($0.origin, $0.reason) })
        #expect(reasons["drop/\(claimed.id)"]?.contains("claims uid 4242") == true)
        #expect(reasons["drop/\(planted.id)"]?.contains("message belongs to uid 4444") == true)
    }

    /// The same ID in queue/ and hold/: the queued copy wins, the other is quarantined.
    @Test func duplicateID() throws {
        let queued = try spool.plant(.queue)
        try spool.plant(.hold, id: queued.id)
        let (report, items) = scan()
        #expect(items.map(\.area) == [.queue])
        #expect(report.quarantined.map(\.origin) == ["hold/\(queued.id)"])
    }

    /// A drop whose ID is already queued is the writer's copy of an adoption a crash cut short
    /// (6.5 step 5), whole or half removed: removed (read-only: reported), never quarantined.
    @Test func leftoverDropOfAnAdoption() throws {
        let whole = try spool.plant(.queue)
        try spool.plant(.drop, id: whole.id)
        let half = try spool.plant(.queue)
        try spool.plant(.drop, id: half.id)
        #expect(unlink(spool.layout.path(.drop, half.id) + "/message") == 0)
        let (dry, _) = scan(.readOnly)
        #expect(dry.quarantined.isEmpty && Set(dry.removed) == ["drop/\(whole.id)", "drop/\(half.id)"])
        #expect(try spool.names(.drop).count == 2)
        let (report, items) = scan()
        #expect(report.quarantined.isEmpty && report.errors.isEmpty)
        #expect(Set(report.removed) == ["drop/\(whole.id)", "drop/\(half.id)"])
        #expect(Set(items.map(\.id)) == [whole.id, half.id] && items.allSatisfy { $0.area == .queue })
        #expect(try spool.names(.drop).isEmpty && spool.corruptNames().isEmpty)
    }

    /// Old temporary entries are removed, fresh ones (a writer at work) are kept.
    @Test func cleansTemporary() throws {
        let old = spool.layout.tmp + "/" + QueueIDGenerator().next().rawValue
        let fresh = spool.layout.tmp + "/" + QueueIDGenerator().next().rawValue
        for path in [old, fresh] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            try Data("partial".utf8).write(to: URL(fileURLWithPath: path + "/message"))
        }
        let past = Date(timeIntervalSinceNow: -7200)
        for path in [old + "/message", old] {
            try FileManager.default.setAttributes([.modificationDate: past], ofItemAtPath: path)
        }
        let (report, _) = scan(maxAge: 3600)
        #expect(report.removed == ["tmp/" + URL(fileURLWithPath: old).lastPathComponent])
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(FileManager.default.fileExists(atPath: fresh))
    }

    /// An `envelope.json.tmp` beside a valid envelope (an update's spare, or one
    /// that never committed) is left alone: the next update rewrites it.
    @Test func staleEnvelopeUpdate() throws {
        let envelope = try spool.plant(.queue)
        let leftover = spool.layout.path(.queue, envelope.id) + "/envelope.json.tmp"
        try Data("{\"half".utf8).write(to: URL(fileURLWithPath: leftover))
        let (report, items) = scan()
        #expect(items.map(\.id) == [envelope.id])
        #expect(report.removed.isEmpty)
        #expect(FileManager.default.fileExists(atPath: leftover))
    }

    /// An update keeps the envelope it replaced as the spare; should a power loss
    /// leave the new one torn (an update without fsync), the spare is read
    /// instead and nothing is quarantined (spool-layout.md 6.2). Both torn: quarantined.
    @Test func tornEnvelopeFallsBackToTheSpare() throws {
        var envelope = try spool.plant(.queue)
        envelope.attempts = 1
        try MessageStore(layout: spool.layout).update(envelope, in: .queue, durability: .processCrash)
        let directory = spool.layout.path(.queue, envelope.id)
        #expect(try Envelope.decode(spool.read("queue/\(envelope.id)/envelope.json.tmp")).attempts == 0)
        try Data("{\"id\":\"01".utf8).write(to: URL(fileURLWithPath: directory + "/envelope.json"))
        let loaded = try MessageDirectory(path: directory).load(id: envelope.id, trustedOwners: [0, getuid()])
        #expect(loaded.attempts == 0)
        let (report, items) = scan()
        #expect(items.map(\.id) == [envelope.id])
        #expect(report.quarantined.isEmpty)
        try Data().write(to: URL(fileURLWithPath: directory + "/envelope.json.tmp"))
        let (after, _) = scan()
        #expect(after.quarantined.map(\.origin) == ["queue/\(envelope.id)"])
    }

    /// Read-only mode reports the same findings and changes nothing.
    @Test func readOnly() throws {
        let bad = try spool.plant(.queue)
        try Data("{".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, bad.id) + "/envelope.json"))
        let (report, _) = scan(.readOnly)
        #expect(report.quarantined.map(\.origin) == ["queue/\(bad.id)"])
        #expect(report.quarantined[0].destination == nil)
        #expect(try spool.names(.queue) == [bad.id.rawValue])
        #expect(try spool.corruptNames().isEmpty)
    }
}
