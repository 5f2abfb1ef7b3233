import PosternCore
import Spool
import Synchronization
import Testing
@testable import Daemon

/// The hand-over between the SMTP listener and the event loop
/// (spool-layout.md 6.1, "Straight into the queue").
struct QueueInboxTests {
    static let first = QueueID("01M91SZJBJDSJACEX2G9D9PEQQ")!
    static let second = QueueID("01M91SZJBK3JC9CJRW9J6RFD8B")!

    /// An expected entry stays expected until its message is posted and taken;
    /// the loop is woken once per batch, not once per message.
    @Test func expectPostTake() {
        let inbox = QueueInbox()
        let wakes = Mutex(0)
        inbox.attach(wake: { wakes.withLock { $0 += 1 } })
        inbox.expect(Self.first)
        inbox.expect(Self.second)
        #expect(inbox.isExpected(Self.first) && inbox.isExpected(Self.second))
        inbox.queued(Self.first)
        inbox.unsure(Self.second)
        #expect(wakes.withLock { $0 } == 1)
        #expect(inbox.isExpected(Self.first), "expected until the loop has taken it")
        #expect(inbox.take() == [.queued(Self.first), .unsure(Self.second)])
        #expect(!inbox.isExpected(Self.first) && !inbox.isExpected(Self.second))
        #expect(inbox.take().isEmpty)
        inbox.queued(Self.second)
        #expect(wakes.withLock { $0 } == 2, "a post to an empty inbox wakes the loop again")
    }

    /// The envelope posted with a message is given to its first load, once;
    /// a control action forgets it; one that names another message, or none,
    /// is not kept (the load reads the spool).
    @Test func postedEnvelopeServesTheFirstLoad() throws {
        let inbox = QueueInbox()
        func drop(_ id: QueueID) -> DropEnvelope {
            DropEnvelope(id: id, sender: "a@example.org", recipients: ["b@example.net"], arrival: 1_796_000_000,
                         size: 42, uid: 0)
        }
        inbox.queued(Self.first, envelope: drop(Self.first))
        let envelope = try #require(inbox.envelope(for: Self.first))
        #expect(envelope.id == Self.first)
        #expect(envelope.recipients.map(\.address) == ["b@example.net"])
        #expect(envelope.size == 42)
        #expect(inbox.envelope(for: Self.first) == nil, "given once")
        inbox.queued(Self.second, envelope: drop(Self.second))
        inbox.forget([Self.second])
        #expect(inbox.envelope(for: Self.second) == nil)
        inbox.queued(Self.second, envelope: drop(Self.first))
        inbox.queued(Self.first)
        #expect(inbox.envelope(for: Self.second) == nil && inbox.envelope(for: Self.first) == nil)
        #expect(inbox.take().count == 4, "every message is posted all the same")
    }

    /// Posts made before the loop runs wait for it; nothing is woken.
    @Test func postsBeforeTheLoopWait() {
        let inbox = QueueInbox()
        inbox.queued(Self.first)
        #expect(inbox.take() == [.queued(Self.first)])
    }

    /// A message with a recipient in a local domain goes through drop/, where
    /// acceptance rewrites it through the aliases; other messages go straight in.
    @Test func localDomainsGoThroughDrop() {
        let inbox = QueueInbox()
        #expect(inbox.takes(["example.net"]))
        inbox.setLocalDomains(["mail.example.org", "localhost"])
        #expect(inbox.takes(["example.net", "example.com"]))
        #expect(!inbox.takes(["example.net", "localhost"]))
        #expect(!inbox.takes(["mail.example.org"]))
        inbox.setLocalDomains([])
        #expect(inbox.takes(["localhost"]))
    }
}
