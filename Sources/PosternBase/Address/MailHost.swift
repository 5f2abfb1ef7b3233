#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The part of a mailbox after the "@": a domain name or an address literal.
///
/// RFC 5321 4.1.2 allows `Domain / address-literal`. Of the literals in RFC 5321
/// 4.1.3, only IPv4 and "IPv6:" literals can be routed, so other
/// General-address-literals are refused rather than spooled and never delivered.
public enum MailHost: Sendable, Hashable {
    /// A domain name: `aLabel` is the lower-case A-label form used on the wire and
    /// in the spool; `unicode` is the U-label form when any label is
    /// internationalized, otherwise nil.
    case domain(aLabel: String, unicode: String?)
    /// A dotted-quad IPv4 literal, without brackets, e.g. "192.0.2.1".
    case ipv4(String)
    /// An IPv6 literal without brackets and without the "IPv6:" tag, in lower case,
    /// e.g. "2001:db8::1".
    case ipv6(String)

    /// The host as written in SMTP commands: A-label domain, "[192.0.2.1]" or
    /// "[IPv6:2001:db8::1]".
    public var smtpForm: String {
        switch self {
        case let .domain(aLabel, _): return aLabel
        case let .ipv4(address): return "[" + address + "]"
        case let .ipv6(address): return "[IPv6:" + address + "]"
        }
    }

    /// What to look up or connect to: the A-label domain or the bare IP address.
    public var routingDomain: String {
        switch self {
        case let .domain(aLabel, _): return aLabel
        case let .ipv4(address), let .ipv6(address): return address
        }
    }
}

extension MailHost {
    /// Parses an address literal, brackets included (RFC 5321 4.1.3).
    static func parseLiteral(_ text: String, address: String) throws(AddressError) -> MailHost {
        func fail(_ reason: AddressError.LiteralProblem) -> AddressError {
            .badAddressLiteral(address: address, reason: reason)
        }
        let scalars = text.unicodeScalars
        guard scalars.count >= 2, scalars.first == "[", scalars.last == "]" else { throw fail(.unterminated) }
        let inner = String(scalars.dropFirst().dropLast())
        guard !inner.isEmpty else { throw fail(.empty) }

        guard let colon = inner.firstIndex(of: ":") else {
            guard isDottedQuad(inner) else { throw fail(.invalidIPv4(inner)) }
            return .ipv4(inner)
        }
        // RFC 5321 4.1.3: IPv6-address-literal = "IPv6:" IPv6-addr (tag case-insensitive, RFC 5234 2.3)
        let tag = String(inner[..<colon])
        guard tag.lowercased() == "ipv6" else { throw fail(.unsupportedTag(tag)) }
        let address = String(inner[inner.index(after: colon)...])
        guard isIPv6(address) else { throw fail(.invalidIPv6(address)) }
        return .ipv6(address.lowercased())
    }

    /// RFC 5321 4.1.3 IPv4-address-literal, strictly: four decimal numbers 0-255,
    /// no leading zeros (which some resolvers read as octal), nothing else.
    static func isDottedQuad(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            let digits = Array(part.utf8)
            guard (1...3).contains(digits.count), digits.allSatisfy({ (0x30...0x39).contains($0) }) else {
                return false
            }
            guard digits.count == 1 || digits[0] != 0x30 else { return false }
            return Int(part).map { $0 <= 255 } ?? false
        }
    }

    /// RFC 5321 4.1.3 IPv6-addr, checked with the C library's inet_pton, which
    /// accepts exactly the full, compressed and IPv4-suffixed forms (no zone index).
    static func isIPv6(_ text: String) -> Bool {
        guard !text.isEmpty, text.unicodeScalars.allSatisfy(\.isASCII) else { return false }
        var storage = in6_addr()
        return text.withCString { inet_pton(AF_INET6, $0, &storage) } == 1
    }
}
