import Foundation
import Synchronization

/// The wall clock, behind a protocol so that the daemon's decisions (due
/// times, backoff, expiry, delayed DSNs, attempt deadlines) can be tested
/// in-process with a clock the test moves, instead of waiting for real time.
///
/// Named `WallClock` rather than `Clock`: the standard library's `Clock`
/// measures durations; this one tells the date, which is what envelopes store.
public protocol WallClock: Sendable {
    var now: Date { get }
}

/// The system's clock.
public struct SystemClock: WallClock {
    public init() {}
    public var now: Date { Date() }
}

/// A clock that stands still until told to move, for tests.
public final class ManualClock: WallClock {
    private let time: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_764_386_254)) {
        time = Mutex(start)
    }

    public var now: Date { time.withLock { $0 } }

    /// Moves the clock forward (or back, for a clock that is stepped).
    public func advance(by seconds: TimeInterval) {
        time.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    public func set(_ date: Date) {
        time.withLock { $0 = date }
    }
}
