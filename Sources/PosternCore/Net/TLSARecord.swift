/// A DNS TLSA record (RFC 6698 2.1): which certificate or key a TLS server must
/// present. A plain value, so that DNS code can produce it and TLS code consume it
/// without knowing each other.
public struct TLSARecord: Sendable, Hashable, CustomStringConvertible {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218 names).
    public let usage: UInt8
    /// 0 full certificate, 1 SubjectPublicKeyInfo.
    public let selector: UInt8
    /// 0 exact match, 1 SHA-256, 2 SHA-512.
    public let matchingType: UInt8
    public let data: [UInt8]

    public init(usage: UInt8, selector: UInt8, matchingType: UInt8, data: [UInt8]) {
        self.usage = usage
        self.selector = selector
        self.matchingType = matchingType
        self.data = data
    }

    /// The presentation form: `3 1 1 ab12…`.
    public var description: String {
        "\(usage) \(selector) \(matchingType) " + data.map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
