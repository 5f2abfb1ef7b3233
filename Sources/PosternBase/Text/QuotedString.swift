/// Text in double quotes with `"`, `\` and control characters escaped.
///
/// One form serves three writers: it is a JSON string (RFC 8259 section 7),
/// a TOML basic string (TOML 1.0, "String"), and the quoted value of a logfmt
/// field, so an envelope, a rendered configuration and a log line escape the
/// same way, and none of them can be split by a newline in the text.
///
/// DEL and the C1 controls (U+0080 to U+009F) are escaped too, as `\u007F`
/// and `\u009B`, though all three formats allow them raw: such a document is
/// printed to terminals (`postern list --json`, a log followed with `tail`),
/// and a raw U+009B is a CSI to some of them (issue #12 item 9).
public enum QuotedString {
    public static func quoted(_ text: String) -> String {
        // Most text (addresses, IDs, replies) needs no escape: one pass over
        // the bytes and a copy, instead of building the result per character.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            return "\"" + text + "\""
        }
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case _ where TerminalText.isControl(scalar):
                let hex = String(scalar.value, radix: 16, uppercase: true)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
