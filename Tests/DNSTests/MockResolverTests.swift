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

private let tlsaRecord = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: [0xAB, 0xCD])

private let zone = MockResolver(
    mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")],
         "null.example": [MXRecord(preference: 0, host: "")]],
    a: ["mx.example.org": ["127.0.0.1"], "target.example": ["192.0.2.7"]],
    aaaa: ["mx.example.org": ["::1"]],
    cname: ["alias.example": "target.example", "loop1.example": "loop2.example",
            "loop2.example": "loop1.example", "to-nowhere.example": "missing.example",
            "to-failing.example": "failing.example"],
    txt: ["example.org": ["v=spf1 -all"]],
    tlsa: ["_25._tcp.mx.example.org": [tlsaRecord]],
    serverFailures: ["failing.example"],
    timeouts: ["slow.example"],
    nxdomains: ["gone.example"],
    authentic: ["example.org", "_25._tcp.mx.example.org"]
)

/// The short form from the documentation compiles and answers.
@Test func documentedShortForm() throws {
    let mock = MockResolver(mx: ["example.org": [MXRecord(preference: 10, host: "mx.example.org")]],
                            a: ["mx.example.org": ["127.0.0.1"]])
    #expect(try mock.mx("example.org").records == [MXRecord(preference: 10, host: "mx.example.org")])
    #expect(try mock.a("mx.example.org").records == ["127.0.0.1"])
}

/// Each table answers its own type, with the authentic flag of the name.
@Test func eachTableAnswers() throws {
    #expect(try zone.mx("example.org").records == [MXRecord(preference: 10, host: "mx.example.org")])
    #expect(try zone.mx("null.example").records == [MXRecord(preference: 0, host: "")])
    #expect(try zone.a("mx.example.org").records == ["127.0.0.1"])
    #expect(try zone.aaaa("mx.example.org").records == ["::1"])
    #expect(try zone.txt("example.org").records == ["v=spf1 -all"])
    #expect(try zone.tlsa("_25._tcp.mx.example.org").records == [tlsaRecord])
    #expect(try zone.cname("alias.example").records == ["target.example"])
}

/// Names are matched case-insensitively and without a trailing dot, in tables and queries.
@Test func namesAreNormalized() throws {
    let mock = MockResolver(a: ["Host.Example.": ["192.0.2.1"]], nxdomains: ["GONE.example."])
    #expect(try mock.a("host.example").records == ["192.0.2.1"])
    #expect(try mock.a("HOST.EXAMPLE.").records == ["192.0.2.1"])
    #expect(failure { () throws(DNSError) in try mock.a("gone.example") } == .nxdomain(name: "gone.example", authentic: false))
}

/// A name in no table is NXDOMAIN; a name in another table is NODATA.
@Test func nxdomainVersusNoData() {
    #expect(failure { () throws(DNSError) in try zone.a("nowhere.example") } == .nxdomain(name: "nowhere.example", authentic: false))
    #expect(failure { () throws(DNSError) in try zone.a("example.org") } == .noData(name: "example.org", authentic: true))
    #expect(failure { () throws(DNSError) in try zone.cname("example.org") } == .noData(name: "example.org", authentic: true))
    #expect(failure { () throws(DNSError) in try zone.aaaa("target.example") } == .noData(name: "target.example", authentic: false))
}

/// A name listed in nxdomains does not exist even when a table holds it.
@Test func nxdomainsOverrideTables() {
    let mock = MockResolver(a: ["gone.example": ["192.0.2.1"]], nxdomains: ["gone.example"], allAuthentic: true)
    #expect(failure { () throws(DNSError) in try mock.a("gone.example") } == .nxdomain(name: "gone.example", authentic: true))
}

/// SERVFAIL and timeout names fail for every type, as temporary errors.
@Test func serverFailureAndTimeout() {
    #expect(failure { () throws(DNSError) in try zone.mx("failing.example") } == .serverFailure(name: "failing.example"))
    #expect(failure { () throws(DNSError) in try zone.tlsa("failing.example") } == .serverFailure(name: "failing.example"))
    #expect(failure { () throws(DNSError) in try zone.a("slow.example") } == .timeout(name: "slow.example"))
    #expect(failure { () throws(DNSError) in try zone.txt("slow.example") }?.isTemporary == true)
}

/// A CNAME is followed for A, AAAA, MX, TXT and TLSA; the answer is the target's.
@Test func cnameIsFollowed() throws {
    let mock = MockResolver(
        mx: ["target.example": [MXRecord(preference: 5, host: "mx.target.example")]],
        a: ["target.example": ["192.0.2.7"]], aaaa: ["target.example": ["2001:db8::7"]],
        cname: ["alias.example": "middle.example", "middle.example": "target.example"],
        txt: ["target.example": ["hello"]], tlsa: ["target.example": [tlsaRecord]])
    #expect(try mock.a("alias.example").records == ["192.0.2.7"])
    #expect(try mock.aaaa("alias.example").records == ["2001:db8::7"])
    #expect(try mock.mx("alias.example").records == [MXRecord(preference: 5, host: "mx.target.example")])
    #expect(try mock.txt("alias.example").records == ["hello"])
    #expect(try mock.tlsa("alias.example").records == [tlsaRecord])
    #expect(try mock.cname("alias.example").records == ["middle.example"])
}

/// Failures at a CNAME target are reported under the queried name.
@Test func cnameTargetFailures() {
    #expect(failure { () throws(DNSError) in try zone.a("to-nowhere.example") } == .nxdomain(name: "to-nowhere.example", authentic: false))
    #expect(failure { () throws(DNSError) in try zone.a("to-failing.example") } == .serverFailure(name: "to-failing.example"))
    #expect(failure { () throws(DNSError) in try zone.mx("alias.example") } == .noData(name: "alias.example", authentic: false))
}

/// A CNAME loop ends in `.other`, not a hang.
@Test func cnameLoop() {
    guard case .other(let name, _)? = failure({ () throws(DNSError) in try zone.a("loop1.example") }) else {
        Issue.record("a CNAME loop must fail with .other")
        return
    }
    #expect(name == "loop1.example")
}

/// A chain is authentic only if every name on it is.
@Test func authenticAlongChain() throws {
    let mock = MockResolver(a: ["target.example": ["192.0.2.7"]],
                            cname: ["signed.example": "target.example", "unsigned.example": "target.example"],
                            authentic: ["signed.example", "target.example"])
    #expect(try mock.a("target.example").authentic)
    #expect(try mock.a("signed.example").authentic)
    #expect(try !mock.a("unsigned.example").authentic)
}

/// allAuthentic marks answers and denials; without it nothing is authentic.
@Test func allAuthentic() throws {
    let mock = MockResolver(a: ["host.example": ["192.0.2.1"]], allAuthentic: true)
    #expect(try mock.a("host.example").authentic)
    #expect(failure { () throws(DNSError) in try mock.a("none.example") } == .nxdomain(name: "none.example", authentic: true))
    #expect(failure { () throws(DNSError) in try mock.mx("host.example") } == .noData(name: "host.example", authentic: true))
    let plain = MockResolver(a: ["host.example": ["192.0.2.1"]])
    #expect(try !plain.a("host.example").authentic)
}

/// An empty record list in a table counts as no data, not as an answer.
@Test func emptyListIsNoData() {
    let mock = MockResolver(a: ["host.example": []])
    #expect(failure { () throws(DNSError) in try mock.a("host.example") } == .noData(name: "host.example", authentic: false))
}
