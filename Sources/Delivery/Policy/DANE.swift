import DNS
import PosternCore

/// What DANE says about one MX host (RFC 7672 2.2): the decision table of
/// issue #16, with the lookups that feed it kept apart (`DANE.lookup`) so
/// that the table is tested without DNS.
enum DANEDecision: Sendable, Equatable {
    /// DANE does not apply: a lookup on the way was not DNSSEC-authentic
    /// (RFC 7672 2.2.1, 2.2.2), or the absence of TLSA records is (2.2).
    case notApplicable(String)
    /// Usable TLSA records (RFC 7672 3.1.3): STARTTLS required, the chain
    /// matched against them; `hostnames` are the reference identifiers for
    /// DANE-TA, the TLSA base domain first (3.2.2).
    case usable(records: [TLSARecord], hostnames: [String])
    /// TLSA records exist but none is usable: STARTTLS still required, without
    /// authentication (RFC 7672 2.2: "MUST use TLS ... need not authenticate").
    case unusable
    /// The TLSA lookup failed (SERVFAIL, a bogus answer, a timeout): that host
    /// fails temporarily; never a downgrade to plaintext (RFC 7672 2.2).
    case failed(String)
}

enum DANE {
    /// Whether SMTP may use a TLSA record (RFC 7672 3.1.3): DANE-TA(2) or
    /// DANE-EE(3), a known selector and matching type, and a digest of the
    /// digest's length. PKIX-TA(0) and PKIX-EE(1) are unusable for SMTP.
    static func isUsable(_ record: TLSARecord) -> Bool {
        guard record.usage == 2 || record.usage == 3, record.selector <= 1 else { return false }
        switch record.matchingType {
        case 0: return !record.data.isEmpty
        case 1: return record.data.count == 32
        case 2: return record.data.count == 64
        default: return false
        }
    }

    /// The decision for one host from the authenticity of its MX and address
    /// lookups and the outcome of its TLSA lookup.
    static func decide(host: String, mxAuthentic: Bool, addressesAuthentic: Bool,
                       tlsa: Result<DNSAnswer<TLSARecord>, DNSError>, hostnames: [String]) -> DANEDecision {
        // RFC 7672 2.2.1: an MX RRset that is not secure names hosts an attacker may have chosen.
        guard mxAuthentic else { return .notApplicable("the MX lookup was not DNSSEC-authentic") }
        // RFC 7672 2.2.2: so does an insecure address lookup (or CNAME chain).
        guard addressesAuthentic else { return .notApplicable("the addresses of \(host) are not DNSSEC-authentic") }
        switch tlsa {
        case .success(let answer):
            guard answer.authentic else { return .notApplicable("the TLSA records of \(host) are not DNSSEC-authentic") }
            let usable = answer.records.filter(isUsable)
            return usable.isEmpty ? .unusable : .usable(records: usable, hostnames: hostnames)
        case .failure(.nxdomain(_, let authentic)), .failure(.noData(_, let authentic)):
            return .notApplicable(authentic ? "\(host) has no TLSA records (authenticated denial)"
                                             : "the absence of TLSA records for \(host) is not DNSSEC-authentic")
        case .failure(let error):
            return .failed("looking up the TLSA records of \(host): \(error)")
        }
    }

    /// Looks up the TLSA records of an MX host and decides, following the
    /// RFC's CNAME rules (RFC 7672 2.2.2): when the host is an alias whose
    /// expansion is secure, the records at the expanded name come first, then
    /// those at the name in the MX record; both names are reference
    /// identifiers. Only called when the MX and address lookups were
    /// authentic, so that insecure domains cost no TLSA query.
    static func lookup(host: String, port: UInt16, mxAuthentic: Bool, addressesAuthentic: Bool,
                       resolver: any Resolver) -> DANEDecision {
        guard mxAuthentic, addressesAuthentic else {
            return decide(host: host, mxAuthentic: mxAuthentic, addressesAuthentic: addressesAuthentic,
                          tlsa: .failure(.noData(name: host, authentic: false)), hostnames: [host])
        }
        var target = host
        for _ in 0..<DirectTransport.cnameLimit {
            // A failed or absent CNAME means no (further) alias; an insecure one
            // may not be followed for TLSA (RFC 7672 2.2.2).
            guard let answer = try? resolver.cname(target), answer.authentic, let next = answer.records.first else { break }
            target = next
        }
        var names = [target]
        if target != host { names.append(host) }
        var decision = DANEDecision.notApplicable("no TLSA lookup")
        for (index, base) in names.enumerated() {
            let tlsa = Result { () throws(DNSError) in try resolver.tlsa("_\(port)._tcp.\(base)") }
            decision = decide(host: host, mxAuthentic: true, addressesAuthentic: true, tlsa: tlsa,
                              hostnames: [base] + names.filter { $0 != base })
            // Only an authenticated denial at the expanded name sends the lookup on to the original one.
            guard index == 0, names.count > 1, Self.isAuthenticDenial(tlsa) else { break }
        }
        return decision
    }

    static func isAuthenticDenial(_ result: Result<DNSAnswer<TLSARecord>, DNSError>) -> Bool {
        switch result {
        case .failure(.noData(_, true)), .failure(.nxdomain(_, true)): true
        default: false
        }
    }
}
