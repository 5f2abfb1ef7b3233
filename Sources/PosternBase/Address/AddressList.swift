/// Extracts the addr-specs from an RFC 5322 address-list header field value, the
/// way `sendmail -t` needs it to find recipients in To, Cc and Bcc.
///
/// RFC 5322 3.4 lets a header name its recipients in many shapes: bare addr-specs,
/// `Display Name <addr>`, groups (`Team: a@x, b@y;`), comments anywhere (3.2.2),
/// and the obsolete forms of 4.4 (source routes, empty list elements). Commas only
/// separate addresses at the top level, never inside quotes, comments, brackets or
/// a route. Each addr-spec is returned as text, comments and folding white space
/// removed, ready for `MailboxAddress(parsing:)`, which does the real validation.
/// Display names are dropped: envelope recipients have none.
public enum AddressList {
    /// Returns the addr-spec of every mailbox in `fieldValue` (unfolded text), in
    /// order. Empty groups and empty list elements contribute nothing.
    public static func addresses(in fieldValue: String) throws(AddressError) -> [String] {
        let tokens = try tokenize(fieldValue)
        var parser = Parser(tokens: tokens, fieldValue: fieldValue)
        return try parser.addresses(inGroup: false)
    }

    /// A lexical unit of RFC 5322 3.2: comments and white space are already gone.
    enum Token: Equatable {
        /// An atom, a quoted-string or a domain literal, exactly as written.
        case word(String)
        /// One of the specials that structure an address list.
        case special(Unicode.Scalar)

        var text: String {
            switch self {
            case let .word(text): return text
            case let .special(scalar): return String(scalar)
            }
        }

        var isWord: Bool {
            if case .word = self { return true }
            return false
        }

        /// Tokens that may appear in an addr-spec or a phrase.
        var isAddressPart: Bool { isWord || self == .special(".") || self == .special("@") }
    }

    /// Splits the field value into words and specials (RFC 5322 3.2.2-3.2.5).
    /// CR and LF count as white space, so folded values are tolerated too.
    static func tokenize(_ fieldValue: String) throws(AddressError) -> [Token] {
        func fail(_ reason: AddressError.ListProblem) -> AddressError {
            .badAddressList(fieldValue: fieldValue, reason: reason)
        }
        let scalars = Array(fieldValue.unicodeScalars)
        var tokens: [Token] = []
        var atom = String.UnicodeScalarView()
        func flush() {
            if !atom.isEmpty { tokens.append(.word(String(atom))) }
            atom = String.UnicodeScalarView()
        }

        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case " ", "\t", "\r", "\n":
                flush()
                index += 1
            case "(":
                flush()
                guard let end = closingIndex(scalars, from: index, open: "(", close: ")", nests: true) else {
                    throw fail(.unterminatedComment)
                }
                index = end + 1
            case "\"":
                flush()
                guard let end = closingIndex(scalars, from: index, open: nil, close: "\"", nests: false) else {
                    throw fail(.unterminatedQuotedString)
                }
                tokens.append(.word(String(String.UnicodeScalarView(scalars[index...end]))))
                index = end + 1
            case "[":
                flush()
                guard let end = closingIndex(scalars, from: index, open: nil, close: "]", nests: false) else {
                    throw fail(.unterminatedDomainLiteral)
                }
                tokens.append(.word(String(String.UnicodeScalarView(scalars[index...end]))))
                index = end + 1
            case ")": throw fail(.unmatchedClosingParenthesis)
            case "]": throw fail(.unmatchedClosingBracket)
            case "<", ">", ",", ":", ";", "@", ".":
                flush()
                tokens.append(.special(scalar))
                index += 1
            default:
                atom.append(scalar)
                index += 1
            }
        }
        flush()
        return tokens
    }

    /// Index of the scalar closing the construct opened at `start`, honouring
    /// quoted-pairs (RFC 5322 3.2.1) and, for comments, nesting (3.2.2).
    static func closingIndex(_ scalars: [Unicode.Scalar], from start: Int, open: Unicode.Scalar?,
                             close: Unicode.Scalar, nests: Bool) -> Int? {
        var depth = 1
        var index = start + 1
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "\\" {
                index += 2
                continue
            }
            if nests, scalar == open {
                depth += 1
            } else if scalar == close {
                depth -= 1
                if depth == 0 { return index }
            }
            index += 1
        }
        return nil
    }

    /// Recursive-descent parser over the tokens for RFC 5322 3.4 and 4.4.
    struct Parser {
        let tokens: [Token]
        let fieldValue: String
        var index = 0

        init(tokens: [Token], fieldValue: String) {
            self.tokens = tokens
            self.fieldValue = fieldValue
        }

        var next: Token? { index < tokens.count ? tokens[index] : nil }

        func fail(_ reason: AddressError.ListProblem) -> AddressError {
            .badAddressList(fieldValue: fieldValue, reason: reason)
        }

        /// address-list, or inside a group its group-list up to and including ";".
        mutating func addresses(inGroup: Bool) throws(AddressError) -> [String] {
            var found: [String] = []
            while let token = next {
                if token == .special(",") {  // RFC 5322 4.4: empty list elements
                    index += 1
                    continue
                }
                if token == .special(";") {
                    guard inGroup else { throw fail(.unexpectedSemicolon) }
                    index += 1
                    return found
                }
                let phraseStart = index
                while let part = next, part.isAddressPart { index += 1 }
                let phrase = tokens[phraseStart..<index]

                switch next {
                case .special(":")?:  // group = display-name ":" [group-list] ";"
                    guard !inGroup else { throw fail(.nestedGroup) }
                    index += 1
                    found += try addresses(inGroup: true)
                case .special("<")?:  // name-addr = [display-name] angle-addr
                    index += 1
                    found.append(try angleAddress())
                case .special(">")?:
                    throw fail(.unmatchedClosingAngleBracket)
                default:  // a bare addr-spec, ended by ",", ";" or the end
                    found.append(try addrSpec(phrase))
                }
                if let after = next, after != .special(","), after != .special(";") {
                    throw fail(.unexpectedText(after.text))
                }
            }
            guard !inGroup else { throw fail(.unterminatedGroup) }
            return found
        }

        /// The inside of "<...>", "<" already consumed; strips an obsolete route
        /// (RFC 5322 4.4 obs-route: "@" domain *("," ["@" domain]) ":").
        mutating func angleAddress() throws(AddressError) -> String {
            if next == .special("@") {
                while let token = next, token != .special(":") {
                    guard token.isAddressPart || token == .special(",") else { throw fail(.badRoute) }
                    index += 1
                }
                guard next != nil else { throw fail(.unterminatedAngleAddress) }
                index += 1
            }
            let start = index
            while true {
                guard let token = next else { throw fail(.unterminatedAngleAddress) }
                if token == .special(">") { break }
                guard token.isAddressPart else { throw fail(.unexpectedInAngleAddress(token.text)) }
                index += 1
            }
            let spec = tokens[start..<index]
            index += 1
            guard !spec.isEmpty else { throw fail(.emptyAngleAddress) }
            return try addrSpec(spec)
        }

        /// Joins the tokens of an addr-spec, which is where the removed comments
        /// and white space disappear (RFC 5322 4.4 allows CFWS around "." and "@").
        /// Two words in a row cannot be an addr-spec: that is a display name.
        func addrSpec(_ parts: ArraySlice<Token>) throws(AddressError) -> String {
            for (left, right) in zip(parts, parts.dropFirst()) where left.isWord && right.isWord {
                throw fail(.missingAngleBrackets(parts.map(\.text).joined(separator: " ")))
            }
            return parts.map(\.text).joined()
        }
    }
}
