import Delivery
import Foundation
import Scheduler
import Spool

/// What the daemon needs from the configuration, as plain values: the CLI
/// builds it from the TOML file (and again on SIGHUP).
public struct DaemonSettings: Sendable {
    public var hostname: String
    public var limits = SchedulerLimits()
    public var maxAttempts = 8
    public var backoff = Backoff()
    /// How long finished messages' envelopes stay in `retired/`; 0 removes them at once.
    public var keepRetired: TimeInterval = 0
    public var shutdownGrace: TimeInterval = 30
    /// The largest message accepted from a user's drop (`drop.max_message_size`):
    /// a writer's own program enforces it, but a hand-made drop (a sparse file
    /// claiming gigabytes, say) is checked again before the daemon copies it.
    public var maxMessageSize = DropSettings().maxMessageSize
    /// The most recipients of a user's drop (`drop.max_recipients`), checked again likewise.
    public var maxRecipients = DropSettings().maxRecipients
    /// This machine's own recipients (`[local]`), rewritten as drops are
    /// accepted; nil rewrites nothing.
    public var local: LocalRecipients.Settings?
    /// The longest one attempt may take before it is aborted (a temporary failure).
    public var attemptTimeout: TimeInterval = 1800
    /// Attempts after which a delayed DSN is due; 0 never.
    public var delayWarningAttempts = 5
    /// What the remaining attempts of a message are, from its attempt count and
    /// next attempt: the nominal schedule a delayed DSN tells the sender.
    public func remainingSchedule(for envelope: Envelope) -> [Date] {
        backoff.remainingSchedule(next: envelope.nextAttempt, attempts: envelope.attempts,
                                  maxAttempts: envelope.maxAttempts ?? maxAttempts)
    }

    /// The transports and the routes that choose among them.
    public var router = Router(transports: [], defaultTransport: "direct")

    public init(hostname: String) {
        self.hostname = hostname
    }
}

/// Where the delayed and failure notifications of the DSN issue plug in.
///
/// The daemon calls these at the moments a DSN is due, with the envelope as it
/// is then and the recipients concerned; until the DSN component exists, the
/// logging implementation records that a DSN was due.
public protocol DSNHook: Sendable {
    /// Recipients still pending after the delay-warning attempt; `schedule` is
    /// when the remaining attempts are due, the last one the final.
    func delayed(_ envelope: Envelope, recipients: [Recipient], schedule: [Date])
    /// Recipients that failed. Returns false when a notification that is due
    /// could not be dropped (a full disk): the caller keeps the message and its
    /// `dsn_pending` mark and tries again.
    @discardableResult
    func failed(_ envelope: Envelope, recipients: [Recipient]) -> Bool
}

extension DSNHook {
    /// Whether a failed bounce is reported to someone (`dsn.postmaster`); when
    /// not, the daemon keeps it in `hold/` rather than discard the only copy.
    public var reportsDoubleBounces: Bool { false }

    /// Sends the failure DSN for the recipients that `envelope.dsnPending`
    /// names and clears the mark; false, with the mark kept, when it could not
    /// be dropped. The caller writes the cleared envelope, or removes the
    /// finished message (spool-layout.md 6.5).
    public func sendPending(_ envelope: inout Envelope) -> Bool {
        guard !envelope.dsnPending.isEmpty else { return true }
        let marked = Set(envelope.dsnPending)
        guard failed(envelope, recipients: envelope.recipients.filter { marked.contains($0.address) && $0.state == .failed }) else {
            return false
        }
        envelope.dsnPending = []
        return true
    }
}
