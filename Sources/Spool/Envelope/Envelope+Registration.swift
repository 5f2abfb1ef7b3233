import Foundation

/// Attempt registration through the modification time of `envelope.json`
/// (spool-layout.md 6.2).
///
/// Whoever writes an envelope sets its modification time to the envelope's
/// resting time: `next_attempt`, or `arrival` when there is none. Registering
/// an attempt, right before its delivery starts, moves the modification time
/// on to when the message is due again should the attempt never report, in
/// whole seconds: one `utimensat(2)`, no `fsync`, no new inode. A reader that
/// finds a whole-second modification time more than `registrationSlack` after
/// the resting time knows an attempt was registered and its result never
/// written (the daemon died): that attempt counts, and the message is not due
/// before the mark. So a crash mid-delivery costs one backoff for the messages
/// in flight, as mox's rule asks, and a message that crashes the daemon still
/// runs out of attempts.
///
/// The whole second tells a mark from the time of a write by any other means
/// (a script's, `cp -r`), which has a fraction on every file system with
/// sub-second times: such an envelope is taken as it says.
extension Envelope {
    /// How far past the resting time a mark must be.
    public static let registrationSlack: TimeInterval = 1

    /// The modification time an envelope carries when no attempt is
    /// registered: when the message is next due. One with nothing left to
    /// attempt (every recipient final, its DSN or its removal still to do, or
    /// a DSN owed) is due at once: its arrival.
    public var restingTime: Date {
        guard dsnPending.isEmpty, recipients.contains(where: { $0.state == .pending }) else { return arrival }
        return nextAttempt ?? arrival
    }

    /// The modification time that registers an attempt due again at `next`:
    /// a whole second, never so close to the resting time that a reader
    /// would miss it.
    public func registrationMark(next: Date) -> Date {
        let mark = max(next, restingTime.addingTimeInterval(2 * Self.registrationSlack))
        return Date(timeIntervalSince1970: mark.timeIntervalSince1970.rounded(.up))
    }

    /// This envelope as a reader must take it when its file's modification
    /// time is `seconds` and `nanoseconds`: with the registered attempt
    /// counted when that is a mark. Returns nil when nothing was registered.
    public func recoveringAttempt(modifiedSeconds seconds: Int, nanoseconds: Int) -> Envelope? {
        let modified = Date(timeIntervalSince1970: Double(seconds))
        guard nanoseconds == 0, modified.timeIntervalSince(restingTime) > Self.registrationSlack else { return nil }
        var recovered = self
        recovered.attempts += 1
        for index in recovered.recipients.indices where recovered.recipients[index].state == .pending {
            recovered.recipients[index].attempts += 1
        }
        recovered.nextAttempt = modified
        return recovered
    }
}
