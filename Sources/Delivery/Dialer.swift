import PosternCore
import TLS

/// Opens connections for transports: TCP (`TCPDialer`), through a proxy
/// (`SOCKS5Dialer`), and the test doubles.
public protocol Dialer: Sendable {
    /// The IP addresses to try for `host`, in order (for a relay or proxy named
    /// in the configuration; direct delivery resolves MX hosts itself).
    func addresses(of host: String) throws(StreamError) -> [String]
    func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream
}

/// Plain TCP, optionally from a chosen local address per family (a machine
/// with several addresses sends from the one whose reverse DNS is right).
public struct TCPDialer: Dialer {
    public var bindIPv4: String?
    public var bindIPv6: String?

    public init(bindIPv4: String? = nil, bindIPv6: String? = nil) {
        self.bindIPv4 = bindIPv4
        self.bindIPv6 = bindIPv6
    }

    public func addresses(of host: String) throws(StreamError) -> [String] {
        try TCPConnector.addresses(of: host)
    }

    public func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream {
        try TCPConnector.connect(ip: ip, port: port, deadline: deadline, bind: ip.contains(":") ? bindIPv6 : bindIPv4)
    }
}

/// How long connecting may take: per address, and in all for one attempt,
/// so that a domain with ten unreachable MX addresses costs one budget, not
/// ten timeouts (mox dials each address for 30 s; Postfix bounds the whole
/// attempt the same way with smtp_connect_timeout and smtp_mx_address_limit).
public struct ConnectLimits: Sendable {
    public var perAddress: Double
    public var perAttempt: Double

    public init(perAddress: Double = 30, perAttempt: Double = 180) {
        self.perAddress = perAddress
        self.perAttempt = perAttempt
    }
}
