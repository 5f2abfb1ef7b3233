import DNS
import PosternCore
import Testing
@testable import Delivery

/// DANE for one MX host (RFC 7672 2.2): the decision table, record usability, and the TLSA lookup's CNAME rules.
struct DANETests {
    static let eeSHA256 = TLSARecord(usage: 3, selector: 1, matchingType: 1, data: Array(repeating: 0xAB, count: 32))
    static let taSHA512 = TLSARecord(usage: 2, selector: 0, matchingType: 2, data: Array(repeating: 0xCD, count: 64))
    static let pkixEE = TLSARecord(usage: 1, selector: 1, matchingType: 1, data: Array(repeating: 0xAB, count: 32))

    typealias Lookup = Result<DNSAnswer<TLSARecord>, DNSError>

    enum Expected: Equatable { case notApplicable, usable, unusable, failed }

    static func kind(_ decision: DANEDecision) -> Expected {
        switch decision {
        case .notApplicable: .notApplicable
        case .usable: .usable
        case .unusable: .unusable
        case .failed: .failed
        }
    }

    /// The table: the DNS security of the MX and address lookups (authentic or insecure; bogus answers
    /// come back from a validating resolver as SERVFAIL) crossed with what the TLSA lookup gave.
    @Test(arguments: [
        // Authentic MX and addresses: the TLSA answer decides.
        (true, true, Lookup.success(DNSAnswer(records: [eeSHA256], authentic: true)), Expected.usable),
        (true, true, .success(DNSAnswer(records: [eeSHA256, pkixEE], authentic: true)), .usable),
        (true, true, .success(DNSAnswer(records: [pkixEE], authentic: true)), .unusable),
        (true, true, .success(DNSAnswer(records: [TLSARecord(usage: 3, selector: 1, matchingType: 1, data: [1, 2])], authentic: true)), .unusable),
        (true, true, .failure(.noData(name: "_25._tcp.mx", authentic: true)), .notApplicable),
        (true, true, .failure(.nxdomain(name: "_25._tcp.mx", authentic: true)), .notApplicable),
        (true, true, .failure(.noData(name: "_25._tcp.mx", authentic: false)), .notApplicable),
        (true, true, .success(DNSAnswer(records: [eeSHA256], authentic: false)), .notApplicable),
        (true, true, .failure(.serverFailure(name: "_25._tcp.mx")), .failed),
        (true, true, .failure(.timeout(name: "_25._tcp.mx")), .failed),
        (true, true, .failure(.other(name: "_25._tcp.mx", detail: "malformed")), .failed),
        // An insecure MX or address lookup: DANE does not apply, whatever TLSA says (even a failure).
        (false, true, .success(DNSAnswer(records: [eeSHA256], authentic: true)), .notApplicable),
        (false, true, .failure(.serverFailure(name: "_25._tcp.mx")), .notApplicable),
        (true, false, .success(DNSAnswer(records: [eeSHA256], authentic: true)), .notApplicable),
        (true, false, .failure(.serverFailure(name: "_25._tcp.mx")), .notApplicable),
        (false, false, .success(DNSAnswer(records: [eeSHA256], authentic: true)), .notApplicable),
    ])
    func decisionTable(mxAuthentic: Bool, addressesAuthentic: Bool, tlsa: Lookup, expected: Expected) {
        let decision = DANE.decide(host: "mx.example", mxAuthentic: mxAuthentic, addressesAuthentic: addressesAuthentic,
                                   tlsa: tlsa, hostnames: ["mx.example"])
        #expect(Self.kind(decision) == expected, "\(decision)")
    }

    /// Only usable records go to the handshake: PKIX-TA/EE and malformed digests are left out (RFC 7672 3.1.3).
    @Test func usableRecords() {
        #expect(DANE.isUsable(Self.eeSHA256))
        #expect(DANE.isUsable(Self.taSHA512))
        #expect(DANE.isUsable(TLSARecord(usage: 3, selector: 0, matchingType: 0, data: [0x30, 0x82])))
        #expect(!DANE.isUsable(Self.pkixEE))
        #expect(!DANE.isUsable(TLSARecord(usage: 0, selector: 0, matchingType: 1, data: Array(repeating: 1, count: 32))))
        #expect(!DANE.isUsable(TLSARecord(usage: 3, selector: 2, matchingType: 1, data: Array(repeating: 1, count: 32))))
        #expect(!DANE.isUsable(TLSARecord(usage: 3, selector: 1, matchingType: 3, data: Array(repeating: 1, count: 32))))
        #expect(!DANE.isUsable(TLSARecord(usage: 3, selector: 1, matchingType: 2, data: Array(repeating: 1, count: 32))))
        let decision = DANE.decide(host: "mx.example", mxAuthentic: true, addressesAuthentic: true,
                                   tlsa: .success(DNSAnswer(records: [Self.pkixEE, Self.eeSHA256], authentic: true)), hostnames: ["mx.example"])
        #expect(decision == .usable(records: [Self.eeSHA256], hostnames: ["mx.example"]))
    }

    /// Without authentic MX and address lookups no TLSA query is made at all (the resolver would fail it here).
    @Test func noLookupWhenInsecure() {
        let resolver = MockResolver(a: ["mx.example": ["192.0.2.1"]], serverFailures: ["_25._tcp.mx.example"])
        let decision = DANE.lookup(host: "mx.example", port: 25, mxAuthentic: false, addressesAuthentic: true, resolver: resolver)
        #expect(Self.kind(decision) == .notApplicable)
    }

    /// A securely aliased MX host: TLSA at the expanded name first, and both names are reference identifiers (RFC 7672 2.2.2).
    @Test func cnameTargetFirst() {
        let resolver = MockResolver(a: ["real.example": ["192.0.2.1"]], cname: ["mx.example": "real.example"],
                                    tlsa: ["_25._tcp.real.example": [Self.taSHA512], "_25._tcp.mx.example": [Self.eeSHA256]],
                                    allAuthentic: true)
        let decision = DANE.lookup(host: "mx.example", port: 25, mxAuthentic: true, addressesAuthentic: true, resolver: resolver)
        #expect(decision == .usable(records: [Self.taSHA512], hostnames: ["real.example", "mx.example"]))
    }

    /// No TLSA at the expanded name (authenticated denial): the name in the MX record is tried next.
    @Test func cnameFallsBackToOriginalName() {
        let resolver = MockResolver(a: ["real.example": ["192.0.2.1"]], cname: ["mx.example": "real.example"],
                                    txt: ["_25._tcp.real.example": ["exists"]],
                                    tlsa: ["_25._tcp.mx.example": [Self.eeSHA256]], allAuthentic: true)
        let decision = DANE.lookup(host: "mx.example", port: 25, mxAuthentic: true, addressesAuthentic: true, resolver: resolver)
        #expect(decision == .usable(records: [Self.eeSHA256], hostnames: ["mx.example", "real.example"]))
    }

    /// An insecure alias is not followed: only the original name's TLSA records count.
    @Test func insecureCNAMENotFollowed() {
        let resolver = MockResolver(a: ["real.example": ["192.0.2.1"]], cname: ["mx.example": "real.example"],
                                    tlsa: ["_25._tcp.real.example": [Self.taSHA512]],
                                    authentic: ["real.example", "_25._tcp.mx.example", "_25._tcp.real.example"])
        let decision = DANE.lookup(host: "mx.example", port: 25, mxAuthentic: true, addressesAuthentic: true, resolver: resolver)
        #expect(Self.kind(decision) == .notApplicable, "\(decision)")
    }

    /// A TLSA lookup that fails at the expanded name is a failure, not a reason to look elsewhere.
    @Test func failureAtTargetIsFinal() {
        let resolver = MockResolver(a: ["real.example": ["192.0.2.1"]], cname: ["mx.example": "real.example"],
                                    tlsa: ["_25._tcp.mx.example": [Self.eeSHA256]],
                                    serverFailures: ["_25._tcp.real.example"], allAuthentic: true)
        let decision = DANE.lookup(host: "mx.example", port: 25, mxAuthentic: true, addressesAuthentic: true, resolver: resolver)
        #expect(Self.kind(decision) == .failed)
    }
}
