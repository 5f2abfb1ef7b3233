/// What one recipient's attempt result means for its future, in the words
/// Postfix's logs use (`status=sent`, `deferred`, `bounced`, `expired`).
public enum Verdict: String, Sendable, Equatable {
    /// Delivered: done.
    case sent
    /// A temporary failure with attempts left: try again at the next attempt.
    case deferred
    /// A permanent failure: done, with a failure DSN.
    case bounced
    /// A temporary failure at the last attempt: given up, with a failure DSN.
    case expired

    public var isFinal: Bool { self != .deferred }
}

/// Decides each recipient's verdict from an attempt's outcome (mox's rule:
/// a temporary failure on the last allowed attempt becomes permanent).
public enum RetryPolicy {
    public enum Outcome: Sendable, Equatable {
        case delivered, temporary, permanent
    }

    /// - Parameters:
    ///   - attempts: attempts made, this one included (registered before it started).
    ///   - maxAttempts: `queue.max_attempts`, or the envelope's own limit.
    public static func verdict(_ outcome: Outcome, attempts: Int, maxAttempts: Int) -> Verdict {
        switch outcome {
        case .delivered: .sent
        case .permanent: .bounced
        case .temporary: attempts >= maxAttempts ? .expired : .deferred
        }
    }
}
