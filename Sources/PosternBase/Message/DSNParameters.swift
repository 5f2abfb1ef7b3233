/// RFC 3461 4.3 RET: what of the message a failure DSN returns. Stored in
/// the envelope's `ret` as the SMTP keyword in lower case.
public enum DSNReturn: String, Sendable, Equatable, CaseIterable {
    /// `RET=FULL`: the whole message.
    case full
    /// `RET=HDRS`: its header section only.
    case hdrs

    /// The parameter's value as SMTP (`FULL`, `HDRS`, any case) or
    /// `sendmail -R` (`full`, `hdrs`) writes it; nil for anything else.
    public init?(keyword: String) {
        self.init(rawValue: keyword.lowercased())
    }

    /// `FULL` or `HDRS`, as MAIL FROM carries it.
    public var keyword: String { rawValue.uppercased() }
}

/// RFC 3461 4: xtext, the encoding of the DSN parameters' values on the SMTP
/// command line: `+` followed by two upper-case hexadecimal digits stands for
/// any octet; every other character is ASCII 33-126 except `+` and `=`.
public enum XText {
    /// `text` as xtext: `+`, `=` and every octet outside 33-126 as `+HH`.
    public static func encode(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            if (33...126).contains(byte), byte != UInt8(ascii: "+"), byte != UInt8(ascii: "=") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                encoded += (hex.count == 1 ? "+0" : "+") + hex
            }
        }
        return encoded
    }

    /// `text` decoded; nil when it is not xtext (a character outside 33-126,
    /// a bare `=`, a `+` without two hexadecimal digits) or does not decode
    /// to UTF-8.
    public static func decode(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "=") else { return nil }
            if byte == UInt8(ascii: "+") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// RFC 3461 4.4 ENVID: the sender's identifier of the transaction, returned
/// in the `Original-Envelope-Id:` of every DSN (RFC 3464 2.2.1). Postern keeps
/// it as SMTP carried it (xtext), so that it is relayed unchanged, and checks
/// it where it enters (the listener, `sendmail -V`, the envelope codec).
public enum EnvelopeIDParameter {
    /// RFC 3461 4.4: the parameter's value is at most 100 characters.
    public static let maxLength = 100

    /// Why `xtext` is not an ENVID Postern keeps, or nil when it is one: it
    /// must be xtext of at most 100 characters whose decoded text is printable
    /// US-ASCII (RFC 3461 4.4: "graphic and white space"; no control
    /// character, which could break out of the DSN field it ends up in).
    public static func problem(inXText xtext: String) -> String? {
        guard !xtext.isEmpty else { return "is empty" }
        guard xtext.utf8.count <= maxLength else { return "is longer than \(maxLength) characters (RFC 3461 4.4)" }
        guard let decoded = XText.decode(xtext) else { return "is not xtext (RFC 3461 4)" }
        return problem(inDecoded: decoded)
    }

    /// The xtext form of an ENVID given as plain text (`sendmail -V`), or why
    /// it cannot be one.
    public static func xtext(fromPlain text: String) -> Result<String, EnvelopeIDProblem> {
        if let problem = problem(inDecoded: text) { return .failure(EnvelopeIDProblem(description: problem)) }
        let encoded = XText.encode(text)
        guard encoded.utf8.count <= maxLength else {
            return .failure(EnvelopeIDProblem(description: "is longer than \(maxLength) characters once xtext-encoded (RFC 3461 4.4)"))
        }
        return .success(encoded)
    }

    /// The decoded text: printable US-ASCII only (space through tilde).
    static func problem(inDecoded text: String) -> String? {
        guard !text.isEmpty else { return "is empty" }
        if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value > 0x7E }) {
            return "contains \(AddressError.describe(bad)); an envelope ID is printable US-ASCII (RFC 3461 4.4)"
        }
        return nil
    }
}

/// Why a text is not an envelope ID, in words.
public struct EnvelopeIDProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
}
