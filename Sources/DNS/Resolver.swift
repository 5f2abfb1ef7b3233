import PosternCore

/// One MX record (RFC 5321 5.1).
public struct MXRecord: Sendable, Hashable {
    public let preference: UInt16
    /// The exchange host name, lower-case, without a trailing dot; "" for a null MX (RFC 7505).
    public let host: String

    public init(preference: UInt16, host: String) {
        self.preference = preference
        self.host = host
    }
}

/// The records of one lookup, and whether a validating resolver vouched for
/// them (the DNSSEC authenticated-data bit, trusted only where configured).
public struct DNSAnswer<Record: Sendable>: Sendable {
    public let records: [Record]
    public let authentic: Bool

    public init(records: [Record], authentic: Bool) {
        self.records = records
        self.authentic = authentic
    }
}

/// Why a lookup gave no records. Kept apart because delivery decides on them
/// differently: NXDOMAIN for a recipient domain is permanent, SERVFAIL and
/// timeouts are temporary, no data means "try the implicit MX".
public enum DNSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name does not exist (RCODE 3).
    case nxdomain(name: String, authentic: Bool)
    /// The name exists but has no records of this type.
    case noData(name: String, authentic: Bool)
    /// The resolver failed (RCODE 2), or DNSSEC validation failed.
    case serverFailure(name: String)
    case timeout(name: String)
    /// Anything else: a malformed answer, a refused query, a local error.
    case other(name: String, detail: String)

    public var description: String {
        switch self {
        case .nxdomain(let name, _): "\(name): no such domain (NXDOMAIN)"
        case .noData(let name, _): "\(name): no records of that type"
        case .serverFailure(let name): "\(name): DNS server failure (SERVFAIL)"
        case .timeout(let name): "\(name): DNS lookup timed out"
        case .other(let name, let detail): "\(name): DNS error: \(detail)"
        }
    }

    /// Temporary failures are worth retrying; NXDOMAIN and no data are answers.
    public var isTemporary: Bool {
        switch self {
        case .serverFailure, .timeout, .other: true
        case .nxdomain, .noData: false
        }
    }
}

/// DNS lookups for delivery. Calls block (delivery threads only), every one
/// bounded by the resolver's timeout.
public protocol Resolver: Sendable {
    func mx(_ name: String) throws(DNSError) -> DNSAnswer<MXRecord>
    /// IPv4 addresses in dotted-quad text.
    func a(_ name: String) throws(DNSError) -> DNSAnswer<String>
    /// IPv6 addresses in RFC 5952 text.
    func aaaa(_ name: String) throws(DNSError) -> DNSAnswer<String>
    /// The target of a CNAME at `name`, lower-case, no trailing dot.
    func cname(_ name: String) throws(DNSError) -> DNSAnswer<String>
    func txt(_ name: String) throws(DNSError) -> DNSAnswer<String>
    func tlsa(_ name: String) throws(DNSError) -> DNSAnswer<TLSARecord>
}
