import Foundation

/// The retry schedule: mox's, configurable (`queue.backoff_base`,
/// `queue.backoff_factor`, `queue.jitter`).
///
/// The delay after attempt `n` (1-based) is `(base ± jitter) × factor^(n-1)`:
/// with the defaults 7m30s, 2 and 5s that is 7.5 m, 15 m, 30 m, 1 h, 2 h, 4 h, 8 h,
/// and the jitter grows with the delay, as mox's does. Jitter keeps messages
/// queued together (a relay that was down for an hour) from retrying together.
public struct Backoff: Sendable, Equatable {
    public var base: TimeInterval
    public var factor: Double
    public var jitter: TimeInterval

    public init(base: TimeInterval = 450, factor: Double = 2, jitter: TimeInterval = 5) {
        self.base = base
        self.factor = factor
        self.jitter = jitter
    }

    /// The delay before the attempt after attempt number `attempt`, with `unit`
    /// a random number in [-1, 1] choosing where in the jitter band it falls.
    public func delay(after attempt: Int, unit: Double) -> TimeInterval {
        let scaled = pow(factor, Double(max(0, attempt - 1)))
        return max(0, base + jitter * max(-1, min(1, unit))) * scaled
    }

    /// The same, with the jitter drawn from `generator`.
    public func delay(after attempt: Int, using generator: inout some RandomNumberGenerator) -> TimeInterval {
        delay(after: attempt, unit: jitter > 0 ? Double.random(in: -1...1, using: &generator) : 0)
    }

    /// When the remaining attempts of a message are due, nominally (no jitter):
    /// the registered `next` one, then one backoff after another up to
    /// `maxAttempts`. What a delayed DSN promises and `postern explain` shows.
    public func remainingSchedule(next: Date?, attempts: Int, maxAttempts: Int) -> [Date] {
        guard attempts < maxAttempts, var time = next else { return [] }
        var times = [time]
        for attempt in (attempts + 1)..<maxAttempts {
            time = time.addingTimeInterval(delay(after: attempt, unit: 0))
            times.append(time)
        }
        return times
    }

    /// The nominal delays (no jitter) after attempts 1 ..< `attempts`: the
    /// whole schedule as durations (`remainingSchedule` gives dates).
    public func nominalSchedule(attempts: Int) -> [TimeInterval] {
        (1..<max(1, attempts)).map { delay(after: $0, unit: 0) }
    }
}
