import Glibc

// The fake server's side of the wire format (RFC 1035 4.1): reading a query
// and writing a reply. Written independently of the DNS module's parser, so
// the tests do not check the parser against itself.

/// A query as the fake server reads it. Only what a stub sends is accepted:
/// one question, uncompressed, and at most one additional record (OPT).
public struct FakeQuery {
    public let id: UInt16
    public let flags: UInt16
    public let name: String
    public let type: UInt16
    /// The question as sent, echoed verbatim in the reply.
    public let questionBytes: [UInt8]
    public let udpSize: UInt16?
    public let dnssecOK: Bool

    public init?(_ bytes: [UInt8]) {
        guard bytes.count >= 12 else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        id = u16(0)
        flags = u16(2)
        guard u16(4) == 1, u16(6) == 0, u16(8) == 0, u16(10) <= 1 else { return nil }
        var position = 12
        var labels: [String] = []
        while true {
            guard position < bytes.count else { return nil }
            let length = Int(bytes[position])
            guard length < 64, position + 1 + length <= bytes.count else { return nil }
            position += 1
            if length == 0 { break }
            labels.append(String(decoding: bytes[position..<(position + length)], as: UTF8.self))
            position += length
        }
        guard position + 4 <= bytes.count else { return nil }
        name = labels.joined(separator: ".")
        type = u16(position)
        questionBytes = Array(bytes[12..<(position + 4)])
        position += 4
        // The OPT record: root owner (one zero octet), TYPE 41, CLASS = size, TTL with DO.
        if u16(10) == 1, position + 11 <= bytes.count, bytes[position] == 0, u16(position + 1) == 41 {
            udpSize = u16(position + 3)
            dnssecOK = bytes[position + 7] & 0x80 != 0
        } else {
            udpSize = nil
            dnssecOK = false
        }
    }
}

/// Builds a reply, compressing names against every suffix written before.
public struct FakeWireWriter {
    public var bytes: [UInt8] = []
    public var names: [String: Int] = [:]

    public init() {}

    public mutating func u16(_ value: UInt16) {
        bytes += [UInt8(value >> 8), UInt8(value & 0xFF)]
    }

    public mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    /// Header with one question and no records yet.
    public mutating func header(id: UInt16, flags: UInt16) {
        u16(id)
        u16(flags)
        u16(1)
        u16(0)
        u16(0)
        u16(0)
    }

    public mutating func setCount(_ count: Int, at offset: Int) {
        bytes[offset] = UInt8(count >> 8)
        bytes[offset + 1] = UInt8(count & 0xFF)
    }

    public mutating func setRCode(_ rcode: UInt8) {
        bytes[3] = bytes[3] & 0xF0 | rcode
    }

    public mutating func setTruncated() {
        bytes[2] |= 0x02
    }

    /// A name, with a pointer for the longest suffix already written.
    public mutating func name(_ name: String) {
        let labels = name.split(separator: ".").map(String.init)
        for index in labels.indices {
            let suffix = labels[index...].joined(separator: ".")
            if let offset = names[suffix] {
                bytes += [0xC0 | UInt8(offset >> 8), UInt8(offset & 0xFF)]
                return
            }
            if bytes.count < 0x3FFF { names[suffix] = bytes.count }
            bytes.append(UInt8(labels[index].utf8.count))
            bytes += Array(labels[index].utf8)
        }
        bytes.append(0)
    }

    public mutating func record(owner: String, _ record: FakeDNSServer.Record) {
        name(owner)
        u16(record.type)
        u16(1)
        u32(300)
        let lengthAt = bytes.count
        u16(0)
        let start = bytes.count
        switch record {
        case .mx(let preference, let host):
            u16(preference)
            name(host)
        case .a(let text):
            var address = in_addr()
            precondition(inet_pton(AF_INET, text, &address) == 1, "bad IPv4 literal in a test zone")
            bytes += withUnsafeBytes(of: &address) { Array($0) }
        case .aaaa(let text):
            var address = in6_addr()
            precondition(inet_pton(AF_INET6, text, &address) == 1, "bad IPv6 literal in a test zone")
            bytes += withUnsafeBytes(of: &address) { Array($0) }
        case .cname(let target):
            name(target)
        case .txt(let strings):
            for string in strings {
                precondition(string.utf8.count <= 255, "a character-string holds at most 255 octets")
                bytes.append(UInt8(string.utf8.count))
                bytes += Array(string.utf8)
            }
        case .tlsa(let usage, let selector, let matchingType, let data):
            bytes += [usage, selector, matchingType] + data
        }
        setCount(bytes.count - start, at: lengthAt)
    }

    /// The OPT record echoed (RFC 6891 7): our size, the client's DO.
    public mutating func opt(size: UInt16, dnssecOK: Bool) {
        setCount(1, at: 10)
        bytes += [0, 0, 41, UInt8(size >> 8), UInt8(size & 0xFF), 0, 0, dnssecOK ? 0x80 : 0, 0, 0, 0]
    }

    /// One broken A record as the whole answer section; the message ends there.
    public mutating func malformedAnswer(_ malformation: FakeDNSServer.Malformation) {
        setCount(1, at: 6)
        switch malformation {
        case .truncated:
            // Owner = the question name; RDLENGTH says 4, but 2 octets follow.
            bytes += [0xC0, 12]
            u16(1)
            u16(1)
            u32(300)
            u16(4)
            bytes += [192, 0]
        case .compressionLoop:
            // "x" then a pointer to the "x" label: x.x.x.x… forever.
            let start = bytes.count
            bytes += [1, UInt8(ascii: "x"), 0xC0 | UInt8(start >> 8), UInt8(start & 0xFF)]
            u16(1)
            u16(1)
            u32(300)
            u16(4)
            bytes += [192, 0, 2, 1]
        }
    }
}
