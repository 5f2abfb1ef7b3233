/// RFC 4648 section 4 base64, for the few places the drop path needs it (an
/// RFC 2047 encoded word in a generated `From:`), without Foundation's `Data`:
/// the set-group-ID drop program must not load Foundation.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `bytes` in base64 with `=` padding and no line breaks.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value = 0
            for (position, byte) in chunk.enumerated() { value |= Int(byte) << (16 - 8 * position) }
            for position in 0..<4 {
                out.append(position <= chunk.count ? alphabet[(value >> (18 - 6 * position)) & 0x3F] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of strict base64 text (`=` padding required, no white space),
    /// or nil: what an SMTP server reads in AUTH (RFC 4954 4: a response that
    /// does not decode is refused, not guessed at).
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var value = 0, bits = 0, padding = 0
        for byte in text {
            let digit: Int
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = Int(byte) - 65
            case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = Int(byte) - 71
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = Int(byte) + 4
            case UInt8(ascii: "+"): digit = 62
            case UInt8(ascii: "/"): digit = 63
            case UInt8(ascii: "="): padding += 1; continue
            default: return nil
            }
            guard padding == 0 else { return nil }   // data after padding
            value = value << 6 | digit
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((value >> bits) & 0xFF))
            }
        }
        guard padding <= 2 else { return nil }
        return out
    }
}
