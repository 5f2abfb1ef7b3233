/// The content of a Message-ID (RFC 5322 3.6.4) as Postern keeps it: the
/// `id-left "@" id-right` between the angle brackets, without them.
///
/// A message ID travels from the submitted header into the envelope and from
/// there into the `In-Reply-To:` and `References:` of a DSN and onto operators'
/// terminals. Whatever is accepted here is written between `<` and `>` in a header
/// line, so the check is about what cannot break out of that line: no control
/// character (CR and LF would start a new header field), no space, no angle bracket.
/// It is deliberately not the full grammar: `obs-id-left` (RFC 5322 4.5.4) allows
/// quoted strings and real mailers produce odd but harmless IDs, which are kept;
/// RFC 6532 3.2 allows UTF-8 in them.
public enum MessageID {
    /// RFC 5322 2.1.1: no line may exceed 998 octets, so neither may an ID.
    public static let maxLength = 998

    /// Why `text` is not a message ID Postern keeps, or nil when it is one.
    /// The reason names the offending character, never the whole (untrusted) text.
    public static func problem(in text: String) -> String? {
        guard text.utf8.count <= maxLength else { return "longer than \(maxLength) octets (RFC 5322 2.1.1)" }
        if let bad = text.unicodeScalars.first(where: { TerminalText.isControl($0) || $0 == " " || $0 == "<" || $0 == ">" }) {
            return "contains \(AddressError.describe(bad)), which a msg-id cannot (RFC 5322 3.6.4)"
        }
        guard let at = text.firstIndex(of: "@"), at != text.startIndex, text.last != "@" else {
            return "is not id-left \"@\" id-right (RFC 5322 3.6.4)"
        }
        return nil
    }

    public static func isValid(_ text: String) -> Bool { problem(in: text) == nil }

    /// The ID in a `Message-ID:` field's unfolded value: what lies between the
    /// first `<` and the `>` after it (comments and white space around it ignored),
    /// or the whole trimmed value when it has no brackets; nil when that is not a
    /// valid ID, so a malformed header yields no ID instead of a broken one.
    public static func extract(fromFieldValue value: String) -> String? {
        var candidate = Substring(value)
        if let open = value.firstIndex(of: "<") {
            let rest = value[value.index(after: open)...]
            guard let close = rest.firstIndex(of: ">") else { return nil }
            candidate = rest[..<close]
        } else {
            candidate = candidate.drop { $0 == " " || $0 == "\t" }
            while let last = candidate.last, last == " " || last == "\t" { candidate = candidate.dropLast() }
        }
        let id = String(candidate)
        return isValid(id) ? id : nil
    }
}
