/// An envelope mailbox: the `Mailbox` of RFC 5321 4.1.2 as used in MAIL FROM and
/// RCPT TO, extended by RFC 6531 (SMTPUTF8) to allow UTF-8 in the local part and
/// U-labels in the domain.
///
/// Every address Postern writes into the spool or into an SMTP command passes
/// through `init(parsing:)`. Validation is strict on purpose: CR, LF and every other
/// control character are refused anywhere (RFC 5321 4.1.2 has no place for them,
/// not even in a Quoted-string), which makes SMTP command injection through an
/// address impossible. The domain is stored in A-label form (RFC 5890) so the
/// spool and the wire never depend on whether the server offers SMTPUTF8; only a
/// non-ASCII local part does (`requiresSMTPUTF8`).
public struct MailboxAddress: Sendable, Hashable, CustomStringConvertible {
    // RFC 5321 4.5.3.1.1: local part at most 64 octets.
    static let maxLocalPartOctets = 64
    // RFC 5321 4.5.3.1.3: path at most 256 octets, including "<" and ">".
    static let maxPathOctets = 254
    /// Inputs longer than this are refused as over-long paths before any other
    /// work, which bounds the cost of parsing hostile input.
    static let maxInputOctets = 1024

    /// The local part as written: a Dot-string, or a Quoted-string including its
    /// quotes and backslashes. Case is preserved (RFC 5321 2.4: local parts are
    /// case-sensitive).
    public let localPart: String
    /// The domain (A-label, lower-case) or address literal.
    public let host: MailHost

    /// Parses and validates `text`, a mailbox without angle brackets.
    public init(parsing text: String) throws(AddressError) {
        guard !text.isEmpty else { throw .empty }
        let inputOctets = text.utf8.count
        guard inputOctets <= Self.maxInputOctets else {
            throw .pathTooLong(address: text, octets: inputOctets)
        }
        let scalars = Array(text.unicodeScalars)
        if let position = scalars.firstIndex(where: Self.isControl) {
            throw .controlCharacter(address: text, position: position, character: scalars[position])
        }

        let at = try Self.atIndex(in: scalars, address: text)
        let local = scalars[..<at]
        let domain = scalars[(at + 1)...]
        guard !domain.contains("@") else { throw .extraAt(address: text) }
        if local.first != "\"" {
            try Self.checkDotString(local, address: text)
        }
        let localPart = String(String.UnicodeScalarView(local))
        let localOctets = localPart.utf8.count
        guard localOctets <= Self.maxLocalPartOctets else {
            throw .localPartTooLong(address: text, octets: localOctets)
        }

        guard !domain.isEmpty else { throw .missingDomain(address: text) }
        let domainText = String(String.UnicodeScalarView(domain))
        if domain.first == "[" {
            host = try MailHost.parseLiteral(domainText, address: text)
        } else {
            let converted = try IDNA.convert(domainText, address: text)
            host = .domain(aLabel: converted.ascii, unicode: converted.unicode)
        }
        self.localPart = localPart

        let pathOctets = smtpForm.utf8.count
        guard pathOctets <= Self.maxPathOctets else {
            throw .pathTooLong(address: text, octets: pathOctets)
        }
    }

    /// The form to put in SMTP commands and in the spool: localPart "@" (A-label
    /// domain | address literal).
    public var smtpForm: String { localPart + "@" + host.smtpForm }

    public var description: String { smtpForm }

    /// True when the local part contains non-ASCII (RFC 6531: only deliverable
    /// with SMTPUTF8). The domain never needs it: it is kept as A-labels.
    public var requiresSMTPUTF8: Bool {
        localPart.unicodeScalars.contains { !$0.isASCII }
    }

    /// The domain part used for routing (A-label, lower-case) or the literal's
    /// address without brackets (and without the "IPv6:" tag).
    public var routingDomain: String { host.routingDomain }
}

extension MailboxAddress {
    /// C0 controls, DEL, and also the C1 controls U+0080-U+009F (which RFC 6531's
    /// UTF-8 would otherwise let in, and some software treats as line breaks).
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
    }

    /// RFC 5322 3.2.3 atext, plus RFC 6531 3.3 UTF8-non-ascii.
    static func isAtext(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9": return true
        case "!", "#", "$", "%", "&", "'", "*", "+", "-", "/", "=", "?", "^", "_", "`", "{", "|", "}", "~":
            return true
        default: return !scalar.isASCII
        }
    }

    /// RFC 5321 4.1.2 qtextSMTP (%d32-33 / %d35-91 / %d93-126), plus RFC 6531 UTF-8.
    static func isQtext(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 32...33, 35...91, 93...126: return true
        default: return !scalar.isASCII
        }
    }

    /// Finds the "@" between local part and domain. A Quoted-string local part is
    /// validated on the way, since only its closing quote tells where it ends.
    static func atIndex(in scalars: [Unicode.Scalar], address: String) throws(AddressError) -> Int {
        guard scalars.first == "\"" else {
            guard let at = scalars.firstIndex(of: "@") else { throw .missingAt(address: address) }
            return at
        }
        var index = 1
        while true {
            guard index < scalars.count else {
                throw .badLocalPart(address: address, reason: .unterminatedQuotedString)
            }
            let scalar = scalars[index]
            if scalar == "\"" { break }
            if scalar == "\\" {
                // RFC 5321 4.1.2: quoted-pairSMTP = %d92 %d32-126
                guard index + 1 < scalars.count else {
                    throw .badLocalPart(address: address, reason: .unterminatedQuotedString)
                }
                let escaped = scalars[index + 1]
                guard (32...126).contains(escaped.value) else {
                    throw .badLocalPart(address: address, reason: .invalidQuotedPair(escaped))
                }
                index += 2
                continue
            }
            guard isQtext(scalar) else {
                throw .badLocalPart(address: address, reason: .invalidCharacter(scalar))
            }
            index += 1
        }
        let after = index + 1
        guard after < scalars.count else { throw .missingAt(address: address) }
        guard scalars[after] == "@" else {
            throw .badLocalPart(address: address, reason: .textAfterQuotedString)
        }
        return after
    }

    /// RFC 5321 4.1.2: Dot-string = Atom *("." Atom), Atom = 1*atext.
    static func checkDotString(_ local: ArraySlice<Unicode.Scalar>, address: String) throws(AddressError) {
        func fail(_ reason: AddressError.LocalPartProblem) -> AddressError {
            .badLocalPart(address: address, reason: reason)
        }
        guard let first = local.first, let last = local.last else { throw fail(.empty) }
        guard first != "." else { throw fail(.leadingDot) }
        var previous: Unicode.Scalar = first
        for scalar in local {
            if scalar == "." {
                guard previous != "." else { throw fail(.consecutiveDots) }
            } else {
                guard isAtext(scalar) else { throw fail(.invalidCharacter(scalar)) }
            }
            previous = scalar
        }
        guard last != "." else { throw fail(.trailingDot) }
    }
}

extension MailboxAddress {
    /// Parses `text` as `init(parsing:)` does, but completes a bare local part
    /// (no `@` outside quotes: `root`, `"john doe"`) with `@domain` first, as
    /// Postfix appends `$myorigin` and sendmail its host name to unqualified
    /// addresses on the command line.
    ///
    /// RFC 5321 4.1.1.3 lets only `Postmaster` go without a domain in RCPT TO,
    /// and the envelope Postern writes must hold full mailboxes (RFC 5321
    /// 4.1.2), so a local name is qualified here, where it enters, and
    /// validated like any other address: a local part that would be refused
    /// with a domain is refused without one. Nothing else is completed: an
    /// address with an `@` but no domain is still an error.
    public init(parsing text: String, completingWith domain: String) throws(AddressError) {
        do {
            try self.init(parsing: text)
        } catch {
            guard case .missingAt = error else { throw error }
            try self.init(parsing: text + "@" + domain)
        }
    }
}
