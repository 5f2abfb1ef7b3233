import Foundation
import PosternCore
import Spool
import Testing
@testable import Daemon

/// Issue #15: the index knows a due time only (from the start-up scan's `stat`); the envelope, read
/// when the message comes due, decides.
extension RoundMachineTests {
    /// The index says due (a `touch`, a `cp -r`), the envelope says in an hour: nothing is started or
    /// registered, and the message is due when the envelope says.
    @Test func envelopeWinsOverTheIndex() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        spool.envelopes[id]!.nextAttempt = clock.now.addingTimeInterval(3600)
        machine.schedule()
        #expect(spool.launched.isEmpty && spool.registrations.isEmpty)
        #expect(machine.nextWake == clock.now.addingTimeInterval(3600))
        clock.advance(by: 3600)
        machine.schedule()
        #expect(spool.launched.map(\.id) == [id])
        #expect(spool.registrations.map(\.id) == [id])
    }

    /// A message whose envelope is found damaged when it comes due is quarantined and forgotten; the
    /// others are delivered.
    @Test func damageFoundWhenDue() throws {
        let damaged = spool.add(["a@one.example"], at: clock.now)
        let good = spool.add(["b@two.example"], at: clock.now)
        spool.envelopes[damaged] = nil
        machine.schedule()
        #expect(spool.launched.map(\.id) == [good])
        #expect(spool.areas[damaged] == nil && !machine.core.contains(damaged))
    }

    /// A message with nothing left to attempt and a failure DSN owed (a crash between the mark and the
    /// DSN) gets its DSN and leaves when it comes due, without an attempt.
    @Test func settledMessageFinishesWhenDue() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        spool.envelopes[id]!.recipients[0].state = .failed
        spool.envelopes[id]!.dsnPending = ["bob@example.net"]
        machine.schedule()
        #expect(spool.launched.isEmpty && spool.registrations.isEmpty)
        #expect(spool.failureDSNs == [["bob@example.net"]])
        #expect(spool.removed == [id] && !machine.core.contains(id))
    }

    /// The destinations are read from the envelope: a message with recipients at two domains gets a
    /// job for each, registered once.
    @Test func domainsComeFromTheEnvelope() throws {
        let id = spool.add(["a@one.example", "b@two.example", "c@ONE.example"], at: clock.now)
        #expect(machine.core.domains(of: id).isEmpty, "the index holds no domains before a round")
        machine.schedule()
        #expect(Set(spool.launched.map(\.domain)) == ["one.example", "two.example"])
        #expect(spool.registrations.map(\.id) == [id])
    }
}
