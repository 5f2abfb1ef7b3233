import Glibc

/// A nameserver: an IPv4 or IPv6 address and a port.
struct DNSServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 octets (IPv4) or 16 (IPv6), network order.
    let address: [UInt8]
    let port: UInt16

    /// Parses an IPv4 or IPv6 literal (no scope, no brackets).
    init?(literal: String, port: UInt16) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            address = withUnsafeBytes(of: &v4) { Array($0) }
        } else if inet_pton(AF_INET6, literal, &v6) == 1 {
            address = withUnsafeBytes(of: &v6) { Array($0) }
        } else {
            return nil
        }
        self.port = port
    }

    init(address: [UInt8], port: UInt16) {
        self.address = address
        self.port = port
    }

    /// 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104: the only places a resolver's
    /// AD bit can be believed without a secured channel (RFC 4035 4.9.3).
    var isLoopback: Bool {
        if address.count == 4 { return address[0] == 127 }
        if address[0..<15].allSatisfy({ $0 == 0 }) { return address[15] == 1 }
        return address[0..<10].allSatisfy { $0 == 0 } && address[10] == 0xFF && address[11] == 0xFF && address[12] == 127
    }

    var description: String {
        if address.count == 4 { return address.map { String($0) }.joined(separator: ".") + ":\(port)" }
        return "[\(DNSMessage.ipv6Text(address))]:\(port)"
    }

    /// Calls `body` with this address as a `sockaddr`.
    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        if address.count == 4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { raw in
                for index in 0..<4 { raw[index] = address[index] }
            }
            return withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { raw in
            for index in 0..<16 { raw[index] = address[index] }
        }
        return withUnsafePointer(to: &sin6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }
}

/// Why an exchange got no reply.
enum DNSExchangeError: Error, Equatable {
    /// No server answered within its time, on any attempt.
    case timeout
    /// Every server failed otherwise (port unreachable, socket errors…).
    case failed(String)
}

/// Sending a query and waiting for its reply, over UDP and, when the reply is
/// truncated (TC), over TCP (RFC 1035 4.2, RFC 7766 5).
///
/// Why not `res_nsend`: glibc 2.36's `send_dg` (res_send.c 1222-1245) drops
/// SERVFAIL, REFUSED and NOTIMP replies and reports them like a timeout, unless
/// `pfcode` is set, and with `pfcode` set a NOERROR reply without answers,
/// AA, RA or additional records makes it loop forever (1248-1251). Its
/// timeouts are also whole seconds. Delivery must tell SERVFAIL from silence,
/// so the exchange is done here: the same steps (connected socket, ID and
/// question checked, spurious datagrams ignored, TCP on TC), with a monotonic
/// deadline per attempt.
enum DNSTransport {
    /// Tries each server in turn, `attempts` rounds, `timeout` seconds for each
    /// try (as resolv.conf's `timeout:` and `attempts:`). Returns the first
    /// reply that matches `id` and `question`, whatever its RCODE.
    static func exchange(query: [UInt8], id: UInt16, question: DNSQuestion, servers: [DNSServerAddress],
                         timeout: Double, attempts: Int) -> Result<[UInt8], DNSExchangeError> {
        var sawTimeout = false
        var lastFailure = "no nameserver"
        for _ in 0..<attempts {
            for server in servers {
                var result = DNSSocket.udp(server, query: query, id: id, question: question,
                                           deadline: .after(timeout))
                if case .success(let reply) = result, DNSHeader.size <= reply.count, reply[2] & 0x02 != 0 {
                    result = DNSSocket.tcp(server, query: query, id: id, question: question,
                                           deadline: .after(timeout))
                }
                switch result {
                case .success(let reply): return .success(reply)
                case .failure(.timeout): sawTimeout = true
                case .failure(.failed(let detail)): lastFailure = "\(server): \(detail)"
                }
            }
        }
        return .failure(sawTimeout ? .timeout : .failed(lastFailure))
    }

    /// Whether `reply` answers our query: a response, our ID, opcode QUERY, and
    /// the same question (RFC 5452 4.2; names compare case-insensitively).
    static func matches(_ reply: [UInt8], id: UInt16, question: DNSQuestion) -> Bool {
        var reader = DNSWireReader(reply)
        do {
            let header = try reader.header()
            guard header.isResponse, header.id == id, header.opcode == 0, header.questionCount == 1 else { return false }
            return try reader.question() == question
        } catch {
            return false
        }
    }
}

/// A point on the monotonic clock.
struct DNSDeadline {
    let instant: ContinuousClock.Instant

    static func after(_ seconds: Double) -> DNSDeadline {
        DNSDeadline(instant: .now + .nanoseconds(Int64(max(0, seconds) * 1e9)))
    }

    /// Milliseconds left for poll(2), rounded up; 0 once passed.
    var pollMilliseconds: Int32 {
        let left = instant - .now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}
