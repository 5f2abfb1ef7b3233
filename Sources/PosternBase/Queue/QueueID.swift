import Synchronization

/// The name of a message in the spool, and its identity for its whole life.
///
/// The layout is that of a ULID: 26 characters of Crockford base32, the first 10
/// encoding the creation time in milliseconds since the Unix epoch and the last
/// 16 encoding 80 random bits. That gives the properties the spool needs:
/// - IDs sort by creation time as plain strings (`ls` lists the queue in order);
/// - separate processes and machines need no coordination: two IDs of the same
///   millisecond collide with probability 2^-80, and a collision is caught anyway
///   because a message directory is created with `mkdir` (which fails on `EEXIST`);
/// - an ID is never reused and has nothing to do with inode numbers, so a spool
///   survives `cp -a`, `rsync` and restores from backup unchanged;
/// - the alphabet has no `/`, `.`, or lower case, so an ID is always a safe file name.
public struct QueueID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Crockford's base32 alphabet: digits and upper-case letters without I, L, O, U.
    static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    public static let length = 26

    public let rawValue: String

    /// Validates `text` as a queue ID; `nil` when it is not one (wrong length,
    /// a character outside the alphabet, or a time beyond 48 bits).
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == Self.length, bytes[0] <= UInt8(ascii: "7"),
              bytes.allSatisfy({ Self.alphabet.contains($0) }) else { return nil }
        rawValue = text
    }

    init(milliseconds: UInt64, random: (high: UInt16, low: UInt64)) {
        var chars = [UInt8](repeating: 0, count: Self.length)
        var time = milliseconds
        for index in stride(from: 9, through: 0, by: -1) {
            chars[index] = Self.alphabet[Int(time & 31)]
            time >>= 5
        }
        // 80 random bits as 16 groups of 5, most significant first.
        var low = random.low
        var high = UInt32(random.high)
        for index in stride(from: 25, through: 10, by: -1) {
            chars[index] = Self.alphabet[Int(low & 31)]
            low = (low >> 5) | (UInt64(high & 31) << 59)
            high >>= 5
        }
        rawValue = String(decoding: chars, as: UTF8.self)
    }

    /// Milliseconds since the Unix epoch at which the ID was made.
    public var milliseconds: UInt64 {
        rawValue.utf8.prefix(10).reduce(0) { ($0 << 5) | UInt64(Self.alphabet.firstIndex(of: $1)!) }
    }

    public var description: String { rawValue }

    public static func < (lhs: QueueID, rhs: QueueID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Makes queue IDs that increase strictly within this process.
///
/// Within one millisecond the random part is incremented rather than drawn again
/// (the ULID monotonic rule), so IDs made by one process sort in the order they
/// were made even when the clock does not move or steps backwards.
public final class QueueIDGenerator: Sendable {
    private struct State {
        var milliseconds: UInt64 = 0
        var high: UInt16 = 0
        var low: UInt64 = 0
    }
    private let state = Mutex(State())
    /// The clock, in seconds since the Unix epoch.
    private let clock: @Sendable () -> Double

    public init(clock: @escaping @Sendable () -> Double = Timestamp.now) {
        self.clock = clock
    }

    public func next() -> QueueID {
        let wall = UInt64(max(0, clock() * 1000))
        return state.withLock { state in
            if wall > state.milliseconds {
                var rng = SystemRandomNumberGenerator()
                state.milliseconds = wall
                state.high = rng.next()
                state.low = rng.next()
            } else {
                // Same or earlier millisecond: keep the last time, step the random part.
                let (low, carry) = state.low.addingReportingOverflow(1)
                state.low = low
                if carry {
                    let (high, overflow) = state.high.addingReportingOverflow(1)
                    state.high = high
                    if overflow { state.milliseconds += 1 }
                }
            }
            return QueueID(milliseconds: state.milliseconds, random: (state.high, state.low))
        }
    }
}
