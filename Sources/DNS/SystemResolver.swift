import CResolv
import Glibc
import PosternCore

/// The `Resolver` for production: asks the configured recursive resolver, with
/// EDNS0 and the DO bit, and reads RCODE and AD from the raw reply, so that
/// delivery can tell NXDOMAIN from NODATA from SERVFAIL from silence, and a
/// validated answer or denial from an unvalidated one (DANE, RFC 7672 2.1).
///
/// Each lookup:
/// 1. initializes its own `__res_state` with `__res_ninit` (this rereads
///    /etc/resolv.conf, cheap: glibc caches it by modification time);
/// 2. builds the query with `res_nmkquery` and appends the OPT record
///    (`DNSQuery`);
/// 3. sends it to each nameserver in turn, `attempts` rounds, `timeout`
///    seconds per try, over UDP, and over TCP when the reply is truncated
///    (`DNSTransport`, which says why this is not `res_nsend`);
/// 4. parses the reply in Swift, bounds-checked (`DNSMessage`), follows the
///    CNAME chain inside it, and maps the RCODE to `DNSError`.
///
/// Thread safety: lookups block and may run on many threads at once. Nothing
/// is shared between calls: the resolver state lives on the caller's stack and
/// is closed before returning, and every socket is the call's own. glibc's
/// implicit `_res` is per thread but also used by `getaddrinfo` and any library
/// on that thread, so initializing or closing it here would disturb them; a
/// private state per call avoids that, and picks up resolv.conf changes.
public struct SystemResolver: Resolver {
    /// The nameserver to ask, as an IPv4 or IPv6 literal and a port; nil for
    /// the nameservers of /etc/resolv.conf.
    public let nameserver: (host: String, port: UInt16)?
    /// Whether to believe the AD bit. nil: only when every nameserver is on
    /// loopback, because AD from a resolver across a network can be forged by
    /// anyone on the path (RFC 4035 4.9.3, RFC 6698 4.1). Run a validating
    /// resolver (unbound, systemd-resolved) on 127.0.0.1 for DANE.
    public let trustAD: Bool?
    /// Seconds to wait for each try at each nameserver (as resolv.conf
    /// `timeout:`); a lookup waits at most timeout × attempts × nameservers.
    public let timeout: Double
    /// Rounds over the nameservers (as resolv.conf `attempts:`).
    public let attempts: Int

    private let target: Target

    private enum Target: Sendable {
        case system
        case server(DNSServerAddress)
        case invalid(String)
    }

    /// A timeout that is not a positive finite number becomes 5 s, and one over
    /// an hour an hour; attempts are kept within 1...10. An invalid nameserver
    /// literal makes every lookup fail with `.other`.
    public init(nameserver: (host: String, port: UInt16)? = nil, trustAD: Bool? = nil,
                timeout: Double = 5, attempts: Int = 2) {
        self.nameserver = nameserver
        self.trustAD = trustAD
        self.timeout = timeout.isFinite && timeout > 0 ? min(timeout, 3600) : 5
        self.attempts = min(max(attempts, 1), 10)
        if let nameserver {
            if let address = DNSServerAddress(literal: nameserver.host, port: nameserver.port) {
                target = .server(address)
            } else {
                target = .invalid(nameserver.host)
            }
        } else {
            target = .system
        }
    }

    public func mx(_ name: String) throws(DNSError) -> DNSAnswer<MXRecord> {
        try lookup(name, type: DNSType.mx) { message, record throws(DNSWireError) in try message.mx(record) }
    }

    public func a(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try lookup(name, type: DNSType.a) { message, record throws(DNSWireError) in try message.a(record) }
    }

    public func aaaa(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try lookup(name, type: DNSType.aaaa) { message, record throws(DNSWireError) in try message.aaaa(record) }
    }

    public func cname(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try lookup(name, type: DNSType.cname) { message, record throws(DNSWireError) in try message.cname(record) }
    }

    public func txt(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try lookup(name, type: DNSType.txt) { message, record throws(DNSWireError) in try message.txt(record) }
    }

    public func tlsa(_ name: String) throws(DNSError) -> DNSAnswer<TLSARecord> {
        try lookup(name, type: DNSType.tlsa) { message, record throws(DNSWireError) in try message.tlsa(record) }
    }

    /// One query and the reading of its reply.
    private func lookup<Record: Sendable>(
        _ name: String, type: UInt16,
        decode: (DNSMessage, DNSRecord) throws(DNSWireError) -> Record
    ) throws(DNSError) -> DNSAnswer<Record> {
        guard let qname = DNSQuery.normalize(name) else {
            throw .other(name: name, detail: "not a valid domain name")
        }
        var state: __res_state = .init()  // `__res_state()` would call glibc's per-thread accessor
        guard __res_ninit(&state) == 0 else {
            throw .other(name: qname, detail: "cannot initialize the resolver (res_ninit)")
        }
        defer { __res_nclose(&state) }

        let servers: [DNSServerAddress]
        switch target {
        case .system: servers = SystemResolver.nameservers(of: state)
        case .server(let server): servers = [server]
        case .invalid(let host): throw .other(name: qname, detail: "nameserver \(host) is not an IP address")
        }
        guard !servers.isEmpty else { throw .other(name: qname, detail: "no nameserver configured") }
        let trusted = trustAD ?? servers.allSatisfy(\.isLoopback)

        let id = UInt16.random(in: .min ... .max)
        let query: [UInt8]
        do throws(DNSWireError) {
            query = try DNSQuery.make(state: &state, name: qname, type: type, id: id, wantAD: trusted)
        } catch {
            throw .other(name: qname, detail: error.detail)
        }
        let question = DNSQuestion(name: qname, type: type, dnsClass: dnsClassIN)
        switch DNSTransport.exchange(query: query, id: id, question: question, servers: servers,
                                     timeout: timeout, attempts: attempts) {
        case .success(let reply):
            return try SystemResolver.interpret(reply, name: qname, type: type, trusted: trusted, decode: decode)
        case .failure(.timeout):
            throw .timeout(name: qname)
        case .failure(.failed(let detail)):
            throw .other(name: qname, detail: detail)
        }
    }

    /// Maps a reply to records or a `DNSError`. AD counts only when `trusted`;
    /// for NXDOMAIN and NODATA it says the denial was validated (RFC 4035 3.2.3),
    /// which DANE needs to tell "no TLSA" from "cannot know" (RFC 7672 2.2).
    static func interpret<Record: Sendable>(
        _ reply: [UInt8], name: String, type: UInt16, trusted: Bool,
        decode: (DNSMessage, DNSRecord) throws(DNSWireError) -> Record
    ) throws(DNSError) -> DNSAnswer<Record> {
        let message: DNSMessage
        do throws(DNSWireError) {
            message = try DNSMessage(parsing: reply)
        } catch {
            throw .other(name: name, detail: "malformed reply: \(error.detail)")
        }
        let authentic = trusted && message.header.authenticData
        switch message.rcode {
        case 0: break
        case 2: throw .serverFailure(name: name)
        case 3: throw .nxdomain(name: name, authentic: authentic)
        case 5: throw .other(name: name, detail: "query refused (REFUSED)")
        default: throw .other(name: name, detail: "DNS error code \(message.rcode)")
        }
        var records: [Record] = []
        do throws(DNSWireError) {
            let selected = try message.answerRecords(for: name, type: type)
            for record in selected.records {
                records.append(try decode(message, record))
            }
        } catch {
            throw .other(name: name, detail: "malformed reply: \(error.detail)")
        }
        guard !records.isEmpty else { throw .noData(name: name, authentic: authentic) }
        return DNSAnswer(records: records, authentic: authentic)
    }

    /// The nameservers `__res_ninit` read from /etc/resolv.conf: IPv4 ones in
    /// `nsaddr_list`, IPv6 ones in `_u._ext.nsaddrs` (glibc 2.36
    /// resolv_conf.c `update_from_conf`), at most MAXNS (3).
    static func nameservers(of state: __res_state) -> [DNSServerAddress] {
        var servers: [DNSServerAddress] = []
        let count = min(max(Int(state.nscount), 0), Int(MAXNS))
        for index in 0..<count {
            let v4 = withUnsafeBytes(of: state.nsaddr_list) { raw in
                raw.loadUnaligned(fromByteOffset: index * MemoryLayout<sockaddr_in>.stride, as: sockaddr_in.self)
            }
            if v4.sin_family == sa_family_t(AF_INET) {
                let address = withUnsafeBytes(of: v4.sin_addr) { Array($0) }
                servers.append(DNSServerAddress(address: address, port: UInt16(bigEndian: v4.sin_port)))
                continue
            }
            let v6Pointer = withUnsafeBytes(of: state._u._ext.nsaddrs) { raw in
                raw.load(fromByteOffset: index * MemoryLayout<UnsafeMutablePointer<sockaddr_in6>?>.stride,
                         as: UnsafeMutablePointer<sockaddr_in6>?.self)
            }
            if let v6 = v6Pointer?.pointee, v6.sin6_family == sa_family_t(AF_INET6) {
                let address = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
                servers.append(DNSServerAddress(address: address, port: UInt16(bigEndian: v6.sin6_port)))
            }
        }
        return servers
    }

    /// The nameservers lookups with `nameserver: nil` would ask, without asking.
    static func systemNameservers() -> [DNSServerAddress] {
        var state: __res_state = .init()
        guard __res_ninit(&state) == 0 else { return [] }
        defer { __res_nclose(&state) }
        return nameservers(of: state)
    }
}
