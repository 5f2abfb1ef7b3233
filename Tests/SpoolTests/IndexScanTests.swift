import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// The daemon's start-up index (`SpoolScanner.index`): names and one `stat` per message, the envelope's
/// modification time as the due time, no envelope read (issue #15).
struct IndexScanTests {
    let spool: TemporarySpool
    let horizon = 3_000_000_000.0

    init() throws {
        spool = try TemporarySpool()
    }

    func index(horizon: Double? = nil) -> (SpoolScanner.IndexScan, [IndexedMessage]) {
        var items: [IndexedMessage] = []
        let scan = SpoolScanner(layout: spool.layout, mode: .repair).index(horizon: horizon ?? self.horizon) { items.append($0) }
        return (scan, items)
    }

    /// Sets the modification time of a message's envelope, as a writer of 6.2 does.
    func setTime(_ area: SpoolLayout.Area, _ id: QueueID, _ seconds: Double) {
        let path = spool.layout.path(area, id) + "/envelope.json"
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9)),
                     timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))]
        #expect(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0)
    }

    /// Each message's due time is its envelope's modification time, queue/ first newest first, then
    /// hold/; drops are listed for acceptance; nothing is read from inside (a corrupt envelope is
    /// indexed all the same and found when due).
    @Test func dueTimesFromModificationTimes() throws {
        let later = try spool.plant(.queue)
        let sooner = try spool.plant(.queue)
        let held = try spool.plant(.hold)
        let dropped = try spool.plant(.drop)
        setTime(.queue, later.id, 2_000_000_000.25)
        setTime(.queue, sooner.id, 1_900_000_000.5)
        setTime(.hold, held.id, 1_800_000_000)
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, later.id) + "/envelope.json"))
        setTime(.queue, later.id, 2_000_000_000.25)

        let (scan, items) = index()
        #expect(scan.report.quarantined.isEmpty && scan.report.errors.isEmpty)
        #expect(items.map(\.id) == [later.id, sooner.id].sorted(by: >) + [held.id])
        #expect(items.map(\.held) == [false, false, true])
        let due = Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0.due) })
        #expect(due[later.id] == 2_000_000_000.25)
        #expect(due[sooner.id] == 1_900_000_000.5)
        #expect(due[held.id] == 1_800_000_000)
        #expect(scan.drops == [dropped.id.rawValue])
        #expect(scan.report.messages == [.queue: 2, .hold: 1, .drop: 1])
    }

    /// A message without an envelope (or with something else in its place, or a file where its
    /// directory should be) is due at once: reading it when due says what is wrong.
    @Test func missingEnvelopeIsDueNow() throws {
        let missing = try spool.plant(.queue)
        try FileManager.default.removeItem(atPath: spool.layout.path(.queue, missing.id) + "/envelope.json")
        let linked = try spool.plant(.queue)
        try FileManager.default.removeItem(atPath: spool.layout.path(.queue, linked.id) + "/envelope.json")
        try FileManager.default.createSymbolicLink(atPath: spool.layout.path(.queue, linked.id) + "/envelope.json",
                                                   withDestinationPath: "/etc/passwd")
        let file = QueueIDGenerator().next()
        try Data("x".utf8).write(to: URL(fileURLWithPath: spool.layout.path(.queue, file)))
        let (scan, items) = index()
        #expect(scan.report.quarantined.isEmpty)
        #expect(Set(items.map(\.id)) == [missing.id, linked.id, file])
        #expect(items.allSatisfy { $0.due == 0 })
    }

    /// Names that are not queue IDs are quarantined; an ID in both queue/ and hold/ keeps its
    /// queue/ copy and the held one goes to quarantine.
    @Test func strangersAndDuplicates() throws {
        let queued = try spool.plant(.queue)
        _ = try spool.plant(.hold, id: queued.id)
        try Data("junk".utf8).write(to: URL(fileURLWithPath: spool.layout.directory(.queue) + "/notes.txt"))
        let (scan, items) = index()
        #expect(items.map(\.id) == [queued.id] && items[0].held == false)
        #expect(Set(scan.report.quarantined.map(\.origin)) == ["queue/notes.txt", "hold/\(queued.id)"])
        #expect(try spool.names(.queue) == [queued.id.rawValue])
        #expect(try spool.names(.hold).isEmpty)
    }

    /// A time set far ahead by hand (`touch -d 2100-01-01`) is believed only up to the horizon.
    @Test func timesBeyondTheHorizon() throws {
        let message = try spool.plant(.queue)
        setTime(.queue, message.id, 4_102_444_800)
        let (_, items) = index(horizon: 2_000_000_000)
        #expect(items.map(\.due) == [2_000_000_000])
    }

    /// A copy of the spool keeps the due times with `cp -a` and loses them with `cp -r` (every
    /// message due at the time of the copy; each envelope, read then, says when it really is).
    @Test func copiesOfTheSpool() throws {
        let message = try spool.plant(.queue) { $0.nextAttempt = Date(timeIntervalSince1970: 2_000_000_000) }
        setTime(.queue, message.id, 2_000_000_000)
        for (flags, kept) in [("-a", true), ("-r", false)] {
            let copy = try TemporarySpool()
            try FileManager.default.removeItem(atPath: copy.layout.root)
            let before = Date().timeIntervalSince1970.rounded(.down)
            let process = try Process.run(URL(fileURLWithPath: "/bin/cp"), arguments: [flags, spool.layout.root, copy.layout.root])
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            var items: [IndexedMessage] = []
            _ = SpoolScanner(layout: copy.layout, mode: .readOnly).index(horizon: horizon) { items.append($0) }
            #expect(items.map(\.id) == [message.id])
            if kept {
                #expect(items.first?.due == 2_000_000_000)
            } else {
                #expect(items.first.map { $0.due >= before && $0.due < 2_000_000_000 } == true)
            }
        }
    }

    /// IDs parse from the bytes of a name as from a string, and order as their text does.
    @Test func packedIDs() throws {
        let ids = (0..<200).map { _ in QueueIDGenerator().next() }
        for id in ids {
            var text = id.rawValue
            #expect(text.withUTF8 { QueueID(utf8: $0) } == id)
            #expect(QueueID(text) == id && id.rawValue.count == 26)
        }
        #expect(ids.sorted().map(\.rawValue) == ids.map(\.rawValue).sorted())
        #expect(QueueID("8ZZZZZZZZZZZZZZZZZZZZZZZZZ") == nil)
        #expect(QueueID("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")?.rawValue == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
        #expect(QueueID("01J0000000000000000000000I") == nil)
        #expect(QueueID("01j0000000000000000000000A") == nil)
    }
}
