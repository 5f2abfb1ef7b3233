import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Attempt registration through the envelope's modification time (spool-layout.md 6.2).
struct RegistrationTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func open(_ id: QueueID) throws -> MessageDirectory.Opened {
        try MessageDirectory(path: spool.layout.path(.queue, id)).open(id: id, trustedOwners: [0, getuid()])
    }

    /// Registering costs one utimensat: no fsync, no new file, no rename.
    @Test func registrationIsOneTimestamp() throws {
        let envelope = try spool.plant(.queue)
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.register(envelope, nextAttempt: Date().addingTimeInterval(450), in: .queue)
        #expect(recorder.calls == ["utimensat queue/\(envelope.id)/envelope.json"])
    }

    /// A registered attempt that never reported counts when the envelope is read, and the message is
    /// due at the mark; a result written afterwards puts the file back at rest.
    @Test func readerCountsARegisteredAttempt() throws {
        let envelope = try spool.plant(.queue) { $0.attempts = 2; $0.recipients[0].attempts = 2 }
        let store = MessageStore(layout: spool.layout)
        try store.update(envelope, in: .queue, durability: .processCrash)
        #expect(try open(envelope.id).recovered == false)

        let next = Date().addingTimeInterval(450.25)
        try store.register(envelope, nextAttempt: next, in: .queue)
        let opened = try open(envelope.id)
        #expect(opened.recovered)
        #expect(opened.envelope.attempts == 3)
        #expect(opened.envelope.recipients[0].attempts == 3)
        #expect(opened.envelope.nextAttempt == Date(timeIntervalSince1970: next.timeIntervalSince1970.rounded(.up)))

        var result = opened.envelope
        result.nextAttempt = next
        try store.update(result, in: .queue, durability: .processCrash)
        let settled = try open(envelope.id)
        #expect(!settled.recovered && settled.envelope.attempts == 3)
    }

    /// A mark is never within the slack of the resting time, even for a tiny backoff.
    @Test func markIsPastTheSlack() {
        let envelope = Envelope(id: QueueIDGenerator().next(), sender: nil, recipients: [Recipient(address: "bob@example.net")],
                                arrival: Date(timeIntervalSince1970: 1_764_386_254.5), size: 1, uid: 0)
        let mark = envelope.registrationMark(next: envelope.arrival.addingTimeInterval(0.1))
        #expect(mark.timeIntervalSince(envelope.arrival) > Envelope.registrationSlack)
        #expect(mark.timeIntervalSince1970 == mark.timeIntervalSince1970.rounded())
        let seconds = Int(mark.timeIntervalSince1970)
        #expect(envelope.recoveringAttempt(modifiedSeconds: seconds, nanoseconds: 0)?.attempts == 1)
    }

    /// Times that are not marks: a write by other means (a fraction of a second), or a whole second
    /// within the slack of the resting time. The envelope is taken as it says.
    @Test func otherTimesAreNotMarks() {
        let envelope = Envelope(id: QueueIDGenerator().next(), sender: nil, recipients: [Recipient(address: "bob@example.net")],
                                arrival: Date(timeIntervalSince1970: 1_764_386_254), size: 1, uid: 0)
        #expect(envelope.recoveringAttempt(modifiedSeconds: 1_764_399_000, nanoseconds: 123_456_789) == nil)
        #expect(envelope.recoveringAttempt(modifiedSeconds: 1_764_386_255, nanoseconds: 0) == nil)
        #expect(envelope.recoveringAttempt(modifiedSeconds: 1_764_386_100, nanoseconds: 0) == nil)
    }
}
