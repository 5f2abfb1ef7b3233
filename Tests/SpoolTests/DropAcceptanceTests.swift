import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Accepting drops (spool-layout.md 6.5) where a crash left its traces.
struct DropAcceptanceTests {
    /// A crash during an adoption's last step (removing the writer's copy) left `drop/ID`
    /// half removed beside the accepted `queue/ID`: the copy is finished off, not quarantined,
    /// and the queued message is untouched. Found by tools/crash-harness.py (a SIGKILL there
    /// put "missing message" drops into corrupt/).
    @Test(arguments: ["message", "envelope.json", nil])
    func leftoverOfAnAdoptionIsRemoved(removed file: String?) throws {
        let spool = try TemporarySpool()
        let queued = try spool.plant(.queue)
        try spool.plant(.drop, id: queued.id)
        if let file { #expect(unlink(spool.layout.path(.drop, queued.id) + "/" + file) == 0) }
        let acceptance = DropAcceptance(layout: spool.layout, trustedOwners: [], maxMessageSize: 1 << 20, maxRecipients: 10)
        guard case .leftover = acceptance.accept(queued.id.rawValue) else {
            Issue.record("not taken for a leftover")
            return
        }
        #expect(try spool.names(.drop).isEmpty && spool.corruptNames().isEmpty)
        #expect(try Envelope.decode(spool.read("queue/\(queued.id)/envelope.json")) == queued)
    }
}
