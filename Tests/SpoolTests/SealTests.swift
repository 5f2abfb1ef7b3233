import Testing
@testable import SpoolDrop

/// XXH64 against its published values, and the seal written into and checked
/// against an envelope (`Seal`, spool-layout.md 6.1).
struct SealTests {
    /// Published XXH64 values, seed 0 and one other: the empty input, a few
    /// octets (the 4- and 1-octet tails), 31, 32 and 65 octets (one and two
    /// stripes and what is left after them).
    @Test(arguments: [
        ("", UInt64(0), UInt64(0xEF46_DB37_51D8_E999)),
        ("abc", 0, 0x44BC_2CF5_AD77_0999),
        ("xxhash", 0, 0x32DD_3895_2C4B_C720),
        ("0123456", 0, 0x97EE_4FE4_A0FF_4DFA),
        ("0123456789:;<=>?@ABCDEFGHIJKLMN", 0, 0xC506_E230_1291_5790),
        ("0123456789:;<=>?@ABCDEFGHIJKLMNO", 0, 0x96EE_2FA9_35FD_D556),
        ("0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnop", 0, 0xEDDC_E6EC_01F7_E595),
        ("", 0x1234_5678_90AB_CDEF, 0xA2F5_C44D_0F46_C872),
        ("0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnop", 0x1234_5678_90AB_CDEF, 0xB0AA_81BC_38DF_17B9),
    ])
    func publishedValues(_ input: String, _ seed: UInt64, _ expected: UInt64) {
        #expect(XXH64.hash(Array(input.utf8), seed: seed) == expected)
    }

    /// Fed in pieces of any size, the hash is the same as in one.
    @Test func piecesMakeTheSameHash() {
        let input = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = XXH64.hash(input)
        for size in [1, 3, 31, 32, 33, 64, 100, 999] {
            var hasher = XXH64()
            var start = 0
            while start < input.count {
                hasher.update(input[start ..< min(start + size, input.count)])
                start += size
            }
            #expect(hasher.finalize() == whole, "pieces of \(size)")
        }
    }

    static let message = Array("Subject: sealed\r\n\r\nbody\r\n".utf8)
    static let envelope = Array("{\n  \"id\": \"X\",\n  \"seal\": \"\(Seal.placeholder)\",\n  \"size\": 25\n}\n".utf8)

    static func sealed(_ message: [UInt8] = message) -> [UInt8] {
        var hasher = XXH64()
        hasher.update(message)
        var envelope = envelope
        #expect(Seal.close(&envelope, message: hasher))
        return envelope
    }

    /// A sealed envelope matches its message, and nothing else: a changed
    /// octet of either, a shorter message, or the envelope before sealing.
    @Test func sealMatchesOnlyWhatWasWritten() {
        let envelope = Self.sealed()
        #expect(envelope.count == Self.envelope.count)
        #expect(Seal.matches(envelope: envelope) { $0.update(Self.message) })
        var flipped = Self.message
        flipped[20] ^= 0x01
        #expect(!Seal.matches(envelope: envelope) { $0.update(flipped) })
        #expect(!Seal.matches(envelope: envelope) { $0.update(Self.message.dropLast()) })
        #expect(!Seal.matches(envelope: envelope) { $0.update(Self.message + [0]) })
        var torn = envelope
        torn[8] = UInt8(ascii: "Y")
        #expect(!Seal.matches(envelope: torn) { $0.update(Self.message) })
        #expect(!Seal.matches(envelope: Self.envelope) { $0.update(Self.message) })
        #expect(!Seal.matches(envelope: [UInt8](repeating: 0, count: envelope.count)) { $0.update(Self.message) })
    }

    /// The seal is found only as the envelope's own member: a string that
    /// merely contains the same text (escaped, as JSON writes it) is not it.
    @Test func sealIsTheMemberNotAStringThatLooksLikeIt() {
        let decoy = Array("{\"message_id\": \"\\\"seal\\\": \\\"\(Seal.placeholder)\\\"\", \"seal\": \"\(Seal.placeholder)\"}\n".utf8)
        let range = Seal.digitRange(decoy)
        #expect(range != nil)
        if let range { #expect(range.lowerBound > decoy.count / 2) }
        #expect(Seal.digitRange(Array("{\"message_id\": \"\\\"seal\\\": \\\"\(Seal.placeholder)\\\"\"}\n".utf8)) == nil)
        var noPlaceholder = Array("{\"id\": \"X\"}\n".utf8)
        #expect(!Seal.close(&noPlaceholder, message: XXH64()))
    }
}
