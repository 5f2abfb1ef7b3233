/// The seal of a message the SMTP listener builds in `incoming/`
/// (spool-layout.md 6.1, "Sealed into the queue"): the envelope's `seal`
/// field, `"xxh64:"` and 16 hexadecimal digits, the XXH64 of the message's
/// octets followed by the envelope's own octets as written with 16 zeros in
/// place of those digits.
///
/// Why: the listener answers 250 once the message's directory in
/// `incoming/` is durable, one wait instead of two (a second for a rename
/// into `queue/`). After a power loss that directory may hold anything the
/// disk kept of it: a torn write, blocks of the message a blank held before,
/// an envelope from another message. A seal that matches proves that both
/// files are whole and belong together; the scanner queues such an entry and
/// removes any other (it was never acknowledged: the 250 waits for the seal
/// to be durable).
public enum Seal {
    public static let key = "seal"
    static let scheme: [UInt8] = Array("xxh64:".utf8)
    /// The value an envelope is encoded with before it is sealed.
    public static let placeholder = "xxh64:0000000000000000"

    /// Writes the seal into `envelope`, which holds the placeholder: `message`
    /// has been fed the message's octets. False if there is no placeholder.
    static func close(_ envelope: inout [UInt8], message: XXH64) -> Bool {
        guard let digits = digitRange(envelope), envelope[digits].allSatisfy({ $0 == UInt8(ascii: "0") }) else { return false }
        var hasher = message
        hasher.update(envelope)
        let hex = Array(String(hasher.finalize(), radix: 16).utf8)
        envelope.replaceSubrange(digits, with: [UInt8](repeating: UInt8(ascii: "0"), count: 16 - hex.count) + hex)
        return true
    }

    /// Whether `envelope` carries a seal that matches the message whose
    /// octets `feed` gives the hasher (in order, in as many pieces as it likes).
    public static func matches<E: Error>(envelope: [UInt8], feed: (inout XXH64) throws(E) -> Void) throws(E) -> Bool {
        guard let digits = digitRange(envelope),
              let sealed = UInt64(String(decoding: envelope[digits], as: UTF8.self), radix: 16) else { return false }
        var hasher = XXH64()
        try feed(&hasher)
        var open = envelope
        open.replaceSubrange(digits, with: [UInt8](repeating: UInt8(ascii: "0"), count: 16))
        hasher.update(open)
        return hasher.finalize() == sealed
    }

    /// Where the 16 digits of the `seal` member are in an encoded envelope:
    /// the key `"seal"`, a colon, and a string of the scheme and 16 lower-case
    /// hexadecimal digits. The key cannot occur inside another string, whose
    /// quotes are escaped.
    static func digitRange(_ envelope: [UInt8]) -> Range<Int>? {
        let key = Array("\"\(Self.key)\"".utf8)
        var start = 0
        while start + key.count <= envelope.count {
            guard let found = firstIndex(of: key, in: envelope, from: start) else { return nil }
            var i = skipSpaces(envelope, found + key.count)
            start = found + 1
            guard i < envelope.count, envelope[i] == UInt8(ascii: ":") else { continue }
            i = skipSpaces(envelope, i + 1)
            guard i < envelope.count, envelope[i] == UInt8(ascii: "\"") else { continue }
            i += 1
            guard envelope.count >= i + scheme.count + 17, Array(envelope[i ..< i + scheme.count]) == scheme else { continue }
            let digits = i + scheme.count ..< i + scheme.count + 16
            guard envelope[digits].allSatisfy(isHexDigit), envelope[digits.upperBound] == UInt8(ascii: "\"") else { continue }
            return digits
        }
        return nil
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func skipSpaces(_ bytes: [UInt8], _ start: Int) -> Int {
        var i = start
        while i < bytes.count, bytes[i] == UInt8(ascii: " ") || bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: "\t")
            || bytes[i] == UInt8(ascii: "\r") { i += 1 }
        return i
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = start
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], haystack[i ..< i + needle.count].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
