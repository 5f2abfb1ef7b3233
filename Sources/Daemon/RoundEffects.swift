import Delivery
import Foundation
import PosternCore
import Scheduler
import Spool

/// Everything the round logic (`RoundMachine`) does to the world: the spool,
/// DSNs, delivery threads, control responses. The daemon carries these out
/// on the real spool; tests carry them out in memory, so that the decisions
/// (what is due, what a report means, what is written with which durability,
/// when a DSN goes, when a control request is answered) are tested without
/// threads, sockets or waiting.
protocol RoundEffects: AnyObject {
    /// Where a message is now; nil when it is in neither `queue/` nor `hold/`.
    func area(of id: QueueID) -> SpoolLayout.Area?
    /// Where a message is and its envelope, read without adopting (control).
    func locate(_ id: QueueID) -> (SpoolLayout.Area, Envelope)?
    /// Reads a message's envelope (adopting it if its writer still owns it).
    func open(_ id: QueueID, in area: SpoolLayout.Area) -> LoadedEnvelope
    /// Reads a message's envelope on a delivery thread, without writing
    /// anything, and hands it to `RoundMachine.loaded` on the event loop.
    func load(_ id: QueueID)
    /// Registers an attempt of the message whose envelope on disk is `found`
    /// (spool-layout.md 6.2); with `recovered`, `found` counts an attempt its
    /// file does not record, which is written first.
    func register(_ found: Envelope, recovered: Bool, nextAttempt: Date) throws
    /// Replaces the envelope (6.2) with the durability the budget asks.
    func persist(_ envelope: Envelope, in area: SpoolLayout.Area, durability: MessageStore.Durability) throws
    /// Removes a finished message, or keeps its envelope in `retired/`.
    func remove(_ id: QueueID, from area: SpoolLayout.Area, retire: Bool) throws
    /// Moves a message to `hold/` (when in `queue/`) and writes its envelope, fsynced.
    func keepHeld(_ envelope: Envelope, from area: SpoolLayout.Area) throws
    func quarantine(_ id: QueueID, in area: SpoolLayout.Area, reason: String)
    /// Brings the index in line with where a message is on disk.
    func reconcile(_ id: QueueID)

    /// Drops the failure DSN `envelope.dsnPending` names and clears the mark;
    /// false, with the mark kept, when it could not be dropped.
    func sendPending(_ envelope: inout Envelope) -> Bool
    func delayed(_ envelope: Envelope, recipients: [Recipient], schedule: [Date])
    /// Whether a failed bounce is reported to someone (`dsn.postmaster`).
    var reportsDoubleBounces: Bool { get }

    /// Starts a job on a delivery thread; its report comes back to `RoundMachine.finish`.
    func launch(_ job: Job, envelope: Envelope)
    /// Aborts a job in flight (its deadline passed); it still reports.
    func cancel(_ job: Job)

    /// Applies a control action to messages not in a round.
    func apply(_ action: ControlAction, to ids: [QueueID]) -> [QueueID: ControlOutcome]
    func respond(to request: ControlRequest, with outcomes: [QueueID: ControlOutcome])
}

/// A message's envelope as read for scheduling.
enum LoadedEnvelope: Sendable {
    case envelope(Envelope, recovered: Bool)
    /// The spool failed (logged); try again later.
    case unavailable
    /// Damage: quarantine it.
    case damaged(String)
    /// A check that could not be made now (no descriptor left), with the errno.
    case transient(String, code: Int32?)
    /// Its writer still owns it: read again on the event loop, which adopts it.
    case adoptionNeeded
}
