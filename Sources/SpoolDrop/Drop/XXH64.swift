/// XXH64, the 64-bit hash of the xxHash family, fed in pieces: what a
/// sealed message's `seal` is computed with (`Seal`).
///
/// Why this one: the seal only has to tell a message and envelope written
/// whole from what a power loss left of them (stale blocks of an earlier
/// message, a torn write, zeros), never to stand up to someone forging one;
/// only the spool owner writes `incoming/`. XXH64 does that at several
/// gigabytes a second in plain Swift, with no library a drop program would
/// have to link, and its definition and test values are public.
public struct XXH64 {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    private let seed: UInt64
    private var lanes: (UInt64, UInt64, UInt64, UInt64)
    /// Input not yet consumed by a 32-octet stripe (fewer than 32 octets).
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        lanes = (seed &+ Self.prime1 &+ Self.prime2, seed &+ Self.prime2, seed, seed &- Self.prime1)
        pending.reserveCapacity(32)
    }

    /// One-shot: the hash of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0) -> UInt64 {
        var hasher = XXH64(seed: seed)
        hasher.update(Array(bytes))
        return hasher.finalize()
    }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        length &+= UInt64(bytes.count)
        var rest = bytes[...]
        if !pending.isEmpty {
            let take = min(32 - pending.count, rest.count)
            pending.append(contentsOf: rest.prefix(take))
            rest = rest.dropFirst(take)
            guard pending.count == 32 else { return }
            pending.withUnsafeBytes { consume($0) }
            pending.removeAll(keepingCapacity: true)
        }
        let whole = rest.count & ~31
        if whole > 0 {
            let done = rest.withContiguousStorageIfAvailable { buffer in
                consume(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[..<whole]))
            }
            if done == nil { Array(rest.prefix(whole)).withUnsafeBytes { consume($0) } }
            rest = rest.dropFirst(whole)
        }
        pending.append(contentsOf: rest)
    }

    /// Consumes whole 32-octet stripes.
    private mutating func consume(_ stripes: UnsafeRawBufferPointer) {
        var (v1, v2, v3, v4) = lanes
        var offset = 0
        while offset + 32 <= stripes.count {
            v1 = Self.round(v1, Self.word(stripes, offset))
            v2 = Self.round(v2, Self.word(stripes, offset + 8))
            v3 = Self.round(v3, Self.word(stripes, offset + 16))
            v4 = Self.round(v4, Self.word(stripes, offset + 24))
            offset += 32
        }
        lanes = (v1, v2, v3, v4)
    }

    public func finalize() -> UInt64 {
        var h: UInt64
        if length >= 32 {
            let (v1, v2, v3, v4) = lanes
            h = Self.rotate(v1, 1) &+ Self.rotate(v2, 7) &+ Self.rotate(v3, 12) &+ Self.rotate(v4, 18)
            for v in [v1, v2, v3, v4] { h = (h ^ Self.round(0, v)) &* Self.prime1 &+ Self.prime4 }
        } else {
            h = seed &+ Self.prime5
        }
        h &+= length
        pending.withUnsafeBytes { tail in
            var offset = 0
            while offset + 8 <= tail.count {
                h ^= Self.round(0, Self.word(tail, offset))
                h = Self.rotate(h, 27) &* Self.prime1 &+ Self.prime4
                offset += 8
            }
            if offset + 4 <= tail.count {
                h ^= UInt64(UInt32(littleEndian: tail.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) &* Self.prime1
                h = Self.rotate(h, 23) &* Self.prime2 &+ Self.prime3
                offset += 4
            }
            while offset < tail.count {
                h ^= UInt64(tail[offset]) &* Self.prime5
                h = Self.rotate(h, 11) &* Self.prime1
                offset += 1
            }
        }
        h ^= h >> 33
        h &*= Self.prime2
        h ^= h >> 29
        h &*= Self.prime3
        h ^= h >> 32
        return h
    }

    @inline(__always)
    private static func word(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    private static func rotate(_ value: UInt64, _ bits: UInt64) -> UInt64 {
        (value << bits) | (value >> (64 - bits))
    }

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotate(accumulator &+ input &* prime2, 31) &* prime1
    }
}
