import Foundation

/// SASLprep (RFC 4013), the string preparation SCRAM applies to the user name
/// and password before use (RFC 5802 sections 2.2 and 5.1), so that a password
/// typed as "ﬁ" on one keyboard and "fi" on another derives the same key.
///
/// What is implemented, in RFC 4013's order:
/// 1. mapping (section 2.1): the "commonly mapped to nothing" characters of
///    RFC 3454 table B.1 are removed, and non-ASCII spaces (table C.1.2) become
///    U+0020 SPACE;
/// 2. normalisation (section 2.2): Unicode NFKC, through Foundation's
///    `precomposedStringWithCompatibilityMapping`;
/// 3. prohibited output (section 2.3): tables C.1.2 and C.2.1 to C.9 (controls,
///    private use, non-characters, surrogates, ideographic description and
///    directionality-changing characters, tags) make the string unusable.
///
/// Where this only approximates RFC 4013, deliberately:
/// - NFKC is the current Unicode version's, not Unicode 3.2's that stringprep
///   pins; the two differ only for characters assigned or changed since then.
///   Server implementations are no more exact (many use current tables, some
///   skip SASLprep), and for printable ASCII every variant is the identity.
/// - Unassigned code points (RFC 3454 table A.1) are not checked. RFC 5802
///   treats the password as a "stored string", which forbids them, but that
///   would refuse every password with a character newer than Unicode 3.2
///   (emoji, for one) that servers accept in practice.
/// - The bidirectional rule (RFC 3454 section 6) is not checked: it needs the
///   bidi class of every character, which neither the standard library nor
///   Foundation exposes, and a violation only makes the server refuse the login.
///
/// Plain printable ASCII, the common case, is returned unchanged without
/// touching Foundation: nothing in RFC 4013 maps or prohibits it.
enum SASLprep {
    /// The prepared string, or nil when it contains a prohibited code point.
    static func prepare(_ string: String) -> String? {
        if string.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return string }
        var mapped = String.UnicodeScalarView()
        for scalar in string.unicodeScalars where !isMappedToNothing(scalar.value) {
            mapped.append(isNonASCIISpace(scalar.value) ? " " : scalar)
        }
        let normalized = String(mapped).precomposedStringWithCompatibilityMapping
        guard normalized.unicodeScalars.allSatisfy({ !isProhibited($0.value) }) else { return nil }
        return normalized
    }

    /// RFC 3454 table B.1.
    static func isMappedToNothing(_ value: UInt32) -> Bool {
        switch value {
        case 0x00AD, 0x034F, 0x1806, 0x180B...0x180D, 0x200B...0x200D, 0x2060,
             0xFE00...0xFE0F, 0xFEFF:
            return true
        default:
            return false
        }
    }

    /// RFC 3454 table C.1.2. U+200B is also in B.1, which is applied first (it
    /// is removed, not turned into a space), as other implementations do.
    static func isNonASCIISpace(_ value: UInt32) -> Bool {
        switch value {
        case 0x00A0, 0x1680, 0x2000...0x200B, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// The prohibited output of RFC 4013 section 2.3.
    static func isProhibited(_ value: UInt32) -> Bool {
        if isNonASCIISpace(value) { return true }                       // C.1.2
        switch value {
        case 0x0000...0x001F, 0x007F:                                    // C.2.1
            return true
        case 0x0080...0x009F, 0x06DD, 0x070F, 0x180E, 0x200C, 0x200D,
             0x2028, 0x2029, 0x2060...0x2063, 0x206A...0x206F, 0xFEFF,
             0xFFF9...0xFFFC, 0x1D173...0x1D17A:                         // C.2.2
            return true
        case 0xE000...0xF8FF, 0xF0000...0xFFFFD, 0x100000...0x10FFFD:    // C.3
            return true
        case 0xFDD0...0xFDEF:                                            // C.4
            return true
        case 0xD800...0xDFFF:                                            // C.5
            return true
        case 0xFFFD:                                                     // C.6 (rest in C.2.2)
            return true
        case 0x2FF0...0x2FFB:                                            // C.7
            return true
        case 0x0340, 0x0341, 0x200E, 0x200F, 0x202A...0x202E:            // C.8 (206A-206F above)
            return true
        case 0xE0001, 0xE0020...0xE007F:                                 // C.9
            return true
        default:
            // C.4's other non-characters: the last two code points of every plane.
            return value & 0xFFFE == 0xFFFE
        }
    }
}
