import Foundation
import PosternCore
import SMTP
import TLS

/// Opens connections for transports: one real implementation (TCP, system
/// resolver) and test doubles.
public protocol Dialer: Sendable {
    /// The IP addresses to try for `host`, in order.
    func addresses(of host: String) throws(StreamError) -> [String]
    func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream
}

/// TCP through the system resolver: enough for a smarthost named in the
/// configuration (direct delivery resolves MX hosts with its own resolver).
public struct TCPDialer: Dialer {
    public init() {}

    public func addresses(of host: String) throws(StreamError) -> [String] {
        try TCPConnector.addresses(of: host)
    }

    public func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream {
        try TCPConnector.connect(ip: ip, port: port, deadline: deadline)
    }
}

/// Everything through one smarthost (`relay = "HOST:PORT"`), nullmailer style.
///
/// Tries the relay's addresses in order until one answers. With opportunistic
/// TLS, a TLS failure is followed by one plaintext attempt on the same address,
/// as mox does: a broken STARTTLS must not stop mail that would go in plaintext
/// anyway (RFC 7435's opportunistic security).
public struct RelayTransport: Transport {
    public let name = "relay"
    public let host: String
    public let port: UInt16
    public let options: SMTPClientOptions
    public let dialer: any Dialer
    public let connectTimeout: Double

    public init(host: String, port: UInt16, options: SMTPClientOptions, dialer: any Dialer = TCPDialer(), connectTimeout: Double = 30) {
        self.host = host
        self.port = port
        self.options = options
        self.dialer = dialer
        self.connectTimeout = connectTimeout
    }

    public func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport {
        SMTPSession.timed(request) { source in attempt(request, source: source, cancellation: cancellation) }
    }

    private func attempt(_ request: DeliveryRequest, source: FileMessageSource, cancellation: Cancellation) -> AttemptReport {
        let ips: [String]
        do {
            ips = try dialer.addresses(of: host)
        } catch {
            return .all(request.recipients, .deferred, text: "cannot resolve relay \(host): \(error)", host: host)
        }
        return SMTPSession.tryAddresses(request, host: host, ips: ips, port: port, options: options, dialer: dialer,
                                        connectTimeout: connectTimeout, source: source, cancellation: cancellation)
    }
}
