import Foundation
import Glibc
import PosternCore
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

extension CrashRecoveryTests {
    /// Issue #14's scenario, with the default backoff: many messages due at once, few delivery threads, a
    /// slow server, and a SIGKILL. Only the attempts in flight at the kill were registered (the others
    /// were due but not started), so after the restart everything else is delivered at once, while the
    /// registered ones count their attempt and wait their backoff.
    @Test func killDelaysOnlyTheAttemptsInFlight() throws {
        let concurrency = 4
        let fixture = try DaemonFixture(sinkOptions: ["-w", "1"],
                                        overrides: ["queue.max_concurrent=\(concurrency)", "queue.per_domain=\(concurrency)"])
        let total = 60
        for index in 0..<total { try fixture.drop(subject: "due-\(index)", to: ["r\(index)@d\(index % 7).example"]) }
        try fixture.start()
        #expect(fixture.waitForSink(concurrency, timeout: 60))
        #expect(fixture.stop(SIGKILL) == 128 + SIGKILL)
        let killedAt = Date()

        var registered: [String] = []
        for name in try fixture.spool.names(.queue) {
            let id = try #require(QueueID(name))
            let envelope = try MessageDirectory(path: fixture.spool.layout.path(.queue, id)).load(id: id, trustedOwners: [0])
            guard envelope.attempts > 0 else { continue }
            registered.append(name)
            // The default backoff: the first retry is minutes away, not due at the restart.
            #expect(envelope.nextAttempt.map { $0 > killedAt.addingTimeInterval(60) } == true, "\(envelope)")
        }
        #expect(registered.count <= concurrency, "\(registered.count) attempts registered with \(concurrency) threads")

        try fixture.sink.start()   // without the delay
        try fixture.start()
        let settled = BackgroundProcess.waitUntil(timeout: 60) {
            Set((try? fixture.spool.names(.queue)) ?? []) == Set(registered)
        }
        #expect(settled, "left in the queue: \((try? fixture.spool.names(.queue).count) ?? -1), registered \(registered.count)")
        #expect(fixture.stop() == 0)
        let subjects = Set(fixture.sink.subjects())
        #expect(subjects.count + registered.count >= total, "\(subjects.count) arrived, \(registered.count) wait")
    }
}
