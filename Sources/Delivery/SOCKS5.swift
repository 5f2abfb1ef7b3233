import Glibc

/// The SOCKS version 5 protocol (RFC 1928) and its username/password
/// sub-negotiation (RFC 1929) as bytes: what a client sends, and how it reads
/// the proxy's answers. There is no I/O here, so every octet can be tested
/// without sockets; `SOCKS5Dialer` does the reading and writing.
///
/// Only what a mail client needs is here: the CONNECT command (not BIND or UDP
/// ASSOCIATE), to an IP address. Postern resolves MX hosts itself (and chooses
/// among their addresses), so it must reach the address it chose; it never
/// hands the proxy a name to resolve its own way (ATYP 0x03 is only read, in
/// replies).
enum SOCKS5 {
    /// VER in every SOCKS5 message (RFC 1928 sections 3, 4 and 6).
    static let version: UInt8 = 0x05
    /// Authentication methods (RFC 1928 section 3).
    static let noAuthentication: UInt8 = 0x00
    static let usernamePassword: UInt8 = 0x02
    static let noAcceptableMethods: UInt8 = 0xFF
    /// VER of the username/password sub-negotiation (RFC 1929 section 2): not 5.
    static let authenticationVersion: UInt8 = 0x01
    /// CMD CONNECT (RFC 1928 section 4).
    static let connectCommand: UInt8 = 0x01
    /// The longest reply (RFC 1928 section 6): VER REP RSV ATYP, a domain name
    /// of 255 octets after its length octet, and the port.
    static let longestReply = 4 + 1 + 255 + 2

    /// ATYP (RFC 1928 section 5).
    enum AddressType: UInt8 {
        case ipv4 = 0x01
        case domain = 0x03
        case ipv6 = 0x04
    }

    /// What went wrong in the conversation with the proxy, in words for logs
    /// and DSNs, with the errno that best says the same to programs.
    enum Failure: Error, Equatable, CustomStringConvertible {
        /// A reply whose VER is not what the step expects: not a SOCKS5 proxy.
        case wrongVersion(UInt8, expected: UInt8, in: String)
        /// METHOD 0xFF: the proxy accepts none of the methods offered.
        case noAcceptableMethods
        /// A method the client did not offer; continuing would mean guessing.
        case unofferedMethod(UInt8)
        /// RFC 1929 STATUS other than 0.
        case authenticationRejected(status: UInt8)
        /// REP other than 0 (RFC 1928 section 6).
        case rejected(reply: UInt8)
        /// An ATYP that is none of 1, 3 and 4.
        case unknownAddressType(UInt8)
        /// Fewer octets than the message needs.
        case truncated(String)
        /// More octets than the message can have.
        case trailingBytes(String)
        /// The destination is not an IP address (a bug in the caller: names are resolved locally).
        case notAnIPAddress(String)
        /// A username or password that RFC 1929 cannot carry.
        case credentialLength(field: String, length: Int)

        var description: String {
            switch self {
            case .wrongVersion(let got, let expected, let step): "\(step) has version \(got), expected \(expected): not a SOCKS5 proxy?"
            case .noAcceptableMethods: "accepts none of the offered authentication methods (METHOD 0xFF)"
            case .unofferedMethod(let method): "chose authentication method \(SOCKS5.hex(method)), which was not offered"
            case .authenticationRejected(let status): "rejected the username and password (RFC 1929 STATUS \(status))"
            case .rejected(let reply): "\(SOCKS5.replyText(reply)) (REP \(reply))"
            case .unknownAddressType(let type): "reply has unknown address type \(SOCKS5.hex(type))"
            case .truncated(let step): "\(step) is truncated"
            case .trailingBytes(let step): "\(step) is longer than its address type allows"
            case .notAnIPAddress(let text): "\(text) is not an IP address"
            case .credentialLength(let field, let length): "the \(field) must be 1 to 255 octets (RFC 1929), not \(length)"
            }
        }

        /// The closest errno, so that callers who classify by code see the right thing.
        var code: Int32 {
            switch self {
            case .rejected(let reply):
                switch reply {
                case 0x02: EACCES
                case 0x03: ENETUNREACH
                case 0x04: EHOSTUNREACH
                case 0x05: ECONNREFUSED
                case 0x06: ETIMEDOUT
                case 0x07: EOPNOTSUPP
                case 0x08: EAFNOSUPPORT
                default: EIO
                }
            case .noAcceptableMethods, .authenticationRejected: EACCES
            case .notAnIPAddress, .credentialLength: EINVAL
            default: EPROTO
            }
        }
    }

    /// The reply field's meaning (RFC 1928 section 6).
    static func replyText(_ reply: UInt8) -> String {
        switch reply {
        case 0x00: "succeeded"
        case 0x01: "general SOCKS server failure"
        case 0x02: "connection not allowed by ruleset"
        case 0x03: "network unreachable"
        case 0x04: "host unreachable"
        case 0x05: "connection refused by destination"
        case 0x06: "TTL expired"
        case 0x07: "command not supported"
        case 0x08: "address type not supported"
        default: "unassigned reply code \(hex(reply))"
        }
    }

    static func hex(_ octet: UInt8) -> String {
        "0x" + (octet < 16 ? "0" : "") + String(octet, radix: 16, uppercase: true)
    }

    // MARK: Method negotiation (RFC 1928 section 3, RFC 1929 section 2)

    /// The methods to offer: no authentication always, username/password when
    /// there are credentials (the proxy decides which it wants).
    static func methods(withPassword: Bool) -> [UInt8] {
        withPassword ? [noAuthentication, usernamePassword] : [noAuthentication]
    }

    /// VER, NMETHODS, METHODS.
    static func greeting(methods: [UInt8]) -> [UInt8] {
        [version, UInt8(methods.count)] + methods
    }

    /// The proxy's choice from VER, METHOD; only an offered method is acceptable.
    static func parseMethodSelection(_ bytes: [UInt8], offered: [UInt8]) throws(Failure) -> UInt8 {
        let step = "method selection"
        guard bytes.count >= 2 else { throw .truncated(step) }
        guard bytes.count == 2 else { throw .trailingBytes(step) }
        guard bytes[0] == version else { throw .wrongVersion(bytes[0], expected: version, in: step) }
        guard bytes[1] != noAcceptableMethods else { throw .noAcceptableMethods }
        guard offered.contains(bytes[1]) else { throw .unofferedMethod(bytes[1]) }
        return bytes[1]
    }

    /// Checks that `value` fits RFC 1929's one-octet length field and is not empty.
    static func validate(_ value: String, field: String) throws(Failure) {
        let length = value.utf8.count
        guard (1...255).contains(length) else { throw .credentialLength(field: field, length: length) }
    }

    /// VER (1), ULEN, UNAME, PLEN, PASSWD (RFC 1929 section 2).
    static func authenticationRequest(username: String, password: String) throws(Failure) -> [UInt8] {
        try validate(username, field: "username")
        try validate(password, field: "password")
        return [authenticationVersion, UInt8(username.utf8.count)] + Array(username.utf8)
            + [UInt8(password.utf8.count)] + Array(password.utf8)
    }

    /// VER (1), STATUS: 0 is success, anything else a refusal.
    static func parseAuthenticationReply(_ bytes: [UInt8]) throws(Failure) {
        let step = "authentication reply"
        guard bytes.count >= 2 else { throw .truncated(step) }
        guard bytes.count == 2 else { throw .trailingBytes(step) }
        guard bytes[0] == authenticationVersion else { throw .wrongVersion(bytes[0], expected: authenticationVersion, in: step) }
        guard bytes[1] == 0 else { throw .authenticationRejected(status: bytes[1]) }
    }

    // MARK: CONNECT (RFC 1928 sections 4, 5 and 6)

    /// An IP address as ATYP and octets in network order, or nil for anything else.
    static func address(_ ip: String) -> (AddressType, [UInt8])? {
        var v4 = in_addr()
        if inet_pton(AF_INET, ip, &v4) == 1 { return (.ipv4, withUnsafeBytes(of: &v4) { Array($0) }) }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, ip, &v6) == 1 { return (.ipv6, withUnsafeBytes(of: &v6) { Array($0) }) }
        return nil
    }

    /// VER, CMD (CONNECT), RSV, ATYP, DST.ADDR, DST.PORT for an IPv4 or IPv6 address.
    static func connectRequest(ip: String, port: UInt16) throws(Failure) -> [UInt8] {
        guard let (type, octets) = address(ip) else { throw .notAnIPAddress(ip) }
        return [version, connectCommand, 0x00, type.rawValue] + octets + [UInt8(port >> 8), UInt8(port & 0xFF)]
    }

    /// How long the reply is, as far as its first octets (`received`) tell: 4
    /// until the header is in; for a domain, 5 until its length octet is in;
    /// then the exact total. Reading exactly this many octets never reads past
    /// the reply into the tunnelled stream.
    ///
    /// Throws as soon as the header shows another version, a failure (REP), or
    /// an unknown address type: the rest of such a reply is not worth waiting for.
    static func replyLength(_ received: [UInt8]) throws(Failure) -> Int {
        guard received.count >= 4 else { return 4 }
        guard received[0] == version else { throw .wrongVersion(received[0], expected: version, in: "CONNECT reply") }
        guard received[1] == 0x00 else { throw .rejected(reply: received[1]) }
        // RSV (received[2]) is ignored: a proxy that fills it is still understood.
        switch AddressType(rawValue: received[3]) {
        case .ipv4: return 4 + 4 + 2
        case .ipv6: return 4 + 16 + 2
        case .domain: return received.count >= 5 ? 4 + 1 + Int(received[4]) + 2 : 5
        case nil: throw .unknownAddressType(received[3])
        }
    }

    /// What a successful reply says: the address and port the proxy connected from.
    struct Reply: Equatable {
        var boundAddress: String
        var boundPort: UInt16
    }

    /// A complete reply: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT.
    static func parseReply(_ bytes: [UInt8]) throws(Failure) -> Reply {
        let step = "CONNECT reply"
        let length = try replyLength(bytes)
        guard bytes.count >= length else { throw .truncated(step) }
        guard bytes.count == length else { throw .trailingBytes(step) }
        let port = UInt16(bytes[length - 2]) << 8 | UInt16(bytes[length - 1])
        let address: String
        switch AddressType(rawValue: bytes[3]) {
        case .ipv4: address = text(Array(bytes[4..<8]), family: AF_INET)
        case .ipv6: address = text(Array(bytes[4..<20]), family: AF_INET6)
        default: address = String(decoding: bytes[5..<(length - 2)], as: UTF8.self)
        }
        return Reply(boundAddress: address, boundPort: port)
    }

    /// An address in network order as text (`192.0.2.1`, `2001:db8::1`).
    private static func text(_ octets: [UInt8], family: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        _ = octets.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
    }
}
