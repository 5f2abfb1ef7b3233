import Foundation
import Glibc
import PosternTesting
import Testing
@testable import Spool

/// Kills a real `postern drop` with SIGKILL after each step of the drop protocol
/// and checks that the spool then holds the complete message or nothing.
struct CrashSafetyTests {
    static let message = "Subject: crash test\n\n" + String(repeating: "line of the body\n", count: 5000)

    /// After a kill at any step, the scanner finds the whole message or none, and check leaves the spool clean.
    @Test(arguments: DropStep.allCases)
    func killedAfter(_ step: DropStep) throws {
        let spool = try TemporarySpool()
        let result = try PosternProcess.run(["drop", "--spool", spool.layout.root, "-v", "bob@example.net"],
                                            input: Data(Self.message.utf8),
                                            environment: ["POSTERN_TEST_CRASH_AFTER": step.rawValue])
        #expect(result.signal == SIGKILL, "the hook did not fire at \(step.rawValue)")

        var items: [ScanItem] = []
        let report = SpoolScanner(layout: spool.layout, mode: .readOnly).scan { items.append($0) }
        #expect(report.quarantined.isEmpty, "a partial drop was visible: \(report.quarantined)")
        let committed = DropStep.allCases.firstIndex(of: step)! >= DropStep.allCases.firstIndex(of: .renamed)!
        #expect(items.count == (committed ? 1 : 0))
        if let item = items.first {
            let stored = try spool.read("drop/\(item.id)/message")
            #expect(stored.count == item.envelope.size)
            #expect(String(decoding: stored, as: UTF8.self).hasSuffix(String(repeating: "line of the body\r\n", count: 3)))
        }

        // Offline repair removes the abandoned temporary entry and finds nothing to quarantine.
        let check = try PosternProcess.run(["check", "--spool", spool.layout.root, "--temporary-age", "0s"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(try spool.temporaryNames().isEmpty)
        #expect(try spool.corruptNames().isEmpty)
        #expect(try spool.names(.drop).count == (committed ? 1 : 0))
    }
}
