import Glibc

/// A point on the monotonic clock by which something must be done.
///
/// Every wait on the network is bounded by one (RFC 5321 4.5.3.2 gives SMTP's),
/// and waits are computed from it rather than restarted per read, so a server
/// that trickles one byte per minute still runs out of time.
public struct Deadline: Sendable, Comparable {
    /// Nanoseconds on `CLOCK_MONOTONIC`.
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) {
        self.nanoseconds = nanoseconds
    }

    public static var now: Deadline {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Deadline(nanoseconds: UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec))
    }

    /// `seconds` from now.
    public static func after(_ seconds: Double) -> Deadline {
        Deadline(nanoseconds: now.nanoseconds + UInt64(max(0, seconds) * 1_000_000_000))
    }

    /// Milliseconds left, for `poll(2)`: 0 when passed, rounded up otherwise.
    public var pollTimeout: Int32 {
        let current = Deadline.now.nanoseconds
        guard nanoseconds > current else { return 0 }
        return Int32(min(Int64(Int32.max), Int64((nanoseconds - current + 999_999) / 1_000_000)))
    }

    public var hasPassed: Bool { Deadline.now.nanoseconds >= nanoseconds }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
}
