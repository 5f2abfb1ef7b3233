import Dispatch
import Glibc
import PosternCore
import SpoolDrop
import Synchronization

/// A fake recursive resolver on loopback, for `SystemResolver` tests: a UDP
/// socket (and a TCP listener on the same port, for replies too big for UDP)
/// on a random port, served by one thread from a fixed table.
///
/// It answers like a recursive resolver: CNAMEs first, then the records at the
/// end of the chain; RCODE 3 when the final name is unknown, 2 for names in
/// `servfail`; no reply at all for names in `drop`; AD for names in
/// `authentic`; the OPT record echoed (RFC 6891 7). Answer names are
/// compressed (RFC 1035 4.1.4), so the client's decompression is exercised.
/// A test starts one and stops it with `defer`, so it ends with the test.
public final class FakeDNSServer: Sendable {
    public enum Record: Sendable {
        case mx(UInt16, String)
        case a(String)
        case aaaa(String)
        case cname(String)
        case txt([String])
        case tlsa(UInt8, UInt8, UInt8, [UInt8])

        var type: UInt16 {
            switch self {
            case .a: 1
            case .cname: 5
            case .mx: 15
            case .txt: 16
            case .aaaa: 28
            case .tlsa: 52
            }
        }
    }

    /// Ways to break a reply on purpose.
    public enum Malformation: Sendable {
        /// The reply ends in the middle of the answer section.
        case truncated
        /// The answer's owner is a label followed by a pointer back to that
        /// label: backwards, so legal-looking, but endless.
        case compressionLoop
    }

    public struct Zone: Sendable {
        public var records: [String: [Record]] = [:]
        public var servfail: Set<String> = []
        public var drop: Set<String> = []
        public var authentic: Set<String> = []
        public var malformed: [String: Malformation] = [:]
        /// Over UDP these get an empty reply with TC set; over TCP the full one.
        public var tcpOnly: Set<String> = []

        public init(records: [String: [Record]] = [:], servfail: Set<String> = [], drop: Set<String> = [],
                    authentic: Set<String> = [], malformed: [String: Malformation] = [:], tcpOnly: Set<String> = []) {
            self.records = records
            self.servfail = servfail
            self.drop = drop
            self.authentic = authentic
            self.malformed = malformed
            self.tcpOnly = tcpOnly
        }
    }

    /// What the server saw of a query, for checks on what the client sends.
    public struct Query: Sendable {
        public let flags: UInt16
        public let name: String
        public let type: UInt16
        /// The OPT record's CLASS (UDP payload size) and DO bit, if it had one.
        public let udpSize: UInt16?
        public let dnssecOK: Bool
        public let overTCP: Bool
    }

    public let port: UInt16
    public let host: String
    private let zone: Zone
    private let udp: Int32
    private let tcp: Int32
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let log = Mutex<[Query]>([])

    public var queries: [Query] { log.withLock { $0 } }

    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts serving `zone` on 127.0.0.1 (or ::1). Call `stop()` when done
    /// (`defer { server.stop() }`): the serving thread keeps the server alive.
    public init(zone: Zone, ipv6: Bool = false) throws {
        self.zone = zone
        host = ipv6 ? "::1" : "127.0.0.1"
        // Bind UDP to port 0 for a random port, then TCP to the same number;
        // retry in the rare case that TCP port is taken.
        for _ in 0..<20 {
            let udp = try FakeDNSServer.bound(SOCK_DGRAM, ipv6: ipv6, port: 0)
            let port = FakeDNSServer.localPort(udp, ipv6: ipv6)
            let tcp: Int32
            do {
                tcp = try FakeDNSServer.bound(SOCK_STREAM, ipv6: ipv6, port: port)
            } catch {
                close(udp)
                continue
            }
            guard listen(tcp, 8) == 0 else { throw SetupError(description: "listen failed") }
            self.udp = udp
            self.tcp = tcp
            self.port = port
            DetachedThread.start(name: "fake-dns") { [self] in serve() }
            return
        }
        throw SetupError(description: "no free UDP+TCP port pair")
    }

    /// Stops the thread, waits for it, and closes the sockets.
    public func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
        close(udp)
        close(tcp)
    }

    private func serve() {
        var buffer = [UInt8](repeating: 0, count: 65_535)
        while !stopping.load(ordering: .acquiring) {
            var fds = [pollfd(fd: udp, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: tcp, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 20) > 0 else { continue }
            if fds[0].revents != 0 {
                var peer = sockaddr_storage()
                var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let count = buffer.withUnsafeMutableBytes { raw in
                    withUnsafeMutablePointer(to: &peer) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(udp, raw.baseAddress, raw.count, 0, $0, &peerLength)
                        }
                    }
                }
                if count > 0, let reply = answer(Array(buffer[..<count]), overTCP: false) {
                    _ = reply.withUnsafeBytes { raw in
                        withUnsafePointer(to: &peer) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                sendto(udp, raw.baseAddress, raw.count, 0, $0, peerLength)
                            }
                        }
                    }
                }
            }
            if fds[1].revents != 0 {
                let connection = accept(tcp, nil, nil)
                if connection >= 0 {
                    serveTCP(connection)
                    close(connection)
                }
            }
        }
        finished.signal()
    }

    /// One length-prefixed query and its reply (RFC 1035 4.2.2).
    private func serveTCP(_ connection: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let prefix = FakeDNSServer.read(connection, 2) else { return }
        guard let query = FakeDNSServer.read(connection, Int(prefix[0]) << 8 | Int(prefix[1])),
              let reply = answer(query, overTCP: true) else { return }
        let message = [UInt8(reply.count >> 8), UInt8(reply.count & 0xFF)] + reply
        _ = message.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    private static func read(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var octets = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let received = octets.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + filled, count - filled, 0) }
            guard received > 0 else { return nil }
            filled += received
        }
        return octets
    }

    /// The reply to `query`, or nil for none.
    private func answer(_ query: [UInt8], overTCP: Bool) -> [UInt8]? {
        guard let parsed = FakeQuery(query) else { return nil }
        let name = parsed.name.lowercased()
        log.withLock {
            $0.append(Query(flags: parsed.flags, name: name, type: parsed.type, udpSize: parsed.udpSize,
                            dnssecOK: parsed.dnssecOK, overTCP: overTCP))
        }
        if zone.drop.contains(name) { return nil }
        var flags: UInt16 = 0x8000 | (parsed.flags & 0x0100) | 0x0080  // QR, RD copied, RA
        if zone.authentic.contains(name) { flags |= 0x0020 }
        var out = FakeWireWriter()
        out.header(id: parsed.id, flags: flags)
        out.bytes += parsed.questionBytes
        out.names[name] = 12  // the question name follows the 12-octet header

        if zone.servfail.contains(name) {
            out.setRCode(2)
        } else if zone.tcpOnly.contains(name) && !overTCP {
            out.setTruncated()
        } else if let malformation = zone.malformed[name] {
            out.malformedAnswer(malformation)
            return out.bytes  // the message ends with the broken record
        } else {
            var current = name
            var answers = 0
            for _ in 0..<20 {
                let here = zone.records[current] ?? []
                let matching = here.filter { $0.type == parsed.type }
                if !matching.isEmpty || parsed.type == 5 {
                    for record in matching { out.record(owner: current, record); answers += 1 }
                    break
                }
                guard case .cname(let target)? = here.first(where: { $0.type == 5 }) else { break }
                out.record(owner: current, .cname(target))
                answers += 1
                current = target
            }
            out.setCount(answers, at: 6)
            if zone.records[current] == nil { out.setRCode(3) }
        }
        if let size = parsed.udpSize {
            out.opt(size: size, dnssecOK: parsed.dnssecOK)
        }
        return out.bytes
    }

    private static func bound(_ type: __socket_type, ipv6: Bool, port: UInt16) throws -> Int32 {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SetupError(description: "socket failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result: Int32
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr = in6addr_loopback
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard result == 0 else {
            close(fd)
            throw SetupError(description: "bind failed: \(POSIX.errorText(errno))")
        }
        return fd
    }

    private static func localPort(_ fd: Int32, ipv6: Bool) -> UInt16 {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return withUnsafeBytes(of: &address) { raw in
            // sin_port and sin6_port both sit at offset 2, in network order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
    }
}
