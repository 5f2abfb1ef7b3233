/// The label values of Postern's metrics.
///
/// The TLS labels (`tlsmode`, `outcome`, `policy`) are PosternCore's own
/// vocabulary (`TLSMode`, `TLSOutcome`, `TLSPolicy`), used as they are: one
/// set of words for configuration, logs, history and metrics.
///
/// Every label whose values form a small fixed set is an enum here, for two
/// reasons: a caller cannot invent a value (each new value is a new time series
/// in Prometheus, kept for weeks), and `PosternMetrics` can create every series
/// of those labels at start-up, so dashboards and alerts (`rate(...)`,
/// `increase(...)`) see a 0 before the first event instead of no data.
///
/// The raw values are the words on the wire. Where a word would be `none`, the
/// case has another name (`plaintext`, `noReply`) so that `.none` is never
/// confused with `Optional.none`.
extension PosternMetrics {
    /// How an attempt's SMTP connection went: `postern_queue_connection_total{result}`
    /// (mox's `mox_queue_connection_total`). One per connection attempt to one
    /// host, counted when the connection ends.
    public enum ConnectionResult: String, Sendable, CaseIterable {
        /// Connected and the SMTP transaction ran (whatever the recipients' fates).
        case ok
        /// A connect or a command timed out.
        case timeout
        /// The attempt was canceled (shutdown, the message held or removed).
        case canceled
        /// Any other failure: refused, reset, TLS handshake failure, bad greeting.
        case error
    }

    /// The outcome of one delivery attempt of a message (all its recipients for
    /// one destination), for `postern_queue_delivery_duration_seconds{result}`.
    /// The same words as mox's `mox_queue_delivery_duration_seconds`.
    public enum AttemptResult: String, Sendable, CaseIterable {
        /// Every recipient accepted.
        case ok
        /// Some recipients accepted, others deferred or refused.
        case okPartial = "okpartial"
        case timeout
        case canceled
        /// A temporary (4xx) failure for the whole attempt.
        case tempError = "temperror"
        /// A permanent (5xx) failure for the whole attempt.
        case permError = "permerror"
        /// A failure with no SMTP reply (connection, DNS, TLS).
        case error
    }

    /// Where a message or a recipient is: the `state` label of
    /// `postern_queue_messages` and `postern_queue_recipients`.
    public enum QueueState: String, Sendable, CaseIterable {
        /// In `queue/`: waiting for its next attempt or being delivered.
        case queued
        /// In `hold/`: put aside by the operator.
        case held
        /// Quarantined: an entry that failed validation.
        case corrupt
        /// Done (delivered, bounced or expired) and kept until swept.
        case retired
    }

    /// Why the daemon refused a drop at pickup: the `reason` label of
    /// `postern_drops_total{result="rejected"}`. A fixed vocabulary on purpose:
    /// the free text of the refusal belongs in the log, not in a label.
    public enum DropRejection: String, Sendable, CaseIterable {
        /// An entry in `drop/` whose name is not a queue ID.
        case badName = "bad_name"
        /// The envelope or message failed validation (unreadable, malformed,
        /// untrusted owner).
        case invalid
        /// A queue ID that is already queued or held.
        case duplicate
        /// Anything else; log the details.
        case other
    }

    /// One recipient's final or interim outcome: the `result` label of
    /// `postern_deliveries_total`.
    public enum RecipientResult: String, Sendable, CaseIterable {
        /// Accepted by the next hop.
        case sent
        /// Failed temporarily; another attempt is scheduled.
        case deferred
        /// Failed permanently; a failure DSN is due.
        case bounced
        /// Failed temporarily for too long (attempts or age exhausted).
        case expired
    }

    /// The first digit of the SMTP reply behind a recipient's outcome: the
    /// `status_class` label of `postern_deliveries_total`; `none` when no reply
    /// was had (connection failure, DNS, TLS, timeout).
    public enum StatusClass: String, Sendable, CaseIterable {
        case success = "2"
        case transient = "4"
        case permanent = "5"
        case noReply = "none"

        /// The class of a reply code (250 is `.success`, 451 `.transient`...);
        /// `.noReply` for nil and for codes outside 200...599 (1xx and 3xx are
        /// never a recipient's last word).
        public init(replyCode: Int?) {
            switch replyCode {
            case .some(200...299): self = .success
            case .some(400...499): self = .transient
            case .some(500...599): self = .permanent
            default: self = .noReply
            }
        }
    }

    /// Which delivery status notification was written: `postern_dsn_total{kind}`.
    public enum DSNKind: String, Sendable, CaseIterable {
        /// A failure DSN to the sender.
        case failed
        /// A delay warning to the sender.
        case delayed
        /// A DSN that could not go to its sender (null sender, or a bounce that
        /// bounced) and went to the postmaster instead.
        case postmaster
    }

    /// Why the spool cannot be written now: `postern_spool_unwritable{condition}`
    /// and `postern_spool_write_failures_total{condition}`.
    public enum SpoolCondition: String, Sendable, CaseIterable {
        /// ENOSPC or EDQUOT: no block or inode left, or the quota reached.
        case noSpace = "no_space"
        /// EMFILE or ENFILE: the process's or the system's descriptor limit.
        case noDescriptors = "no_descriptors"
        /// EROFS: the file system was remounted read-only (errors=remount-ro).
        case readOnly = "read_only"
    }
}

/// How a session of the SMTP listener ended: the `result` label of `postern_smtp_sessions_total`.
public enum SMTPSessionEnd: String, Sendable, CaseIterable {
    /// The client sent QUIT.
    case quit
    /// The client closed the connection without QUIT (or it failed).
    case disconnected
    /// The client was silent past `smtp.timeout`.
    case timeout
    /// Closed with 421 after `smtp.max_errors` error replies.
    case errors
    /// Refused at connect: `smtp.max_connections` or `smtp.max_connections_per_client` reached.
    case refused
    /// The STARTTLS handshake failed.
    case tlsFailed = "tls_failed"
}

/// Why the SMTP listener refused a message after its data: the `reason` label
/// of `postern_smtp_messages_total{result="rejected"}`.
public enum SMTPRejection: String, Sendable, CaseIterable {
    case tooBig = "too_big"
    case lineTooLong = "line_too_long"
    case nul
    /// Another rule of the drop (recipients, header section).
    case invalid
    /// The spool could not store it (451).
    case temporary
}
