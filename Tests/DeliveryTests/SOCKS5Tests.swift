import Foundation
import PosternCore
import Synchronization
import TLS
import Testing
@testable import Delivery

/// The SOCKS5 encoding, octet by octet, without sockets (RFC 1928, RFC 1929).
struct SOCKS5EncodingTests {
    @Test func greeting() {
        #expect(SOCKS5.greeting(methods: SOCKS5.methods(withPassword: false)) == [0x05, 0x01, 0x00])
        #expect(SOCKS5.greeting(methods: SOCKS5.methods(withPassword: true)) == [0x05, 0x02, 0x00, 0x02])
    }

    @Test func authenticationRequest() throws {
        #expect(try SOCKS5.authenticationRequest(username: "user", password: "pa55") ==
            [0x01, 0x04, 0x75, 0x73, 0x65, 0x72, 0x04, 0x70, 0x61, 0x35, 0x35])
        #expect(throws: SOCKS5.Failure.credentialLength(field: "username", length: 0)) {
            try SOCKS5.authenticationRequest(username: "", password: "x")
        }
        #expect(throws: SOCKS5.Failure.credentialLength(field: "password", length: 256)) {
            try SOCKS5.authenticationRequest(username: "u", password: String(repeating: "p", count: 256))
        }
        // Octets, not characters: 128 two-octet characters are too long.
        #expect(throws: SOCKS5Dialer.CredentialsError.self) {
            try SOCKS5Dialer.Credentials(username: String(repeating: "é", count: 128), password: "x")
        }
        let longest = try SOCKS5Dialer.Credentials(username: String(repeating: "u", count: 255), password: "p")
        #expect(longest.username.utf8.count == 255)
    }

    @Test func connectRequest() throws {
        #expect(try SOCKS5.connectRequest(ip: "192.0.2.1", port: 25) == [0x05, 0x01, 0x00, 0x01, 192, 0, 2, 1, 0x00, 0x19])
        #expect(try SOCKS5.connectRequest(ip: "2001:db8::1", port: 587) ==
            [0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x4B])
        // Names are resolved by Postern, never sent to the proxy (no ATYP 3).
        #expect(throws: SOCKS5.Failure.notAnIPAddress("mx.example.org")) { try SOCKS5.connectRequest(ip: "mx.example.org", port: 25) }
    }

    @Test func methodSelection() throws {
        #expect(try SOCKS5.parseMethodSelection([0x05, 0x00], offered: [0x00]) == 0x00)
        #expect(try SOCKS5.parseMethodSelection([0x05, 0x02], offered: [0x00, 0x02]) == 0x02)
        #expect(throws: SOCKS5.Failure.unofferedMethod(0x02)) { try SOCKS5.parseMethodSelection([0x05, 0x02], offered: [0x00]) }
        #expect(throws: SOCKS5.Failure.noAcceptableMethods) { try SOCKS5.parseMethodSelection([0x05, 0xFF], offered: [0x00]) }
        #expect(throws: SOCKS5.Failure.wrongVersion(0x04, expected: 5, in: "method selection")) {
            try SOCKS5.parseMethodSelection([0x04, 0x00], offered: [0x00])
        }
        #expect(throws: SOCKS5.Failure.truncated("method selection")) { try SOCKS5.parseMethodSelection([0x05], offered: [0x00]) }
        #expect(SOCKS5.Failure.unofferedMethod(0x03).description == "chose authentication method 0x03, which was not offered")
    }

    @Test func authenticationReply() throws {
        try SOCKS5.parseAuthenticationReply([0x01, 0x00])
        #expect(throws: SOCKS5.Failure.authenticationRejected(status: 1)) { try SOCKS5.parseAuthenticationReply([0x01, 0x01]) }
        #expect(throws: SOCKS5.Failure.wrongVersion(0x05, expected: 1, in: "authentication reply")) {
            try SOCKS5.parseAuthenticationReply([0x05, 0x00])
        }
    }

    /// Replies of each address type, and how much of each must be read.
    @Test func replies() throws {
        let v4: [UInt8] = [0x05, 0x00, 0x00, 0x01, 10, 0, 0, 7, 0x04, 0x38]
        #expect(try SOCKS5.replyLength([]) == 4)
        #expect(try SOCKS5.replyLength(Array(v4.prefix(4))) == 10)
        #expect(try SOCKS5.parseReply(v4) == SOCKS5.Reply(boundAddress: "10.0.0.7", boundPort: 1080))

        let v6: [UInt8] = [0x05, 0x00, 0x00, 0x04, 0xFE, 0x80] + [UInt8](repeating: 0, count: 13) + [0x01, 0xC0, 0x00]
        #expect(try SOCKS5.replyLength(Array(v6.prefix(4))) == 22)
        #expect(try SOCKS5.parseReply(v6) == SOCKS5.Reply(boundAddress: "fe80::1", boundPort: 49152))

        let name = Array("proxy.example".utf8)
        let domain: [UInt8] = [0x05, 0x00, 0x00, 0x03, UInt8(name.count)] + name + [0x00, 0x50]
        #expect(try SOCKS5.replyLength(Array(domain.prefix(4))) == 5)
        #expect(try SOCKS5.replyLength(Array(domain.prefix(5))) == domain.count)
        #expect(try SOCKS5.parseReply(domain) == SOCKS5.Reply(boundAddress: "proxy.example", boundPort: 80))

        let longest: [UInt8] = [0x05, 0x00, 0x00, 0x03, 255] + [UInt8](repeating: 0x61, count: 255) + [0, 1]
        #expect(try SOCKS5.replyLength(longest) == SOCKS5.longestReply)
        #expect(try SOCKS5.parseReply(longest).boundPort == 1)
    }

    @Test func badReplies() {
        #expect(throws: SOCKS5.Failure.truncated("CONNECT reply")) { try SOCKS5.parseReply([0x05, 0x00, 0x00, 0x01, 10, 0]) }
        #expect(throws: SOCKS5.Failure.truncated("CONNECT reply")) { try SOCKS5.parseReply([0x05, 0x00, 0x00, 0x03]) }
        #expect(throws: SOCKS5.Failure.truncated("CONNECT reply")) { try SOCKS5.parseReply([0x05, 0x00]) }
        #expect(throws: SOCKS5.Failure.trailingBytes("CONNECT reply")) {
            try SOCKS5.parseReply([0x05, 0x00, 0x00, 0x01, 10, 0, 0, 7, 0x04, 0x38, 0x32])
        }
        // An HTTP proxy answering a SOCKS greeting.
        #expect(throws: SOCKS5.Failure.wrongVersion(0x48, expected: 5, in: "CONNECT reply")) { try SOCKS5.parseReply(Array("HTTP/1.1 400".utf8)) }
        #expect(throws: SOCKS5.Failure.unknownAddressType(0x02)) { try SOCKS5.parseReply([0x05, 0x00, 0x00, 0x02, 1, 2, 3, 4, 0, 25]) }
    }

    /// Every REP of RFC 1928 section 6 has its words and its errno, decided from the header alone.
    @Test func replyCodes() {
        let expected: [(UInt8, String, Int32)] = [
            (1, "general SOCKS server failure", EIO), (2, "connection not allowed by ruleset", EACCES),
            (3, "network unreachable", ENETUNREACH), (4, "host unreachable", EHOSTUNREACH),
            (5, "connection refused by destination", ECONNREFUSED), (6, "TTL expired", ETIMEDOUT),
            (7, "command not supported", EOPNOTSUPP), (8, "address type not supported", EAFNOSUPPORT),
            (9, "unassigned reply code 0x09", EIO),
        ]
        for (code, words, errno) in expected {
            #expect(throws: SOCKS5.Failure.rejected(reply: code)) { try SOCKS5.replyLength([0x05, code, 0x00, 0x01]) }
            #expect(SOCKS5.Failure.rejected(reply: code).description == "\(words) (REP \(code))")
            #expect(SOCKS5.Failure.rejected(reply: code).code == errno)
        }
    }
}

/// `SOCKS5Dialer` against a fake proxy on 127.0.0.1, run by a thread of this process.
@Suite(.serialized)
struct SOCKS5DialerTests {
    static let deadline = 10.0

    /// Connects through `server` to `ip`, and returns the stream and what the server saw.
    func dial(_ server: FakeSOCKS5Server, ip: String = "192.0.2.25", port: UInt16 = 25, credentials: SOCKS5Dialer.Credentials? = nil,
              host: String = "127.0.0.1") throws -> ByteStream {
        let dialer = SOCKS5Dialer(proxyHost: host, proxyPort: server.port, credentials: credentials, connectTimeout: 5)
        return try dialer.connect(ip: ip, port: port, deadline: .after(Self.deadline))
    }

    /// Reads until `count` octets have come (or the stream ends).
    func read(_ stream: ByteStream, count: Int) throws -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        let deadline = Deadline.after(Self.deadline)
        while result.count < count {
            let got = try buffer.withUnsafeMutableBytes { try stream.read(into: $0, deadline: deadline) }
            if got == 0 { break }
            result += buffer[..<got]
        }
        return result
    }

    /// Through the tunnel both ways: the server's banner arrives in the same
    /// segment as its reply (so the dialer must not read past the reply), and
    /// what the client writes comes back.
    @Test(arguments: [FakeSOCKS5Server.boundIPv4, FakeSOCKS5Server.boundIPv6, FakeSOCKS5Server.boundDomain])
    func tunnel(bound: [UInt8]) throws {
        let server = try FakeSOCKS5Server(.tunnel(bound: bound))
        do {
            let stream = try dial(server)
            #expect(try read(stream, count: FakeSOCKS5Server.banner.count) == FakeSOCKS5Server.banner)
            let line = Array("EHLO client.example\r\n".utf8)
            try stream.write(line, deadline: .after(Self.deadline))
            #expect(try read(stream, count: line.count) == line)
        }
        let seen = server.finish()
        #expect(seen.methods == [0x00])
        #expect(seen.request == [0x05, 0x01, 0x00, 0x01, 192, 0, 2, 25, 0x00, 25])
        #expect(seen.problem == nil)
    }

    @Test func ipv6Destination() throws {
        let server = try FakeSOCKS5Server(.tunnel(bound: FakeSOCKS5Server.boundIPv4))
        do {
            let stream = try dial(server, ip: "2001:db8::25", port: 587)
            #expect(try read(stream, count: FakeSOCKS5Server.banner.count) == FakeSOCKS5Server.banner)
        }
        let seen = server.finish()
        #expect(seen.request == [0x05, 0x01, 0x00, 0x04, 0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [0x25, 0x02, 0x4B])
    }

    /// A proxy given by name is resolved locally, like any other.
    @Test func proxyByName() throws {
        let server = try FakeSOCKS5Server(.tunnel(bound: FakeSOCKS5Server.boundIPv4))
        do {
            let stream = try dial(server, host: "localhost")
            #expect(try read(stream, count: FakeSOCKS5Server.banner.count) == FakeSOCKS5Server.banner)
        }
        #expect(server.finish().problem == nil)
    }

    @Test func password() throws {
        let server = try FakeSOCKS5Server(.password(user: "postern", password: "s3cret"))
        do {
            let stream = try dial(server, credentials: try .init(username: "postern", password: "s3cret"))
            #expect(try read(stream, count: FakeSOCKS5Server.banner.count) == FakeSOCKS5Server.banner)
        }
        let seen = server.finish()
        #expect(seen.methods == [0x00, 0x02])
        #expect(seen.problem == nil)
    }

    /// Each failure names the proxy and says what happened.
    @Test func failures() throws {
        func failure(_ behaviour: FakeSOCKS5Server.Behaviour, credentials: SOCKS5Dialer.Credentials? = nil,
                     deadline: Double = SOCKS5DialerTests.deadline) throws -> (String, Int32) {
            let server = try FakeSOCKS5Server(behaviour)
            defer { _ = server.finish() }
            let dialer = SOCKS5Dialer(proxyHost: "127.0.0.1", proxyPort: server.port, credentials: credentials, connectTimeout: 5)
            do {
                _ = try dialer.connect(ip: "192.0.2.25", port: 25, deadline: .after(deadline))
            } catch {
                guard case .system(_, let code) = error else { return (error.description, 0) }
                return (error.description.replacingOccurrences(of: "\(server.port)", with: "PORT"), code)
            }
            Issue.record("connected through a failing proxy")
            return ("", 0)
        }
        #expect(try failure(.reply(5)) == ("SOCKS5 proxy 127.0.0.1:PORT: connection refused by destination (REP 5): Connection refused", ECONNREFUSED))
        #expect(try failure(.reply(2)).0.hasPrefix("SOCKS5 proxy 127.0.0.1:PORT: connection not allowed by ruleset (REP 2)"))
        #expect(try failure(.noAcceptableMethods) ==
            ("SOCKS5 proxy 127.0.0.1:PORT: accepts none of the offered authentication methods (METHOD 0xFF): Permission denied", EACCES))
        #expect(try failure(.password(user: "postern", password: "s3cret")).0
            .hasPrefix("SOCKS5 proxy 127.0.0.1:PORT: chose authentication method 0x02, which was not offered"))
        #expect(try failure(.password(user: "postern", password: "s3cret"), credentials: try .init(username: "postern", password: "wrong")).0
            .hasPrefix("SOCKS5 proxy 127.0.0.1:PORT: rejected the username and password (RFC 1929 STATUS 1)"))
        #expect(try failure(.raw(Array("HTTP/1.1 400 Bad Request\r\n\r\n".utf8))) ==
            ("SOCKS5 proxy 127.0.0.1:PORT: method selection has version 72, expected 5: not a SOCKS5 proxy?: Protocol error", EPROTO))
        #expect(try failure(.raw([0x05])).0.hasPrefix("SOCKS5 proxy 127.0.0.1:PORT closed the connection, waiting for the method selection"))
        #expect(try failure(.silent, deadline: 0.3) ==
            ("SOCKS5 proxy 127.0.0.1:PORT, waiting for the method selection: Connection timed out", ETIMEDOUT))
    }

    /// Nothing listening: the TCP error, with the proxy named.
    @Test func proxyDown() throws {
        // A port bound but not listening: refused, and no other test can take it meanwhile.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        let port = UInt16(bigEndian: address.sin_port)
        let dialer = SOCKS5Dialer(proxyHost: "127.0.0.1", proxyPort: port, connectTimeout: 5)
        #expect(throws: StreamError.system(operation: "SOCKS5 proxy 127.0.0.1:\(port), connecting: connect 127.0.0.1 port \(port)", code: ECONNREFUSED)) {
            _ = try dialer.connect(ip: "192.0.2.25", port: 25, deadline: .after(Self.deadline))
        }
    }
}

/// A SOCKS5 proxy for one connection, on 127.0.0.1, served by its own thread.
/// Every wait is bounded by a deadline; `finish()` waits for the thread.
final class FakeSOCKS5Server: Sendable {
    enum Behaviour: Sendable {
        /// Accept no authentication, reply success with this ATYP, BND.ADDR,
        /// BND.PORT, send the banner in the same write, then echo.
        case tunnel(bound: [UInt8])
        /// Require username/password (method 2), then tunnel.
        case password(user: String, password: String)
        /// Answer the greeting with METHOD 0xFF.
        case noAcceptableMethods
        /// Answer CONNECT with this REP.
        case reply(UInt8)
        /// Answer the greeting with these octets and close.
        case raw([UInt8])
        /// Read the greeting, answer nothing, wait for the client to go.
        case silent
    }

    /// What the server saw, and what went wrong on its side.
    struct Seen: Sendable {
        var methods: [UInt8] = []
        var request: [UInt8] = []
        var problem: String?
    }

    static let banner = Array("220 destination ESMTP\r\n".utf8)
    static let boundIPv4: [UInt8] = [0x01, 127, 0, 0, 1, 0x9C, 0x40]
    static let boundIPv6: [UInt8] = [0x04] + [UInt8](repeating: 0, count: 15) + [1, 0x9C, 0x40]
    static let boundDomain: [UInt8] = [0x03, 9] + Array("localhost".utf8) + [0x9C, 0x40]

    let port: UInt16
    private let listener: Int32
    private let seen = Mutex(Seen())
    private let done = DispatchSemaphore(value: 0)
    private let listenerOpen = Mutex(true)

    init(_ behaviour: Behaviour) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound, listen(fd, 1) == 0 else { throw StreamError.system(operation: "fake SOCKS5 listen", code: errno) }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in
            do {
                try serve(behaviour)
            } catch {
                seen.withLock { $0.problem = "\(error)" }
            }
            done.signal()
        }
    }

    /// Waits (boundedly) for the connection to be over, and says what happened.
    func finish() -> Seen {
        if done.wait(timeout: .now() + 15) == .timedOut { return Seen(problem: "the server thread did not finish") }
        closeListener()
        return seen.withLock { $0 }
    }

    func closeListener() {
        listenerOpen.withLock { open in
            if open { close(listener) }
            open = false
        }
    }

    private func serve(_ behaviour: Behaviour) throws {
        let deadline = Deadline.after(10)
        var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, deadline.pollTimeout) == 1 else { return }
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else { return }
        let stream = try SocketStream(fileDescriptor: fd)
        func read(_ count: Int) throws -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let got = try bytes.withUnsafeMutableBytes { raw in
                    try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]), deadline: deadline)
                }
                guard got > 0 else { throw StreamError.closed }
                filled += got
            }
            return bytes
        }
        let methods = try read(Int(try read(2)[1]))
        seen.withLock { $0.methods = methods }
        switch behaviour {
        case .noAcceptableMethods: return try stream.write([0x05, 0xFF], deadline: deadline)
        case .raw(let bytes): return try stream.write(bytes, deadline: deadline)
        case .silent:
            _ = try? read(1)
            return
        case .password(let user, let password):
            guard methods.contains(0x02) else { return try stream.write([0x05, 0x02], deadline: deadline) }
            try stream.write([0x05, 0x02], deadline: deadline)
            let name = try read(Int(try read(2)[1]))
            let secret = try read(Int(try read(1)[0]))
            let good = name == Array(user.utf8) && secret == Array(password.utf8)
            try stream.write([0x01, good ? 0x00 : 0x01], deadline: deadline)
            if !good { return }
        case .tunnel, .reply:
            try stream.write([0x05, 0x00], deadline: deadline)
        }
        let header = try read(4)
        let address = try read(header[3] == 0x01 ? 4 : 16)
        let port = try read(2)
        seen.withLock { $0.request = header + address + port }
        if case .reply(let code) = behaviour {
            return try stream.write([0x05, code, 0x00] + Self.boundIPv4, deadline: deadline)
        }
        let bound = if case .tunnel(let bound) = behaviour { bound } else { Self.boundIPv4 }
        try stream.write([0x05, 0x00, 0x00] + bound + Self.banner, deadline: deadline)
        // Echo until the client closes.
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = try buffer.withUnsafeMutableBytes { raw in try stream.read(into: raw, deadline: deadline) }
            if got == 0 { return }
            try stream.write(Array(buffer[..<got]), deadline: deadline)
        }
    }
}
