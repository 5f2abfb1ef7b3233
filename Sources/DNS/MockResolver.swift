import PosternCore

/// A `Resolver` made of plain data, for unit tests of delivery code.
///
/// It answers like a recursive resolver would: a name absent from every table
/// (or listed in `nxdomains`) does not exist (NXDOMAIN); a name present in some
/// table but without records of the asked type has no data (NODATA, RFC 2308
/// 2.2); a CNAME is followed for A, AAAA, MX, TXT and TLSA and the answer is the
/// target's (RFC 1034 3.6.2), at most `DNSLimits.maxCNAMEHops` times, beyond
/// which (a loop) the lookup fails with `.other`. Errors name the queried name.
///
/// Keys are normalized (lower-case, no trailing dot) at init, and so are the
/// names asked, so tests may spell them either way. The tables are constants:
/// build a new value to change them.
public struct MockResolver: Resolver {
    public let mxRecords: [String: [MXRecord]]
    public let aRecords: [String: [String]]
    public let aaaaRecords: [String: [String]]
    /// Alias -> target. A name with a CNAME has no other data (RFC 1034 3.6.2).
    public let cnames: [String: String]
    public let txtRecords: [String: [String]]
    public let tlsaRecords: [String: [TLSARecord]]
    /// Names that SERVFAIL for every type; checked first, also along a CNAME chain.
    public let serverFailures: Set<String>
    /// Names that time out for every type; checked after `serverFailures`.
    public let timeouts: Set<String>
    /// Names that do not exist, whatever the tables say.
    public let nxdomains: Set<String>
    /// Names whose answers and denials carry AD. Along a CNAME chain every name
    /// must be authentic (RFC 4035 3.2.3: AD covers the whole answer).
    public let authentic: Set<String>
    /// Every answer and denial carries AD.
    public let allAuthentic: Bool

    public init(mx: [String: [MXRecord]] = [:], a: [String: [String]] = [:], aaaa: [String: [String]] = [:],
                cname: [String: String] = [:], txt: [String: [String]] = [:], tlsa: [String: [TLSARecord]] = [:],
                serverFailures: Set<String> = [], timeouts: Set<String> = [], nxdomains: Set<String> = [],
                authentic: Set<String> = [], allAuthentic: Bool = false) {
        self.mxRecords = MockResolver.normalized(mx)
        self.aRecords = MockResolver.normalized(a)
        self.aaaaRecords = MockResolver.normalized(aaaa)
        self.cnames = MockResolver.normalized(cname).mapValues(MockResolver.normalize)
        self.txtRecords = MockResolver.normalized(txt)
        self.tlsaRecords = MockResolver.normalized(tlsa)
        self.serverFailures = Set(serverFailures.map(MockResolver.normalize))
        self.timeouts = Set(timeouts.map(MockResolver.normalize))
        self.nxdomains = Set(nxdomains.map(MockResolver.normalize))
        self.authentic = Set(authentic.map(MockResolver.normalize))
        self.allAuthentic = allAuthentic
    }

    public func mx(_ name: String) throws(DNSError) -> DNSAnswer<MXRecord> {
        try resolve(name, table: mxRecords)
    }

    public func a(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try resolve(name, table: aRecords)
    }

    public func aaaa(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try resolve(name, table: aaaaRecords)
    }

    /// The CNAME at `name` itself, not followed.
    public func cname(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        let key = MockResolver.normalize(name)
        try check(key, queried: key)
        guard let target = cnames[key] else {
            throw .noData(name: key, authentic: isAuthentic(key))
        }
        return DNSAnswer(records: [target], authentic: isAuthentic(key))
    }

    public func txt(_ name: String) throws(DNSError) -> DNSAnswer<String> {
        try resolve(name, table: txtRecords)
    }

    public func tlsa(_ name: String) throws(DNSError) -> DNSAnswer<TLSARecord> {
        try resolve(name, table: tlsaRecords)
    }

    /// Looks `name` up in `table`, following CNAMEs.
    private func resolve<Record: Sendable>(_ name: String, table: [String: [Record]]) throws(DNSError) -> DNSAnswer<Record> {
        let queried = MockResolver.normalize(name)
        var current = queried
        var authentic = true
        var hops = 0
        while true {
            try check(current, queried: queried)
            authentic = authentic && isAuthentic(current)
            if let records = table[current], !records.isEmpty {
                return DNSAnswer(records: records, authentic: authentic)
            }
            guard let target = cnames[current] else {
                throw .noData(name: queried, authentic: authentic)
            }
            hops += 1
            guard hops <= DNSLimits.maxCNAMEHops else {
                throw .other(name: queried, detail: "CNAME chain too long or looping")
            }
            current = target
        }
    }

    /// Throws the failure configured for `name`, if any, reported under `queried`.
    private func check(_ name: String, queried: String) throws(DNSError) {
        if serverFailures.contains(name) { throw .serverFailure(name: queried) }
        if timeouts.contains(name) { throw .timeout(name: queried) }
        if nxdomains.contains(name) || !exists(name) {
            throw .nxdomain(name: queried, authentic: isAuthentic(name))
        }
    }

    /// Whether any table holds `name`.
    private func exists(_ name: String) -> Bool {
        mxRecords[name] != nil || aRecords[name] != nil || aaaaRecords[name] != nil || cnames[name] != nil
            || txtRecords[name] != nil || tlsaRecords[name] != nil
    }

    private func isAuthentic(_ name: String) -> Bool {
        allAuthentic || authentic.contains(name)
    }

    /// Lower-case, without a trailing dot, as `SystemResolver` reports names.
    static func normalize(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    private static func normalized<Value>(_ table: [String: Value]) -> [String: Value] {
        // Two spellings of one name: the later key in iteration order wins; a
        // test that writes both has a bug, but not one worth a crash.
        Dictionary(table.map { (normalize($0.key), $0.value) }, uniquingKeysWith: { _, last in last })
    }
}
