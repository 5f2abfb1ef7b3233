import Foundation
import Glibc
import PosternTesting
import Testing
@testable import Spool

/// The daemon killed with SIGKILL mid-delivery, again and again, loses nothing.
@Suite(.serialized)
struct CrashRecoveryTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// With 1,000 messages and a slow sink, three kills and restarts: every message arrives, no envelope is
    /// corrupt, and duplicates number at most the transactions that can have been in flight at the kills.
    @Test func killedMidDelivery() throws {
        let concurrency = 10
        let fixture = try DaemonFixture(sinkOptions: ["-w", "1"],
                                        overrides: ["queue.backoff_base=1s", "queue.max_concurrent=\(concurrency)"])
        let total = 1000
        for index in 0..<total { try fixture.drop(subject: "crash-\(index)", to: ["r\(index)@d\(index % 40).example"]) }
        let kills = 3
        for round in 1...kills {
            try fixture.start()
            #expect(fixture.waitForSink(round * 40, timeout: 120), "round \(round): \(fixture.sink.messages().count) arrived")
            // Kill while attempts are in flight: the sink holds each for a second.
            #expect(fixture.stop(SIGKILL) == 128 + SIGKILL)
        }
        try fixture.sink.start()   // now without the delay, to finish quickly
        try fixture.start()
        let emptied = fixture.waitForEmptyQueue(timeout: 300)
        #expect(emptied, "queue not empty: \((try? fixture.spool.names(.queue).count) ?? -1) left")
        #expect(fixture.stop() == 0)

        let subjects = fixture.sink.subjects()
        #expect(Set(subjects) == Set((0..<total).map { "crash-\($0)" }), "lost: \(total - Set(subjects).count)")
        let duplicates = subjects.count - Set(subjects).count
        #expect(duplicates <= kills * concurrency, "\(duplicates) duplicates")
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(try fixture.spool.names(.hold).isEmpty && fixture.spool.names(.drop).isEmpty)
        let check = try fixture.postern(["check"])
        #expect(check.status == 0, "\(check.stdout)")
    }
}
