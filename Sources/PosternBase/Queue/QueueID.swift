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

    /// The 128 bits the 26 characters encode (2 + 25 × 5 + 1: the first
    /// character carries 3 bits, hence its limit of "7"), most significant
    /// half first. Packed, an ID is 16 bytes with no allocation: the daemon's
    /// index of a million queued messages holds a million of them (issue #15),
    /// and as text each would be a heap string of 26 bytes plus its header.
    /// The numeric order is the text's order, so sorting is unchanged.
    public let high: UInt64
    public let low: UInt64

    /// Validates `text` as a queue ID; `nil` when it is not one (wrong length,
    /// a character outside the alphabet, or a time beyond 48 bits).
    public init?(_ text: String) {
        var text = text
        guard let id = text.withUTF8({ QueueID(utf8: $0) }) else { return nil }
        self = id
    }

    /// Validates the bytes of a name (a directory entry's, say) as a queue ID
    /// without making a `String` of it.
    public init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count == Self.length, bytes[0] <= UInt8(ascii: "7") else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for byte in bytes {
            guard let value = Self.value(of: byte) else { return nil }
            high = (high << 5) | (low >> 59)
            low = (low << 5) | UInt64(value)
        }
        self.high = high
        self.low = low
    }

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(milliseconds: UInt64, random: (high: UInt16, low: UInt64)) {
        high = (milliseconds << 16) | UInt64(random.high)
        low = random.low
    }

    /// The value of one character of the alphabet; nil for anything else
    /// (lower case included: names are compared byte for byte).
    static func value(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "Z"):
            let value = Self.letterValues[Int(byte - UInt8(ascii: "A"))]
            return value == 0xFF ? nil : value
        default: return nil
        }
    }

    /// A through Z to their values; I, L, O and U are not in the alphabet.
    private static let letterValues: [UInt8] = (UInt8(ascii: "A")...UInt8(ascii: "Z")).map { letter in
        alphabet.firstIndex(of: letter).map(UInt8.init) ?? 0xFF
    }

    /// The 26 characters, as they name the message's directory.
    public var rawValue: String {
        String(unsafeUninitializedCapacity: Self.length) { buffer in
            write(into: buffer)
            return Self.length
        }
    }

    /// Writes the 26 characters into `buffer`, which holds at least 26 bytes.
    public func write(into buffer: UnsafeMutableBufferPointer<UInt8>) {
        var high = self.high
        var low = self.low
        for index in stride(from: Self.length - 1, through: 0, by: -1) {
            buffer[index] = Self.alphabet[Int(low & 31)]
            low = (low >> 5) | (high << 59)
            high >>= 5
        }
    }

    /// Milliseconds since the Unix epoch at which the ID was made.
    public var milliseconds: UInt64 { high >> 16 }

    public var description: String { rawValue }

    public static func < (lhs: QueueID, rhs: QueueID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }
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
