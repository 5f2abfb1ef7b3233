import FuzzSupport
import PosternCore
@testable import DNS

/// The DNS message parser (`DNSMessage`, RFC 1035 4.1 with compression) and
/// what the resolver makes of a reply (`SystemResolver.interpret`: RCODE, the
/// CNAME chain, the RDATA of A, AAAA, MX, TXT, TLSA and CNAME), on a reply as
/// a hostile or broken server would send it.
///
/// Invariants: a parsed message's records lie inside it; every name, from an
/// owner, the question or RDATA, is printable ASCII in presentation form (no
/// control character, space or empty label: `\DDD` escapes what is not) of
/// at most 255 octets on the wire; A and AAAA addresses are in their textual
/// forms, TLSA data is the RDATA less its three fields; the reply matching
/// (`DNSTransport.matches`) accepts only a response to the same question.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNS(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let reply = FuzzInput(data, count).bytes
    guard let message = try? DNSMessage(parsing: reply) else { return 0 }
    checkName(message.question.name)
    for record in message.answers {
        require(record.rdata.lowerBound >= 0 && record.rdata.upperBound <= reply.count, "a record's data lies outside the message")
        checkName(record.owner)
    }
    let question = message.question
    if message.header.isResponse, message.header.opcode == 0 {
        require(DNSTransport.matches(reply, id: message.header.id, question: question), "a reply does not match its own question")
    }
    require(!DNSTransport.matches(reply, id: message.header.id &+ 1, question: question), "a reply matches another query ID")

    let name = question.name
    let decoders: [(UInt16, (DNSMessage, DNSRecord) throws(DNSWireError) -> Void)] = [
        (DNSType.a, { message, record throws(DNSWireError) in
            let text = try message.a(record)
            require(text.split(separator: ".").count == 4 && text.allSatisfy { $0 == "." || $0.isASCII && $0.isNumber },
                    "an A record as \(shown(text))")
        }),
        (DNSType.aaaa, { message, record throws(DNSWireError) in
            let text = try message.aaaa(record)
            require(!text.isEmpty && text.allSatisfy { $0 == ":" || $0 == "." || $0.isHexDigit }, "an AAAA record as \(shown(text))")
        }),
        (DNSType.mx, { message, record throws(DNSWireError) in checkName(try message.mx(record).host) }),
        (DNSType.cname, { message, record throws(DNSWireError) in checkName(try message.cname(record)) }),
        (DNSType.txt, { message, record throws(DNSWireError) in _ = try message.txt(record) }),
        (DNSType.tlsa, { message, record throws(DNSWireError) in
            let tlsa = try message.tlsa(record)
            require(tlsa.data.count == record.rdata.count - 3, "TLSA data of \(tlsa.data.count) octets in \(record.rdata.count)")
        }),
    ]
    for (type, decode) in decoders {
        for trusted in [false, true] {
            do {
                let answer = try SystemResolver.interpret(reply, name: name, type: type, trusted: trusted, decode: decode)
                require(!answer.records.isEmpty, "an answer without records")
                require(!answer.authentic || trusted, "an untrusted answer taken as authentic")
            } catch {
                _ = error.description
            }
        }
        if let chain = try? message.answerRecords(for: name, type: type) {
            checkName(chain.name)
            for record in chain.records {
                require(record.type == type && record.owner == chain.name, "an answer record of another name or type")
            }
        }
    }
    return 0
}

/// A name in presentation form: printable ASCII without spaces, no empty
/// label, at most 255 octets on the wire (each `\DDD` is one octet).
func checkName(_ name: String) {
    require(name.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }, "a name with an unprintable octet: \(shown(name))")
    guard !name.isEmpty else { return }
    let labels = name.split(separator: ".", omittingEmptySubsequences: false)
    var octets = 1
    for label in labels {
        require(!label.isEmpty, "an empty label in \(shown(name))")
        let escapes = label.filter { $0 == "\\" }.count
        let length = label.utf8.count - 3 * escapes
        require((1...63).contains(length), "a label of \(length) octets in \(shown(name))")
        octets += 1 + length
    }
    require(octets <= 255, "a name of \(octets) octets: \(shown(name))")
}
