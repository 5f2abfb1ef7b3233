// Reading DNS messages in the wire format of RFC 1035 4.1, in Swift.
//
// The reply comes from the network, so nothing in it is trusted: every length
// is checked against the bytes actually received, names are bounded (255
// octets, labels of 63, RFC 1035 2.3.4), compression pointers must point
// backwards and are followed at most `DNSLimits.maxPointerJumps` times, and at
// most `DNSLimits.maxRecords` records are parsed. A violation is a
// `DNSWireError`, which lookups report as `DNSError.other`: never a crash,
// never a loop.

/// The bounds the parser and the lookups keep.
enum DNSLimits {
    /// RFC 1035 2.3.4: a name is at most 255 octets on the wire.
    static let maxNameOctets = 255
    /// RFC 1035 2.3.4: a label is at most 63 octets.
    static let maxLabelOctets = 63
    /// Compression pointers followed while reading one name. A legitimate name
    /// needs at most one per label (127); real ones use one or two.
    static let maxPointerJumps = 64
    /// Records parsed from one message, over all sections.
    static let maxRecords = 512
    /// The largest message: a UDP datagram or a TCP message (RFC 1035 4.2.2).
    static let maxMessageOctets = 65_535
    /// CNAMEs followed inside one answer (RFC 1034 3.6.2 chains); BIND stops at 16 too.
    static let maxCNAMEHops = 16
}

/// Record types Postern asks for (RFC 1035 3.2.2, RFC 3596, RFC 6698) and OPT (RFC 6891).
enum DNSType {
    static let a: UInt16 = 1
    static let cname: UInt16 = 5
    static let mx: UInt16 = 15
    static let txt: UInt16 = 16
    static let aaaa: UInt16 = 28
    static let opt: UInt16 = 41
    static let tlsa: UInt16 = 52
}

/// The Internet class (RFC 1035 3.2.4).
let dnsClassIN: UInt16 = 1

/// A message that breaks the wire format or our bounds.
struct DNSWireError: Error, Equatable, CustomStringConvertible {
    let detail: String
    init(_ detail: String) { self.detail = detail }
    var description: String { detail }
}

/// The fixed 12-octet header (RFC 1035 4.1.1).
struct DNSHeader: Equatable {
    static let size = 12
    let id: UInt16
    let flags: UInt16
    let questionCount: Int
    let answerCount: Int
    let authorityCount: Int
    let additionalCount: Int

    var isResponse: Bool { flags & 0x8000 != 0 }
    var opcode: UInt16 { (flags >> 11) & 0xF }
    var isTruncated: Bool { flags & 0x0200 != 0 }
    /// Authenticated data (RFC 4035 3.2.3): the resolver validated the answer.
    var authenticData: Bool { flags & 0x0020 != 0 }
    /// The low four bits of the RCODE; OPT carries the upper eight (RFC 6891 6.1.3).
    var rcode: UInt16 { flags & 0xF }
}

/// The one question of a query (RFC 1035 4.1.2), with the name in our normal form.
struct DNSQuestion: Equatable {
    let name: String
    let type: UInt16
    let dnsClass: UInt16
}

/// One resource record (RFC 1035 4.1.3). The RDATA stays in the message, because
/// names inside it may point at earlier parts of the message.
struct DNSRecord: Equatable {
    let owner: String
    let type: UInt16
    let dnsClass: UInt16
    let ttl: UInt32
    let rdata: Range<Int>
}

/// A bounds-checked cursor over a message.
struct DNSWireReader {
    let bytes: [UInt8]
    var offset: Int

    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    mutating func u8() throws(DNSWireError) -> UInt8 {
        guard offset < bytes.count else { throw DNSWireError("message truncated") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSWireError) -> UInt16 {
        guard bytes.count - offset >= 2 else { throw DNSWireError("message truncated") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(DNSWireError) -> UInt32 {
        let high = try u16()
        return UInt32(high) << 16 | UInt32(try u16())
    }

    mutating func header() throws(DNSWireError) -> DNSHeader {
        DNSHeader(id: try u16(), flags: try u16(), questionCount: Int(try u16()),
                  answerCount: Int(try u16()), authorityCount: Int(try u16()),
                  additionalCount: Int(try u16()))
    }

    mutating func question() throws(DNSWireError) -> DNSQuestion {
        let name = try name()
        return DNSQuestion(name: name, type: try u16(), dnsClass: try u16())
    }

    /// A resource record; the cursor moves past its RDATA, whose length is checked.
    mutating func record() throws(DNSWireError) -> DNSRecord {
        let owner = try name()
        let type = try u16()
        let dnsClass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        guard bytes.count - offset >= length else { throw DNSWireError("record data runs past the message") }
        defer { offset += length }
        return DNSRecord(owner: owner, type: type, dnsClass: dnsClass, ttl: ttl, rdata: offset..<(offset + length))
    }

    /// A possibly compressed name at the cursor (RFC 1035 4.1.4), in normal form:
    /// lower-case, labels joined by ".", no trailing dot, "" for the root.
    mutating func name() throws(DNSWireError) -> String {
        let (text, end) = try DNSWireReader.name(in: bytes, at: offset)
        offset = end
        return text
    }

    /// Reads the name at `start`; returns it and the offset just after its
    /// in-place part (after the first pointer, if any). The in-place part must
    /// end by `limit` (a record's RDATA end); what pointers lead to may lie
    /// anywhere before.
    ///
    /// Loop protection is double: a pointer must point before itself ("a prior
    /// occurrence", RFC 1035 4.1.4), and at most `maxPointerJumps` are followed.
    /// The 255-octet bound counts the expanded name, so a pointer chain cannot
    /// build a longer one either.
    static func name(in bytes: [UInt8], at start: Int, limit: Int? = nil) throws(DNSWireError) -> (String, Int) {
        let inPlaceLimit = min(limit ?? bytes.count, bytes.count)
        var position = start
        var end: Int? = nil
        var jumps = 0
        var octets = 1  // the root label
        var labels: [String] = []
        while true {
            let bound = end == nil ? inPlaceLimit : bytes.count
            guard position < bound else { throw DNSWireError("name runs past its data") }
            let length = bytes[position]
            switch length & 0xC0 {
            case 0x00:
                if length == 0 {
                    return (labels.joined(separator: "."), end ?? position + 1)
                }
                let count = Int(length)  // at most 63: the top two bits are clear
                guard bound - (position + 1) >= count else { throw DNSWireError("label runs past its data") }
                octets += 1 + count
                guard octets <= DNSLimits.maxNameOctets else { throw DNSWireError("name longer than 255 octets") }
                labels.append(labelText(bytes[(position + 1)..<(position + 1 + count)]))
                position += 1 + count
            case 0xC0:
                guard position + 1 < bound else { throw DNSWireError("compression pointer truncated") }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < position else { throw DNSWireError("compression pointer does not point backwards") }
                jumps += 1
                guard jumps <= DNSLimits.maxPointerJumps else { throw DNSWireError("too many compression pointers") }
                if end == nil { end = position + 2 }
                position = target
            default:
                // 0x40 and 0x80: extended label types (RFC 6891 5), not used in answers.
                throw DNSWireError("unsupported label type")
            }
        }
    }

    /// A label in presentation form (RFC 1035 5.1): ASCII letters lower-cased
    /// (names compare case-insensitively, RFC 4343), and any octet that is not a
    /// printable character, or is "." or "\", as `\DDD`, so that no label can
    /// pass for two or for a different name.
    static func labelText(_ octets: ArraySlice<UInt8>) -> String {
        var text = ""
        text.reserveCapacity(octets.count)
        for octet in octets {
            switch octet {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                text.unicodeScalars.append(Unicode.Scalar(octet + 32))
            case 0x21...0x7E where octet != UInt8(ascii: ".") && octet != UInt8(ascii: "\\"):
                text.unicodeScalars.append(Unicode.Scalar(octet))
            default:
                let digits = String(octet)
                text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return text
    }
}

/// A parsed reply: header, question, answer records, and the full RCODE.
struct DNSMessage {
    let bytes: [UInt8]
    let header: DNSHeader
    let question: DNSQuestion
    let answers: [DNSRecord]
    /// The 12-bit RCODE: the header's four bits and the OPT record's upper eight
    /// (RFC 6891 6.1.3). 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN.
    let rcode: UInt16

    /// Parses every section, so that a reply cut short anywhere is an error, and
    /// finds the OPT record for the extended RCODE.
    init(parsing bytes: [UInt8]) throws(DNSWireError) {
        guard bytes.count <= DNSLimits.maxMessageOctets else { throw DNSWireError("message too large") }
        var reader = DNSWireReader(bytes)
        let header = try reader.header()
        guard header.questionCount == 1 else { throw DNSWireError("expected one question, got \(header.questionCount)") }
        let total = header.answerCount + header.authorityCount + header.additionalCount
        guard total <= DNSLimits.maxRecords else { throw DNSWireError("too many records (\(total))") }
        let question = try reader.question()
        var answers: [DNSRecord] = []
        answers.reserveCapacity(header.answerCount)
        for _ in 0..<header.answerCount {
            answers.append(try reader.record())
        }
        for _ in 0..<header.authorityCount {
            _ = try reader.record()
        }
        var upperRCode: UInt16 = 0
        var sawOPT = false
        for _ in 0..<header.additionalCount {
            let record = try reader.record()
            guard record.type == DNSType.opt else { continue }
            // RFC 6891 6.1.1: at most one OPT, owned by the root.
            guard !sawOPT, record.owner.isEmpty else { throw DNSWireError("malformed OPT record") }
            sawOPT = true
            upperRCode = UInt16(record.ttl >> 24)
        }
        self.bytes = bytes
        self.header = header
        self.question = question
        self.answers = answers
        self.rcode = upperRCode << 4 | header.rcode
    }
}
