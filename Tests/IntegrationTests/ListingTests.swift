import Foundation
import PosternCore
import PosternTesting
import Spool
import Testing

/// Issue #15: `postern list --json` and `postern count` agree with the spool, also while a daemon
/// accepts drops and delivers them (entries that go away while listed are skipped, never reported
/// as damage), and the listing keeps ID order across the reading threads.
@Suite(.serialized)
struct ListingTests {
    /// Lines of a `list --json` output, each parsed; the IDs in output order.
    static func listed(_ output: String) throws -> [(id: String, state: String)] {
        try output.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            return (try #require(object["id"] as? String), try #require(object["state"] as? String))
        }
    }

    /// A spool of 700 messages in three areas (more than the reading threads' chunks): every one is
    /// listed once, queue/ then hold/ then drop/, each in ID order, and count says the same.
    @Test func listsEveryMessageInOrder() throws {
        let spool = try TemporarySpool()
        var expected: [(String, String)] = []
        for (area, state, count) in [(SpoolLayout.Area.queue, "queued", 400), (.hold, "held", 200), (.drop, "dropped", 100)] {
            var ids: [String] = []
            for _ in 0..<count { ids.append(try spool.plant(area).id.rawValue) }
            expected += ids.sorted().map { ($0, state) }
        }
        let list = try PosternProcess.run(["list", "--json", "--spool", spool.layout.root])
        #expect(list.status == 0 && list.stderr.isEmpty, "\(list.stderr)")
        let lines = try Self.listed(list.stdout)
        #expect(lines.map(\.id) == expected.map(\.0))
        #expect(lines.map(\.state) == expected.map(\.1))
        let count = try PosternProcess.run(["count", "--spool", spool.layout.root])
        #expect(count.stdout == "700\n")
        let held = try PosternProcess.run(["count", "--state", "held", "--spool", spool.layout.root])
        #expect(held.stdout == "200\n")
    }

    /// While 150 messages are dropped and delivered, each listing shows only whole messages (no
    /// warnings, no duplicates, valid JSON) and count stays within what was dropped; once the daemon
    /// has delivered everything both say the queue is empty.
    @Test func agreeUnderDropsAndDeliveries() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        let total = 150
        let dropper = Thread {
            for index in 0..<total { _ = try? fixture.drop(subject: "listed-\(index)") }
        }
        dropper.start()
        var listings = 0
        while listings < 20 || fixture.sink.messages().count < total {
            let list = try fixture.postern(["list", "--json"])
            #expect(list.status == 0)
            #expect(list.stderr.isEmpty, "\(list.stderr)")
            let ids = try Self.listed(list.stdout).map(\.id)
            #expect(Set(ids).count == ids.count, "an ID listed twice")
            let count = try fixture.postern(["count"])
            #expect(count.status == 0)
            #expect((Int(count.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1) <= total)
            listings += 1
            if listings > 2000 { break }
        }
        #expect(fixture.waitForSink(total))
        #expect(fixture.waitForEmptyQueue())
        #expect(try fixture.postern(["list", "--json"]).stdout.isEmpty)
        #expect(try fixture.postern(["count"]).stdout == "0\n")
        #expect(fixture.stop() == 0)
    }
}
