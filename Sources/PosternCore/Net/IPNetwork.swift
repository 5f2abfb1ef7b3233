import Glibc

/// An IPv4 or IPv6 address as bytes, and a network of them (`10.0.0.0/8`,
/// `2001:db8::/32`, or one address): what `smtp.relay_networks` lists and
/// what a connecting client is matched against.
public struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 octets.
    public let address: [UInt8]
    public let prefixLength: Int

    /// Parses `ADDRESS` or `ADDRESS/LENGTH`; nil when it is neither.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPNetwork.bytes(of: String(parts[0])) else { return nil }
        let maximum = address.count * 8
        var length = maximum
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maximum).contains(parsed), parts[1].allSatisfy(\.isNumber) else { return nil }
            length = parsed
        }
        self.address = address
        prefixLength = length
    }

    public init(address: [UInt8], prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// The octets of an IPv4 or IPv6 address text.
    public static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Whether `client` (4 or 16 octets) is in this network. An IPv4-mapped
    /// IPv6 address (`::ffff:10.1.2.3`, what a dual-stack socket reports) is
    /// compared as the IPv4 address it carries.
    public func contains(_ client: [UInt8]) -> Bool {
        var client = client
        if client.count == 16, client[0..<10].allSatisfy({ $0 == 0 }), client[10] == 0xFF, client[11] == 0xFF {
            client = Array(client[12...])
        }
        guard client.count == address.count else { return false }
        var remaining = prefixLength
        for index in address.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            guard client[index] & mask == address[index] & mask else { return false }
            remaining -= bits
        }
        return true
    }

    /// 127.0.0.0/8 and ::1: the machine itself.
    public static let loopback = [IPNetwork(address: [127, 0, 0, 0], prefixLength: 8),
                                  IPNetwork(address: Array(repeating: 0, count: 15) + [1], prefixLength: 128)]

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = address.withUnsafeBytes { inet_ntop(address.count == 4 ? AF_INET : AF_INET6, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return prefixLength == address.count * 8 ? text : "\(text)/\(prefixLength)"
    }
}
