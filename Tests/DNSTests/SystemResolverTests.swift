import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import DNS

/// The error a lookup threw, or nil when it answered.
private func failure<Record>(_ lookup: () throws(DNSError) -> DNSAnswer<Record>) -> DNSError? {
    do {
        _ = try lookup()
        return nil
    } catch {
        return error
    }
}

private let tlsaData: [UInt8] = (0..<32).map { UInt8($0 * 7 & 0xFF) }

private let zone = FakeDNSServer.Zone(
    records: [
        "example.org": [.mx(20, "mx2.example.org"), .mx(10, "mx1.example.org"),
                        .txt(["v=spf1 ", "ip4:192.0.2.0/24 ", "-all"]), .txt(["second"])],
        "null.example": [.mx(0, "")],
        "mx1.example.org": [.a("192.0.2.1"), .a("192.0.2.2"), .aaaa("2001:db8::1")],
        "mapped.example": [.aaaa("::ffff:192.0.2.3")],
        "_25._tcp.mx1.example.org": [.tlsa(3, 1, 1, tlsaData)],
        "www.example.org": [.cname("alias.example.net")],
        "alias.example.net": [.cname("host.example.com")],
        "host.example.com": [.a("192.0.2.9")],
        "dangling.example": [.cname("missing.example")],
        "loop-a.example": [.cname("loop-b.example")],
        "loop-b.example": [.cname("loop-a.example")],
        "big.example": [.txt([String](repeating: String(repeating: "t", count: 200), count: 10))],
    ],
    servfail: ["broken.example"],
    drop: ["silent.example"],
    authentic: ["example.org", "mx1.example.org", "signed-nowhere.example"],
    malformed: ["truncated.example": .truncated, "loop.example": .compressionLoop],
    tcpOnly: ["big.example"]
)

private func resolver(_ server: FakeDNSServer, trustAD: Bool? = nil, timeout: Double = 2,
                      attempts: Int = 1) -> SystemResolver {
    SystemResolver(nameserver: (host: server.host, port: server.port), trustAD: trustAD,
                   timeout: timeout, attempts: attempts)
}

/// Two MX records come back with their preferences, in the order sent, names decompressed.
@Test func mxWithTwoRecords() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let answer = try resolver(server).mx("example.org")
    #expect(answer.records == [MXRecord(preference: 20, host: "mx2.example.org"),
                               MXRecord(preference: 10, host: "mx1.example.org")])
    #expect(answer.authentic)
}

/// A null MX (RFC 7505) is preference 0 and host "".
@Test func nullMX() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    #expect(try resolver(server).mx("null.example").records == [MXRecord(preference: 0, host: "")])
}

/// A and AAAA records come back as dotted-quad and RFC 5952 text.
@Test func addresses() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    #expect(try system.a("mx1.example.org").records == ["192.0.2.1", "192.0.2.2"])
    #expect(try system.aaaa("mx1.example.org").records == ["2001:db8::1"])
    #expect(try system.aaaa("mapped.example").records == ["::ffff:192.0.2.3"])
}

/// A CNAME chain inside one reply is followed; case and trailing dot of the query do not matter.
@Test func cnameChain() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    #expect(try system.a("www.example.org").records == ["192.0.2.9"])
    #expect(try system.a("WWW.Example.ORG.").records == ["192.0.2.9"])
    #expect(try system.cname("www.example.org").records == ["alias.example.net"])
    #expect(failure { () throws(DNSError) in try system.mx("www.example.org") }
        == .noData(name: "www.example.org", authentic: false))
    #expect(failure { () throws(DNSError) in try system.a("dangling.example") }
        == .nxdomain(name: "dangling.example", authentic: false))
}

/// A CNAME loop inside a reply ends in .other, not a hang.
@Test func cnameLoopInReply() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    guard case .other(let name, let detail)? = failure({ () throws(DNSError) in try resolver(server).a("loop-a.example") }) else {
        Issue.record("a CNAME loop must fail with .other")
        return
    }
    #expect(name == "loop-a.example")
    #expect(detail.contains("CNAME chain"))
}

/// TXT joins the character-strings of one record; two records stay two.
@Test func txtWithSeveralStrings() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    #expect(try resolver(server).txt("example.org").records == ["v=spf1 ip4:192.0.2.0/24 -all", "second"])
}

/// TLSA comes back as usage, selector, matching type and data.
@Test func tlsa() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let records = try resolver(server).tlsa("_25._tcp.mx1.example.org").records
    #expect(records == [TLSARecord(usage: 3, selector: 1, matchingType: 1, data: tlsaData)])
}

/// NXDOMAIN carries AD when the denial was validated, and not otherwise.
@Test func nxdomain() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    #expect(failure { () throws(DNSError) in try system.a("nowhere.example") }
        == .nxdomain(name: "nowhere.example", authentic: false))
    #expect(failure { () throws(DNSError) in try system.tlsa("signed-nowhere.example") }
        == .nxdomain(name: "signed-nowhere.example", authentic: true))
}

/// A name without records of the type is NODATA, with its AD.
@Test func noData() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    #expect(failure { () throws(DNSError) in try system.a("example.org") }
        == .noData(name: "example.org", authentic: true))
    #expect(failure { () throws(DNSError) in try system.mx("host.example.com") }
        == .noData(name: "host.example.com", authentic: false))
}

/// RCODE 2 is a server failure, not a timeout.
@Test func serverFailure() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    #expect(failure { () throws(DNSError) in try resolver(server).mx("broken.example") }
        == .serverFailure(name: "broken.example"))
}

/// Silence gives .timeout after the timeout (0.3 s, one attempt), not later.
@Test func timeout() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let clock = ContinuousClock()
    let start = clock.now
    let error = failure { () throws(DNSError) in try resolver(server, timeout: 0.3, attempts: 1).a("silent.example") }
    let elapsed = clock.now - start
    #expect(error == .timeout(name: "silent.example"))
    #expect(elapsed >= .milliseconds(280))
    #expect(elapsed < .milliseconds(1500))
}

/// Each attempt sends the query again.
@Test func attemptsRetry() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let error = failure { () throws(DNSError) in try resolver(server, timeout: 0.15, attempts: 3).a("silent.example") }
    #expect(error == .timeout(name: "silent.example"))
    #expect(server.queries.count == 3)
}

/// AD is believed from a loopback nameserver by default, and ignored with trustAD: false.
@Test func adTrust() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    #expect(try resolver(server).mx("example.org").authentic)
    #expect(try resolver(server, trustAD: true).mx("example.org").authentic)
    #expect(try !resolver(server, trustAD: false).mx("example.org").authentic)
    #expect(failure { () throws(DNSError) in try resolver(server, trustAD: false).tlsa("signed-nowhere.example") }
        == .nxdomain(name: "signed-nowhere.example", authentic: false))
}

/// The query asks for recursion, carries OPT with size 1232 and DO, and sets AD only when trusting.
@Test func queryFlags() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    _ = try resolver(server).mx("example.org")
    _ = try resolver(server, trustAD: false).mx("example.org")
    let queries = server.queries
    try #require(queries.count == 2)
    for query in queries {
        #expect(query.flags & 0x0100 != 0, "RD")
        #expect(query.udpSize == 1232)
        #expect(query.dnssecOK)
        #expect(query.name == "example.org" && query.type == 15)
    }
    #expect(queries[0].flags & 0x0020 != 0, "AD asked for when trusted")
    #expect(queries[1].flags & 0x0020 == 0, "AD not asked for when not trusted")
}

/// A reply cut short or with a compression loop is .other, never a crash or a hang.
@Test func malformedReplies() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    for name in ["truncated.example", "loop.example"] {
        guard case .other(let reported, let detail)? = failure({ () throws(DNSError) in try system.a(name) }) else {
            Issue.record("\(name) must fail with .other")
            continue
        }
        #expect(reported == name)
        #expect(detail.hasPrefix("malformed reply"))
    }
}

/// A truncated UDP reply (TC) is retried over TCP.
@Test func tcpFallback() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let records = try resolver(server).txt("big.example").records
    #expect(records == [String(repeating: "t", count: 2000)])
    #expect(server.queries.map(\.overTCP) == [false, true])
}

/// An IPv6 loopback nameserver works and is trusted for AD.
@Test func ipv6Nameserver() throws {
    let server = try FakeDNSServer(zone: zone, ipv6: true)
    defer { server.stop() }
    let answer = try resolver(server).a("mx1.example.org")
    #expect(answer.records == ["192.0.2.1", "192.0.2.2"])
    #expect(answer.authentic)
}

/// A nameserver that is not listening gives .other at once (port unreachable), not a timeout.
@Test func closedPort() throws {
    let server = try FakeDNSServer(zone: zone)
    let port = server.port
    server.stop()
    let system = SystemResolver(nameserver: (host: "127.0.0.1", port: port), timeout: 2, attempts: 1)
    guard case .other? = failure({ () throws(DNSError) in try system.a("example.org") }) else {
        Issue.record("a closed port must fail with .other")
        return
    }
}

/// Names that cannot be queried and nameservers that are not IP literals fail with .other, sending nothing.
@Test func invalidInput() throws {
    let server = try FakeDNSServer(zone: zone)
    defer { server.stop() }
    let system = resolver(server)
    for name in ["", ".", "a..b", String(repeating: "a", count: 64) + ".example", "back\\slash.example",
                 "sp ace.example", String(repeating: "abcdefghi.", count: 26)] {
        guard case .other? = failure({ () throws(DNSError) in try system.a(name) }) else {
            Issue.record("\(name.debugDescription) must fail with .other")
            continue
        }
    }
    #expect(server.queries.isEmpty)
    let bad = SystemResolver(nameserver: (host: "localhost", port: server.port))
    guard case .other? = failure({ () throws(DNSError) in try bad.a("example.org") }) else {
        Issue.record("a host name as nameserver must fail with .other")
        return
    }
}

/// The system configuration is read (never queried here): at least one nameserver.
@Test func systemNameserversAreRead() {
    #expect(!SystemResolver.systemNameservers().isEmpty)
}
