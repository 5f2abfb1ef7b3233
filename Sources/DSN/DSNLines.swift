import PosternCore

/// The line discipline of a composed DSN: values made safe for a header or
/// delivery-status line, and lines folded to the limits of RFC 5322 2.1.1.
///
/// Much of what a DSN reports is untrusted: a remote server's reply text above
/// all, and the envelope's addresses and message ID (validated when the envelope
/// is read, but a DSN must not depend on every caller having done so). A CR or LF
/// in any of them would start a header or delivery-status field of the sender's
/// choosing (issue #12 item 7); an unbroken 5,000-octet reply would exceed the
/// 998-octet line limit and get the DSN refused or mangled on the way (item 10).
///
/// Control characters are replaced, not refused: a DSN is the sender's only news
/// that mail failed, and refusing to compose it because a server's reply carried
/// an ESC would lose that news silently. The replacement is `?`, as Postfix's
/// `printable()` does: visible, ASCII, and part of no syntax. Line breaks in a
/// reply are the exception; they are meaningful, and become folded continuation
/// lines (RFC 3464 2.1.1 allows folding in its fields as RFC 822 does).
enum DSNLines {
    /// RFC 5322 2.1.1: a line MUST be no more than 998 octets, excluding the CRLF.
    static let limit = 998
    /// RFC 5322 2.1.1: it SHOULD be no more than 78.
    static let preferred = 78

    /// `text` on one line: a tab becomes a space (it is white space in a field);
    /// any other control character (general category Cc: C0, DEL and C1)
    /// becomes `?`.
    static func clean(_ text: String) -> String {
        var result = ""
        result.unicodeScalars.append(contentsOf: text.unicodeScalars.map { scalar in
            scalar == "\t" ? " " : scalar.properties.generalCategory == .control ? "?" : scalar
        })
        return result
    }

    /// A multi-line text (a server's reply, lines joined by newlines) as its
    /// non-blank lines, each cleaned. Never empty: an empty text is one empty line.
    static func lines(of text: String) -> [String] {
        let lines = text.split(whereSeparator: \.isNewline).map { clean(String($0)) }
            .filter { !$0.allSatisfy { $0 == " " } }
        return lines.isEmpty ? [""] : lines
    }

    /// One logical line as physical lines: broken at a space so that each is at
    /// most `preferred` octets (at most `limit`) where the text allows, at the first space after that
    /// when a word is longer, and where no space comes within `limit` octets, cut
    /// there with a continuation that starts with a space (RFC 5322 2.2.3: a folded
    /// line starts with white space). Such a cut adds a space to the unfolded value:
    /// a run of 998 octets without one is not text anyone will read whole.
    /// Every continuation starts with a space and carries text, so the result
    /// unfolds to a single field however it is split.
    static func fold(_ line: String, preferred: Int = preferred) -> [String] {
        var rest = Array(line.unicodeScalars)
        var lines: [String] = []
        while octets(rest) > preferred {
            let text = rest.firstIndex { $0 != " " } ?? rest.count   // a break must leave text before it
            let soft = prefix(rest, octets: preferred), hard = prefix(rest, octets: limit)
            let space = rest[..<soft].lastIndex { $0 == " " }.flatMap { $0 > text ? $0 : nil }
                ?? rest[soft..<hard].firstIndex { $0 == " " }.flatMap { $0 > text ? $0 : nil }
            if let space {
                lines.append(string(rest[..<space]))
                rest = Array(rest[space...])
            } else if hard < rest.count {
                lines.append(string(rest[..<hard]))
                rest = [" "] + rest[hard...]
            } else {
                break   // over the preferred width but within the limit, with nowhere to break
            }
        }
        lines.append(string(rest[...]))
        return lines
    }

    private static func octets(_ scalars: some Collection<Unicode.Scalar>) -> Int {
        scalars.reduce(0) { $0 + UTF8.width($1) }
    }

    /// How many scalars of `scalars` fit in `octets` octets of UTF-8.
    private static func prefix(_ scalars: [Unicode.Scalar], octets: Int) -> Int {
        var used = 0
        for (index, scalar) in scalars.enumerated() {
            used += UTF8.width(scalar)
            if used > octets { return index }
        }
        return scalars.count
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var result = ""
        result.unicodeScalars.append(contentsOf: scalars)
        return result
    }
}
