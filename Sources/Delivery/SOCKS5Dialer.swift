import Glibc
import PosternCore
import TLS

/// Connections through a SOCKS5 proxy (RFC 1928), for hosts that may not open
/// port 25 themselves (or must leave through one address, or through Tor).
///
/// The destination is always an IP address: Postern resolves names locally,
/// so DNS answers (and the choice among addresses) are its own, and
/// `addresses(of:)` uses the system resolver just as `TCPDialer` does.
///
/// Everything after the TCP connect (greeting, RFC 1929 authentication,
/// CONNECT and its reply) runs under the caller's deadline, and reads exactly
/// as many octets as each message has (at most `SOCKS5.longestReply`), so the
/// stream is handed back positioned at the first octet from the destination:
/// the SMTP client reads the greeting from it as from a direct connection.
///
/// Every failure is a `StreamError.system` naming the proxy, with the errno
/// nearest to its meaning (`ECONNREFUSED` for REP 5, `EPROTO` for garbage).
/// All of them are temporary for delivery: the proxy or the path behind it may
/// work next time, and a proxy misconfiguration is the operator's to fix
/// while the mail waits.
public struct SOCKS5Dialer: Dialer {
    /// A username and password for RFC 1929, checked when made: each must be 1
    /// to 255 octets of UTF-8, so a bad configuration is reported at start-up
    /// and never sent to the proxy.
    public struct Credentials: Sendable, Equatable {
        public let username: String
        public let password: String

        public init(username: String, password: String) throws(CredentialsError) {
            do {
                try SOCKS5.validate(username, field: "username")
                try SOCKS5.validate(password, field: "password")
            } catch {
                throw CredentialsError(description: "SOCKS5 \(error)")
            }
            self.username = username
            self.password = password
        }
    }

    /// Why credentials were refused (`SOCKS5 the username must be 1 to 255 octets (RFC 1929), not 0`).
    public struct CredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The proxy: an IP address or a host name (resolved with the system resolver), and its port.
    public let proxy: (host: String, port: UInt16)
    /// When set, username/password authentication is offered besides none.
    public let credentials: Credentials?
    /// Seconds allowed for the TCP connection to the proxy (the caller's
    /// deadline applies as well, and to the whole handshake).
    public let connectTimeout: Double

    public init(proxyHost: String, proxyPort: UInt16 = 1080, credentials: Credentials? = nil, connectTimeout: Double = 30) {
        proxy = (proxyHost, proxyPort)
        self.credentials = credentials
        self.connectTimeout = connectTimeout
    }

    /// `SOCKS5 proxy 127.0.0.1:1080`, `SOCKS5 proxy [::1]:1080`: the prefix of every error.
    var label: String {
        let host = proxy.host.contains(":") ? "[\(proxy.host)]" : proxy.host
        return "SOCKS5 proxy \(host):\(proxy.port)"
    }

    public func addresses(of host: String) throws(StreamError) -> [String] {
        try TCPConnector.addresses(of: host)
    }

    /// Connects to the proxy and asks it for a tunnel to `ip` port `port`;
    /// returns the proxy connection, which now carries the destination's bytes.
    public func connect(ip: String, port: UInt16, deadline: Deadline) throws(StreamError) -> ByteStream {
        // Encoded first: a destination that is not an IP address is our bug, not the proxy's.
        let request = try check { () throws(SOCKS5.Failure) in try SOCKS5.connectRequest(ip: ip, port: port) }
        let stream = try connectToProxy(deadline: deadline)
        let offered = SOCKS5.methods(withPassword: credentials != nil)
        try send(SOCKS5.greeting(methods: offered), on: stream, deadline: deadline, step: "sending the greeting")
        let selection = try read(2, from: stream, deadline: deadline, step: "the method selection")
        let method = try check { () throws(SOCKS5.Failure) in try SOCKS5.parseMethodSelection(selection, offered: offered) }
        if method == SOCKS5.usernamePassword, let credentials {
            let login = try check { () throws(SOCKS5.Failure) in
                try SOCKS5.authenticationRequest(username: credentials.username, password: credentials.password)
            }
            try send(login, on: stream, deadline: deadline, step: "sending the username and password")
            let answer = try read(2, from: stream, deadline: deadline, step: "the authentication reply")
            try check { () throws(SOCKS5.Failure) in try SOCKS5.parseAuthenticationReply(answer) }
        }
        try send(request, on: stream, deadline: deadline, step: "sending CONNECT")
        // Read the reply in the pieces its header announces, never past its end.
        var reply: [UInt8] = []
        while true {
            let length = try check { () throws(SOCKS5.Failure) in try SOCKS5.replyLength(reply) }
            if reply.count == length { break }
            reply += try read(length - reply.count, from: stream, deadline: deadline, step: "the CONNECT reply")
        }
        _ = try check { () throws(SOCKS5.Failure) in try SOCKS5.parseReply(reply) }
        return stream
    }

    /// The TCP connection to the proxy: each of its addresses in turn until one
    /// answers, within `connectTimeout` and the caller's deadline.
    private func connectToProxy(deadline: Deadline) throws(StreamError) -> SocketStream {
        let ips: [String]
        if SOCKS5.address(proxy.host) != nil {
            ips = [proxy.host]
        } else {
            do {
                ips = try TCPConnector.addresses(of: proxy.host)
            } catch {
                throw wrap(error, step: "resolving")
            }
        }
        let connectDeadline = min(deadline, .after(connectTimeout))
        var last = StreamError.system(operation: "\(label): no addresses", code: EHOSTUNREACH)
        for ip in ips {
            do {
                return try TCPConnector.connect(ip: ip, port: proxy.port, deadline: connectDeadline)
            } catch {
                last = wrap(error, step: "connecting")
                if connectDeadline.hasPassed { break }
            }
        }
        throw last
    }

    private func send(_ bytes: [UInt8], on stream: SocketStream, deadline: Deadline, step: String) throws(StreamError) {
        do {
            try stream.write(bytes, deadline: deadline)
        } catch {
            throw wrap(error, step: step)
        }
    }

    /// Exactly `count` octets, or an error: the proxy closing early is one.
    private func read(_ count: Int, from stream: SocketStream, deadline: Deadline, step: String) throws(StreamError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var failure: StreamError?
        bytes.withUnsafeMutableBytes { buffer in
            while filled < count {
                do throws(StreamError) {
                    let got = try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]), deadline: deadline)
                    guard got > 0 else { throw .closed }
                    filled += got
                } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw wrap(failure, step: "waiting for \(step)") }
        return bytes
    }

    /// Runs a step of `SOCKS5`, turning its failure into a stream error naming the proxy.
    private func check<T>(_ body: () throws(SOCKS5.Failure) -> T) throws(StreamError) -> T {
        do {
            return try body()
        } catch {
            throw .system(operation: "\(label): \(error)", code: error.code)
        }
    }

    /// A stream error with the proxy and the step in its words.
    private func wrap(_ error: StreamError, step: String) -> StreamError {
        switch error {
        case .system(let operation, let code): .system(operation: "\(label), \(step): \(operation)", code: code)
        case .timeout: .system(operation: "\(label), \(step)", code: ETIMEDOUT)
        case .closed: .system(operation: "\(label) closed the connection, \(step)", code: ECONNRESET)
        case .tls: error
        }
    }
}
