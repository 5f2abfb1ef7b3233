import CResolv
import Glibc

/// Building a query: glibc's `res_nmkquery` writes the header and question
/// (RFC 1035 4.1.1, 4.1.2), then we fix the ID and flags and append the EDNS0
/// OPT record (RFC 6891 6.1.2) that `res_nmkquery`, unlike `res_nquery`, leaves
/// out.
enum DNSQuery {
    /// The UDP payload size we advertise: 1232 octets fits an IPv6 minimum MTU
    /// of 1280 without fragmentation (the DNS Flag Day 2020 value; RFC 9715).
    static let udpPayloadSize: UInt16 = 1232

    /// `name` in our normal form (lower-case ASCII, no trailing dot), or nil
    /// when it cannot be a query name: empty, a label empty or longer than 63
    /// octets, more than 253 characters (255 octets on the wire), or a
    /// character outside printable ASCII. A backslash is refused too, because
    /// `res_nmkquery` would read it as an escape (RFC 1035 5.1) and query a
    /// different name. Internationalized names arrive here as A-labels.
    static func normalize(_ name: String) -> String? {
        var octets = Array(name.utf8)
        if octets.last == UInt8(ascii: ".") { octets.removeLast() }
        guard !octets.isEmpty, octets.count <= DNSLimits.maxNameOctets - 2 else { return nil }
        var labelLength = 0
        for index in octets.indices {
            let octet = octets[index]
            switch octet {
            case UInt8(ascii: "."):
                guard labelLength > 0 else { return nil }
                labelLength = 0
                continue
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                octets[index] = octet + 32
            case UInt8(ascii: "\\"), ...0x20, 0x7F...:
                return nil
            default:
                break
            }
            labelLength += 1
            guard labelLength <= DNSLimits.maxLabelOctets else { return nil }
        }
        guard labelLength > 0 else { return nil }
        return String(decoding: octets, as: UTF8.self)
    }

    /// The query for (`name`, `type`, IN) with ID `id`, RD set, AD set when
    /// `wantAD` (RFC 6840 5.7: a stub that trusts its resolver asks for AD),
    /// and an OPT record with our UDP size and the DO bit (RFC 3225 3), so the
    /// validating resolver sets AD on validated answers (RFC 4035 3.2.3).
    ///
    /// `state` is the caller's own, initialized resolver state: `res_nmkquery`
    /// only reads its options.
    static func make(state: inout __res_state, name: String, type: UInt16, id: UInt16,
                     wantAD: Bool) throws(DNSWireError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 512)
        let length = buffer.withUnsafeMutableBufferPointer { out in
            // QUERY is opcode 0 (RFC 1035 4.1.1).
            res_nmkquery(&state, 0, name, Int32(dnsClassIN), Int32(type), nil, 0, nil,
                         out.baseAddress, Int32(out.count))
        }
        guard length >= DNSHeader.size, length <= buffer.count else {
            throw DNSWireError("res_nmkquery could not build a query for this name")
        }
        var query = Array(buffer[..<Int(length)])
        // Our ID comes from the system CSPRNG (getrandom), not glibc's
        // clock-derived one, against off-path spoofing (RFC 5452 4.3).
        query[0] = UInt8(id >> 8)
        query[1] = UInt8(id & 0xFF)
        query[2] |= 0x01  // RD (RFC 1035 4.1.1)
        if wantAD { query[3] |= 0x20 } else { query[3] &= ~0x20 }
        guard query[10] == 0, query[11] == 0 else { throw DNSWireError("res_nmkquery wrote an additional record") }
        query[11] = 1  // ARCOUNT = 1: the OPT record below
        query += optRecord()
        return query
    }

    /// The OPT pseudo-record (RFC 6891 6.1.2): root owner, TYPE 41, CLASS = UDP
    /// payload size, TTL = extended RCODE 0, version 0, flags with DO (RFC 3225),
    /// no options.
    static func optRecord() -> [UInt8] {
        [
            0,  // owner: the root
            0, UInt8(DNSType.opt),
            UInt8(udpPayloadSize >> 8), UInt8(udpPayloadSize & 0xFF),
            0, 0,  // extended RCODE, version
            0x80, 0,  // DO
            0, 0,  // RDLENGTH
        ]
    }
}
