/// Why Postern refused an envelope address or an address-list header value.
///
/// Addresses come from command lines and from message headers written by whoever
/// submitted the mail. They end up in SMTP commands (RFC 5321 4.1.1.2, 4.1.1.3) and
/// in the spool, so a mistake here can become command injection. Each case therefore
/// says exactly what is wrong. `description` is always one line, and control
/// characters in it are escaped, so printing it to stderr injects nothing either.
public enum AddressError: Error, Equatable, CustomStringConvertible {
    /// The input was the empty string.
    case empty
    /// A control character (C0, DEL or C1) at `position`, counted in Unicode
    /// scalars from zero. RFC 5321 4.1.2 allows none, not even in a quoted string.
    case controlCharacter(address: String, position: Int, character: Unicode.Scalar)
    /// No unquoted "@" separates the local part from the domain.
    case missingAt(address: String)
    /// More than one unquoted "@".
    case extraAt(address: String)
    /// RFC 5321 4.5.3.1.1: a local part may be at most 64 octets.
    case localPartTooLong(address: String, octets: Int)
    /// The local part is neither a Dot-string nor a Quoted-string (RFC 5321 4.1.2).
    case badLocalPart(address: String, reason: LocalPartProblem)
    /// Nothing follows the "@".
    case missingDomain(address: String)
    /// RFC 5321 4.5.3.1.2: a domain may be at most 255 octets (in A-label form).
    case domainTooLong(address: String, octets: Int)
    /// One label of the domain is not valid; `label` is the label after mapping.
    case badDomainLabel(address: String, label: String, reason: LabelProblem)
    /// A bracketed address literal (RFC 5321 4.1.3) that Postern cannot use.
    case badAddressLiteral(address: String, reason: LiteralProblem)
    /// RFC 5321 4.5.3.1.3: a path is at most 256 octets including "<" and ">".
    case pathTooLong(address: String, octets: Int)
    /// An RFC 5322 3.4 address-list header value that cannot be split into mailboxes.
    case badAddressList(fieldValue: String, reason: ListProblem)

    public var description: String {
        switch self {
        case .empty:
            return "An empty address was given; a mailbox needs a local part, \"@\" and a domain."
        case let .controlCharacter(address, position, character):
            return "Address \(Self.render(address)) contains the control character "
                + "\(Self.describe(character)) at position \(position); control characters are never allowed."
        case let .missingAt(address):
            return "Address \(Self.render(address)) has no \"@\" between a local part and a domain."
        case let .extraAt(address):
            return "Address \(Self.render(address)) contains more than one \"@\" outside quotes."
        case let .localPartTooLong(address, octets):
            return "Address \(Self.render(address)) has a local part of \(octets) octets; "
                + "the limit is 64 (RFC 5321 4.5.3.1.1)."
        case let .badLocalPart(address, reason):
            return "Address \(Self.render(address)) has an invalid local part: \(reason)."
        case let .missingDomain(address):
            return "Address \(Self.render(address)) has no domain after the \"@\"."
        case let .domainTooLong(address, octets):
            return "Address \(Self.render(address)) has a domain of \(octets) octets; "
                + "the limit is 255 (RFC 5321 4.5.3.1.2)."
        case let .badDomainLabel(address, label, reason):
            return "Address \(Self.render(address)) has an invalid domain label "
                + "\(Self.render(label)): \(reason)."
        case let .badAddressLiteral(address, reason):
            return "Address \(Self.render(address)) has an invalid address literal: \(reason)."
        case let .pathTooLong(address, octets):
            return "Address \(Self.render(address)) is \(octets) octets long; "
                + "the limit for a path is 254 plus the angle brackets (RFC 5321 4.5.3.1.3)."
        case let .badAddressList(fieldValue, reason):
            return "The address list \(Self.render(fieldValue)) cannot be parsed: \(reason)."
        }
    }

    /// What is wrong with a local part (RFC 5321 4.1.2, RFC 6531 3.3).
    public enum LocalPartProblem: Sendable, Equatable, CustomStringConvertible {
        case empty
        case leadingDot
        case trailingDot
        case consecutiveDots
        /// A character outside atext (unquoted) or qtextSMTP (quoted).
        case invalidCharacter(Unicode.Scalar)
        /// quoted-pairSMTP allows only %d32-126 after the backslash.
        case invalidQuotedPair(Unicode.Scalar)
        case unterminatedQuotedString
        /// A Quoted-string must be the whole local part, e.g. not `"a"b@x`.
        case textAfterQuotedString

        public var description: String {
            switch self {
            case .empty: return "it is empty"
            case .leadingDot: return "it starts with a dot"
            case .trailingDot: return "it ends with a dot"
            case .consecutiveDots: return "it contains two dots in a row"
            case let .invalidCharacter(c):
                return "the character \(AddressError.describe(c)) is not allowed here (quote the local part if it is really meant)"
            case let .invalidQuotedPair(c):
                return "a backslash may only escape printable ASCII, not \(AddressError.describe(c))"
            case .unterminatedQuotedString: return "the opening quote is never closed"
            case .textAfterQuotedString: return "text follows the closing quote before the \"@\""
            }
        }
    }

    /// What is wrong with one domain label (RFC 1035 2.3.1, RFC 5890, RFC 5891).
    public enum LabelProblem: Sendable, Equatable, CustomStringConvertible {
        /// Two dots in a row, or a leading dot.
        case empty
        /// RFC 5321 domains are written without the root's trailing dot.
        case trailingDot
        /// RFC 1035 2.3.4: a label is at most 63 octets.
        case tooLong(octets: Int)
        case leadingHyphen
        case trailingHyphen
        /// RFC 5891 4.2.3.1: a U-label must not have "--" in positions 3 and 4.
        case hyphensInThirdAndFourthPositions
        /// RFC 5891 4.2.3.2: a U-label must not begin with a combining mark.
        case leadingCombiningMark
        /// Not a letter, digit or hyphen (or, in a U-label, not a letter, mark or digit).
        case invalidCharacter(Unicode.Scalar)
        /// A code point the UTS #46 IdnaMappingTable marks "disallowed" (section 4.1,
        /// criterion 6), e.g. unassigned, private-use and control code points, and
        /// some punctuation and symbols such as U+2024 ONE DOT LEADER. (Other
        /// symbols, valid in UTS #46, are refused as `invalidCharacter`.)
        case disallowedCharacter(Unicode.Scalar)
        /// An "xn--" label that is not a valid A-label; the string says why.
        case invalidPunycode(String)

        public var description: String {
            switch self {
            case .empty: return "it is empty (two dots in a row, or a leading dot)"
            case .trailingDot: return "the domain ends with a dot, which SMTP does not allow"
            case let .tooLong(octets): return "it is \(octets) octets long; a label is at most 63 (RFC 1035 2.3.4)"
            case .leadingHyphen: return "it starts with a hyphen"
            case .trailingHyphen: return "it ends with a hyphen"
            case .hyphensInThirdAndFourthPositions:
                return "an internationalized label must not have \"--\" in positions 3 and 4 (RFC 5891 4.2.3.1)"
            case .leadingCombiningMark: return "it starts with a combining mark (RFC 5891 4.2.3.2)"
            case let .invalidCharacter(c):
                return "the character \(AddressError.describe(c)) is not allowed in a domain name"
            case let .disallowedCharacter(c):
                return "the character \(AddressError.describe(c)) is disallowed in domain names (UTS #46 IDNA mapping table)"
            case let .invalidPunycode(why): return "it is not a valid A-label: \(why)"
            }
        }
    }

    /// What is wrong with a bracketed address literal (RFC 5321 4.1.3).
    public enum LiteralProblem: Sendable, Equatable, CustomStringConvertible {
        case unterminated
        case empty
        /// Not a strict dotted quad: four decimal numbers 0-255 without leading zeros.
        case invalidIPv4(String)
        /// inet_pton(AF_INET6) refused the text after "IPv6:".
        case invalidIPv6(String)
        /// A General-address-literal with a tag other than "IPv6".
        case unsupportedTag(String)

        public var description: String {
            switch self {
            case .unterminated: return "it does not end with \"]\""
            case .empty: return "the brackets are empty"
            case let .invalidIPv4(text):
                return "\(AddressError.render(text)) is not a dotted-quad IPv4 address (four numbers 0-255, no leading zeros)"
            case let .invalidIPv6(text): return "\(AddressError.render(text)) is not a valid IPv6 address"
            case let .unsupportedTag(tag):
                return "the address literal tag \(AddressError.render(tag)) is not supported; only IPv4 and \"IPv6:\" literals are"
            }
        }
    }

    /// What is wrong with an RFC 5322 3.4 address-list.
    public enum ListProblem: Sendable, Equatable, CustomStringConvertible {
        case unterminatedQuotedString
        case unterminatedComment
        case unmatchedClosingParenthesis
        case unterminatedDomainLiteral
        case unmatchedClosingBracket
        case unterminatedAngleAddress
        case unmatchedClosingAngleBracket
        case emptyAngleAddress
        /// An obsolete route (RFC 5322 4.4) without its terminating ":".
        case badRoute
        /// A token that cannot appear between "<" and ">".
        case unexpectedInAngleAddress(String)
        /// A group ("name:") without its closing ";".
        case unterminatedGroup
        /// RFC 5322 3.4: groups do not nest.
        case nestedGroup
        case unexpectedSemicolon
        /// Something other than "," follows a complete address.
        case unexpectedText(String)
        /// Several words without "<...>": a display name with no address.
        case missingAngleBrackets(String)

        public var description: String {
            switch self {
            case .unterminatedQuotedString: return "a quoted string is never closed"
            case .unterminatedComment: return "a comment \"(\" is never closed"
            case .unmatchedClosingParenthesis: return "a \")\" has no matching \"(\""
            case .unterminatedDomainLiteral: return "a domain literal \"[\" is never closed"
            case .unmatchedClosingBracket: return "a \"]\" has no matching \"[\""
            case .unterminatedAngleAddress: return "a \"<\" is never closed by \">\""
            case .unmatchedClosingAngleBracket: return "a \">\" has no matching \"<\""
            case .emptyAngleAddress: return "\"<>\" contains no address"
            case .badRoute: return "an obsolete source route is not terminated by \":\""
            case let .unexpectedInAngleAddress(text):
                return "\(AddressError.render(text)) cannot appear inside \"<...>\""
            case .unterminatedGroup: return "a group is never closed by \";\""
            case .nestedGroup: return "a group cannot contain another group"
            case .unexpectedSemicolon: return "a \";\" appears outside a group"
            case let .unexpectedText(text):
                return "\(AddressError.render(text)) follows an address without a separating \",\""
            case let .missingAngleBrackets(text):
                return "\(AddressError.render(text)) looks like a display name without an address in \"<...>\""
            }
        }
    }
}

extension AddressError {
    /// Longest stretch of untrusted text quoted in a message, in Unicode scalars.
    static let renderLimit = 200

    /// Quotes untrusted text for a one-line message: backslash, double quote and
    /// every invisible or line-breaking scalar are escaped, long text is cut.
    static func render(_ text: String) -> String {
        var out = "\""
        for (count, scalar) in text.unicodeScalars.enumerated() {
            if count == renderLimit { return out + "\"… (cut)" }
            out += escape(scalar)
        }
        return out + "\""
    }

    /// A single scalar for a message, e.g. `"\r" (U+000D)`.
    static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "\"\(escape(scalar))\" (U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex))"
    }

    static func escape(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\\": return "\\\\"
        case "\"": return "\\\""
        case "\r": return "\\r"
        case "\n": return "\\n"
        case "\t": return "\\t"
        case "\0": return "\\0"
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                return "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default:
                return String(scalar)
            }
        }
    }
}
