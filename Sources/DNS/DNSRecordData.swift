import Glibc
import PosternCore

/// Decoding the RDATA of the record types Postern uses, and picking the records
/// that answer a question out of a reply's answer section.
extension DNSMessage {
    /// The records of `type` that answer for `name`, after following the CNAME
    /// chain inside this answer section (RFC 1034 3.6.2 and 4.3.2 step 3a: a
    /// recursive resolver puts the CNAMEs first, then the records at the end of
    /// the chain). Returns the final name as well. For `type == CNAME` nothing
    /// is followed. At most `DNSLimits.maxCNAMEHops` aliases are followed; more,
    /// or a loop, is an error. Records of another class than IN are ignored.
    func answerRecords(for name: String, type: UInt16) throws(DNSWireError) -> (name: String, records: [DNSRecord]) {
        var current = name
        var hops = 0
        while true {
            let matching = answers.filter { $0.dnsClass == dnsClassIN && $0.type == type && $0.owner == current }
            if !matching.isEmpty || type == DNSType.cname {
                return (current, matching)
            }
            guard let alias = answers.first(where: {
                $0.dnsClass == dnsClassIN && $0.type == DNSType.cname && $0.owner == current
            }) else {
                return (current, [])
            }
            hops += 1
            guard hops <= DNSLimits.maxCNAMEHops else { throw DNSWireError("CNAME chain too long or looping") }
            current = try cname(alias)
        }
    }

    /// A name that must fill the rest of the RDATA exactly, starting at `start`.
    private func rdataName(_ record: DNSRecord, at start: Int) throws(DNSWireError) -> String {
        // The in-place part must not run past the RDATA; pointers may still
        // point back into the message (RFC 1035 4.1.4 allows it in MX and CNAME).
        let (name, end) = try DNSWireReader.name(in: bytes, at: start, limit: record.rdata.upperBound)
        guard end == record.rdata.upperBound else { throw DNSWireError("name does not fill the record data") }
        return name
    }

    /// CNAME (RFC 1035 3.3.1): one name.
    func cname(_ record: DNSRecord) throws(DNSWireError) -> String {
        try rdataName(record, at: record.rdata.lowerBound)
    }

    /// MX (RFC 1035 3.3.9): preference and exchange. The null MX `0 .` (RFC 7505)
    /// comes out as preference 0 and host "".
    func mx(_ record: DNSRecord) throws(DNSWireError) -> MXRecord {
        guard record.rdata.count >= 3 else { throw DNSWireError("MX record too short") }
        let start = record.rdata.lowerBound
        let preference = UInt16(bytes[start]) << 8 | UInt16(bytes[start + 1])
        return MXRecord(preference: preference, host: try rdataName(record, at: start + 2))
    }

    /// A (RFC 1035 3.4.1): four octets, in dotted-quad text.
    func a(_ record: DNSRecord) throws(DNSWireError) -> String {
        guard record.rdata.count == 4 else { throw DNSWireError("A record of \(record.rdata.count) octets") }
        return bytes[record.rdata].map { String($0) }.joined(separator: ".")
    }

    /// AAAA (RFC 3596 2.2): sixteen octets, in RFC 5952 text (glibc's
    /// `inet_ntop` lower-cases, drops leading zeros, and shortens the longest
    /// run of two or more zero groups).
    func aaaa(_ record: DNSRecord) throws(DNSWireError) -> String {
        guard record.rdata.count == 16 else { throw DNSWireError("AAAA record of \(record.rdata.count) octets") }
        return DNSMessage.ipv6Text(Array(bytes[record.rdata]))
    }

    /// TXT (RFC 1035 3.3.14): the character-strings of one record concatenated,
    /// as RFC 7208 3.3 (SPF) and RFC 8461 3.1 (MTA-STS) read them. Octets that
    /// are not UTF-8 become U+FFFD.
    func txt(_ record: DNSRecord) throws(DNSWireError) -> String {
        var octets: [UInt8] = []
        var position = record.rdata.lowerBound
        while position < record.rdata.upperBound {
            let length = Int(bytes[position])
            guard record.rdata.upperBound - (position + 1) >= length else {
                throw DNSWireError("TXT character-string runs past the record")
            }
            octets += bytes[(position + 1)..<(position + 1 + length)]
            position += 1 + length
        }
        return String(decoding: octets, as: UTF8.self)
    }

    /// TLSA (RFC 6698 2.1): usage, selector, matching type, association data.
    func tlsa(_ record: DNSRecord) throws(DNSWireError) -> TLSARecord {
        guard record.rdata.count >= 3 else { throw DNSWireError("TLSA record too short") }
        let start = record.rdata.lowerBound
        return TLSARecord(usage: bytes[start], selector: bytes[start + 1], matchingType: bytes[start + 2],
                          data: Array(bytes[(start + 3)..<record.rdata.upperBound]))
    }

    /// Sixteen octets as RFC 5952 text. `inet_ntop` cannot fail with a buffer
    /// of INET6_ADDRSTRLEN; if it did, the full uncompressed form is returned.
    static func ipv6Text(_ octets: [UInt8]) -> String {
        precondition(octets.count == 16, "an IPv6 address has 16 octets")
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { raw in
            for index in 0..<16 { raw[index] = octets[index] }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let result = text.withUnsafeMutableBufferPointer { buffer in
            inet_ntop(AF_INET6, &address, buffer.baseAddress, socklen_t(buffer.count))
        }
        guard result != nil else {
            return stride(from: 0, to: 16, by: 2)
                .map { String(UInt16(octets[$0]) << 8 | UInt16(octets[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
