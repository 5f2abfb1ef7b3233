import Glibc
import PosternCore

/// One query to one server, over UDP or TCP, bounded by a deadline. Every
/// socket is opened and closed inside the call, so calls share nothing.
enum DNSSocket {
    /// UDP (RFC 1035 4.2.1). The socket is connected, so the kernel delivers
    /// only datagrams from the server's address and port, and a port-unreachable
    /// comes back as ECONNREFUSED instead of a wait until the deadline. The
    /// kernel picks a random source port (RFC 5452 4.5). Datagrams that do not
    /// match ID and question are dropped and the wait goes on.
    static func udp(_ server: DNSServerAddress, query: [UInt8], id: UInt16, question: DNSQuestion,
                    deadline: DNSDeadline) -> Result<[UInt8], DNSExchangeError> {
        let family = server.address.count == 4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.failed("socket: \(errorText())")) }
        defer { close(fd) }
        guard server.withSockaddr({ connect(fd, $0, $1) }) == 0 else {
            return .failure(.failed("connect: \(errorText())"))
        }
        // One datagram: sent whole or not at all.
        let sent = Result { () throws(SystemCallError) in
            try POSIX.uninterrupted { query.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        }
        switch sent {
        case .success(let count) where count == query.count: break
        case .success(let count): return .failure(.failed("send: \(count) of \(query.count) octets"))
        case .failure(let error): return .failure(.failed("send: \(error)"))
        }

        // A datagram can be larger than the size we advertised; take all of it,
        // so a reply is never silently cut (the parser then sees every octet).
        var buffer = [UInt8](repeating: 0, count: DNSLimits.maxMessageOctets)
        while true {
            if let failure = wait(fd, for: Int16(POLLIN), until: deadline) { return .failure(failure) }
            let received = buffer.withUnsafeMutableBytes { raw in
                Result { () throws(SystemCallError) in try POSIX.readSome(into: raw) { recv(fd, $0.baseAddress, $0.count, 0) } }
            }
            let reply: [UInt8]
            switch received {
            case .success(let count): reply = Array(buffer[..<count])
            case .failure(let error) where error.wouldBlock: continue   // readiness without a datagram: wait again
            case .failure(let error): return .failure(.failed("recv: \(error)"))
            }
            if DNSTransport.matches(reply, id: id, question: question) { return .success(reply) }
        }
    }

    /// TCP (RFC 1035 4.2.2, RFC 7766): each message is preceded by its length
    /// in two octets, which bounds a reply to 65535 octets. Non-blocking, so
    /// connect, write and every read wait at most until `deadline`.
    static func tcp(_ server: DNSServerAddress, query: [UInt8], id: UInt16, question: DNSQuestion,
                    deadline: DNSDeadline) -> Result<[UInt8], DNSExchangeError> {
        let family = server.address.count == 4 ? AF_INET : AF_INET6
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd = socket(family, type, 0)
        guard fd >= 0 else { return .failure(.failed("socket: \(errorText())")) }
        defer { close(fd) }
        if server.withSockaddr({ connect(fd, $0, $1) }) != 0 {
            guard errno == EINPROGRESS else { return .failure(.failed("TCP connect: \(errorText())")) }
            if let failure = wait(fd, for: Int16(POLLOUT), until: deadline) { return .failure(failure) }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else {
                return .failure(.failed("TCP connect: \(POSIX.errorText(error))"))
            }
        }

        let message = [UInt8(query.count >> 8), UInt8(query.count & 0xFF)] + query
        var written = 0
        while written < message.count {
            if let failure = wait(fd, for: Int16(POLLOUT), until: deadline) { return .failure(failure) }
            let sent = message.withUnsafeBytes { raw in
                Result { () throws(SystemCallError) in
                    try POSIX.writeAll(UnsafeRawBufferPointer(rebasing: raw[written...])) { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                }
            }
            switch sent {
            case .success: written = message.count
            case .failure(let error) where error.wouldBlock: written += error.transferred   // the rest when it is writable
            case .failure(let error): return .failure(.failed("TCP send: \(error)"))
            }
        }

        let prefix: [UInt8]
        switch read(fd, count: 2, until: deadline) {
        case .success(let octets): prefix = octets
        case .failure(let failure): return .failure(failure)
        }
        let length = Int(prefix[0]) << 8 | Int(prefix[1])
        guard length >= DNSHeader.size else { return .failure(.failed("TCP reply of \(length) octets")) }
        switch read(fd, count: length, until: deadline) {
        case .success(let reply):
            guard DNSTransport.matches(reply, id: id, question: question) else {
                return .failure(.failed("TCP reply does not match the query"))
            }
            return .success(reply)
        case .failure(let failure):
            return .failure(failure)
        }
    }

    /// Exactly `count` octets from a stream, or a failure at EOF or the deadline.
    private static func read(_ fd: Int32, count: Int, until deadline: DNSDeadline) -> Result<[UInt8], DNSExchangeError> {
        var octets = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            if let failure = wait(fd, for: Int16(POLLIN), until: deadline) { return .failure(failure) }
            let received = octets.withUnsafeMutableBytes { raw in
                Result { () throws(SystemCallError) in
                    try POSIX.fill(UnsafeMutableRawBufferPointer(rebasing: raw[filled...])) { recv(fd, $0.baseAddress, $0.count, 0) }
                }
            }
            switch received {
            case .success(let got):
                filled += got
                guard filled == count else { return .failure(.failed("TCP connection closed early")) }
            case .failure(let error) where error.wouldBlock: filled += error.transferred   // the rest when it arrives
            case .failure(let error): return .failure(.failed("TCP recv: \(error)"))
            }
        }
        return .success(octets)
    }

    /// Waits until `fd` is ready for `events`; nil when ready (errors and hangups
    /// count as ready: the next call reports them), else why not.
    private static func wait(_ fd: Int32, for events: Int16, until deadline: DNSDeadline) -> DNSExchangeError? {
        while true {
            let milliseconds = deadline.pollMilliseconds
            guard milliseconds > 0 else { return .timeout }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return nil }
            if ready < 0 && errno != EINTR { return .failed("poll: \(errorText())") }
        }
    }

    private static func errorText() -> String {
        POSIX.errorText(errno)
    }
}
