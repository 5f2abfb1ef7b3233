import PosternCore
import SpoolDrop

/// How the listener of `postern run` hands its messages to the daemon beside
/// it when it queues them itself (spool-layout.md 6.1, "Straight into the
/// queue").
///
/// Why: the listener runs as the spool's owner inside the process that holds
/// the spool's lock, so its drops are trusted and would only be renamed from
/// `drop/` into `queue/` by the daemon, after an inotify event, a second
/// validation of what it wrote itself and two more `fsync`s. Renaming the
/// finished message directory straight into `queue/` does the same in one
/// step, and this tells the daemon without any read of the spool.
///
/// The daemon says, message by message, whether it takes them so: not a
/// message with a recipient in one of its local domains, which is rewritten
/// through the aliases when a drop is accepted; the listener drops such a
/// message into `drop/`, as any writer does.
public struct QueueHandoff: Sendable {
    /// Whether a message to recipients in these domains (routing domains,
    /// lower-case A-labels) may go straight into `queue/`.
    public var takes: @Sendable (_ domains: [String]) -> Bool
    /// Before the rename into `queue/`: the daemon leaves that entry's
    /// inotify event to `queued`, so it does not read what it is told.
    public var expect: @Sendable (QueueID) -> Void
    /// After the rename and its `fsync`: the message is due at once. With
    /// the envelope as written, so that its first attempt need not read it
    /// back.
    public var queued: @Sendable (QueueID, _ envelope: DropEnvelope?) -> Void
    /// The commit failed after `expect`: the message may or may not be in
    /// `queue/`, and the daemon looks.
    public var unsure: @Sendable (QueueID) -> Void
    /// The daemon's finished message directories, for the listener's next
    /// messages to be built in instead of new ones (`BlankPool`).
    public var blanks: BlankPool?

    public init(takes: @escaping @Sendable ([String]) -> Bool, expect: @escaping @Sendable (QueueID) -> Void,
                queued: @escaping @Sendable (QueueID, DropEnvelope?) -> Void, unsure: @escaping @Sendable (QueueID) -> Void) {
        self.takes = takes
        self.expect = expect
        self.queued = queued
        self.unsure = unsure
    }
}
