import CResolv
import PosternCore
import PosternTesting
import Testing
@testable import DNS

/// A reply header (QR, RD, RA) and the question `name` A IN, as raw bytes.
private func replyPrefix(name: String = "example.org", answers: Int = 0, flags: UInt16 = 0x8180) -> FakeWireWriter {
    var out = FakeWireWriter()
    out.header(id: 0x1234, flags: flags)
    out.setCount(answers, at: 6)
    out.name(name)
    out.u16(1)
    out.u16(1)
    return out
}

/// The name at `offset` of `bytes`, or the parser's complaint.
private func nameAt(_ bytes: [UInt8], _ offset: Int) -> Result<String, DNSWireError> {
    do throws(DNSWireError) {
        return .success(try DNSWireReader.name(in: bytes, at: offset).0)
    } catch {
        return .failure(error)
    }
}

/// The error `interpret` maps a reply to, or nil.
private func interpretFailure(_ bytes: [UInt8], name: String = "example.org") -> DNSError? {
    do {
        _ = try SystemResolver.interpret(bytes, name: name, type: DNSType.a, trusted: true) {
            message, record throws(DNSWireError) in try message.a(record)
        }
        return nil
    } catch {
        return error
    }
}

/// A pointer to itself or forwards is refused.
@Test func pointerMustPointBackwards() {
    #expect(nameAt([0xC0, 0x00], 0) == .failure(DNSWireError("compression pointer does not point backwards")))
    #expect(nameAt([0xC0, 0x02, 0x00], 0) == .failure(DNSWireError("compression pointer does not point backwards")))
}

/// A chain of 64 backward pointers is read; 65 are refused.
@Test func pointerJumpLimit() {
    func chain(_ jumps: Int) -> [UInt8] {
        var bytes: [UInt8] = [0]  // the root at offset 0
        for index in 0..<jumps {
            let target = index == 0 ? 0 : 1 + (index - 1) * 2
            bytes += [0xC0 | UInt8(target >> 8), UInt8(target & 0xFF)]
        }
        return bytes
    }
    let ok = chain(64)
    #expect(nameAt(ok, ok.count - 2) == .success(""))
    let tooMany = chain(65)
    #expect(nameAt(tooMany, tooMany.count - 2) == .failure(DNSWireError("too many compression pointers")))
}

/// Names over 255 octets, labels running off the end, and extended label types are refused.
@Test func nameBounds() {
    var long: [UInt8] = []
    for _ in 0..<5 { long += [63] + [UInt8](repeating: UInt8(ascii: "a"), count: 63) }
    long.append(0)
    #expect(nameAt(long, 0) == .failure(DNSWireError("name longer than 255 octets")))
    #expect(nameAt([5, 0x61, 0x62], 0) == .failure(DNSWireError("label runs past its data")))
    #expect(nameAt([0x41, 0], 0) == .failure(DNSWireError("unsupported label type")))
    #expect(nameAt([1, 0x61], 0) == .failure(DNSWireError("name runs past its data")))
}

/// Labels are lower-cased; dots, backslashes and unprintable octets become \DDD.
@Test func labelPresentation() {
    #expect(nameAt([3, 0x41, 0x2E, 0x20, 2, 0x5C, 0xFF, 0], 0) == .success("a\\046\\032.\\092\\255"))
}

/// RDATA lengths are checked: an A record of 3 octets, an MX name past its RDATA.
@Test func rdataBounds() {
    var out = replyPrefix(answers: 1)
    out.bytes += [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 192, 0, 2]
    guard case .other(_, let detail)? = interpretFailure(out.bytes) else {
        Issue.record("a 3-octet A record must fail")
        return
    }
    #expect(detail.contains("A record of 3 octets"))

    var mx = replyPrefix(answers: 1)
    mx.bytes += [0xC0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 3, 0x61, 0x62, 0x63, 0]
    var message: DNSMessage?
    do throws(DNSWireError) { message = try DNSMessage(parsing: mx.bytes) } catch { Issue.record("\(error)") }
    guard let message, let record = message.answers.first else { return }
    #expect(throws: DNSWireError.self) { try message.mx(record) }
}

/// More records than the bound, or a count larger than the message, are refused.
@Test func recordCountBounds() {
    var many = replyPrefix(answers: 600)
    many.bytes += [UInt8](repeating: 0, count: 16)
    #expect(interpretFailure(many.bytes) == .other(name: "example.org", detail: "malformed reply: too many records (600)"))
    let short = replyPrefix(answers: 2)
    guard case .other(_, let detail)? = interpretFailure(short.bytes) else {
        Issue.record("a count past the end must fail")
        return
    }
    #expect(detail.hasPrefix("malformed reply"))
}

/// A CNAME chain of 16 inside one reply is followed; 17 is .other.
@Test func cnameChainLimit() throws {
    var ok = replyPrefix(name: "c0.example", answers: 17)
    for index in 0..<16 {
        ok.record(owner: "c\(index).example", .cname("c\(index + 1).example"))
    }
    ok.record(owner: "c16.example", .a("192.0.2.16"))
    let answer = try SystemResolver.interpret(ok.bytes, name: "c0.example", type: DNSType.a, trusted: false) {
        message, record throws(DNSWireError) in try message.a(record)
    }
    #expect(answer.records == ["192.0.2.16"])

    var out = replyPrefix(name: "c0.example", answers: 17)
    for index in 0..<17 {
        out.record(owner: "c\(index).example", .cname("c\(index + 1).example"))
    }
    guard case .other(_, let detail)? = interpretFailure(out.bytes, name: "c0.example") else {
        Issue.record("a 17-step chain must fail")
        return
    }
    #expect(detail.contains("CNAME chain"))
}

/// An extended RCODE from OPT (BADVERS = 16) is not mistaken for NOERROR.
@Test func extendedRCode() {
    var out = replyPrefix()
    out.setCount(1, at: 10)
    out.bytes += [0, 0, 41, 0x04, 0xD0, 1, 0, 0, 0, 0, 0]
    #expect(interpretFailure(out.bytes) == .other(name: "example.org", detail: "DNS error code 16"))
}

/// Records of another class than IN do not answer.
@Test func otherClassIgnored() {
    var out = replyPrefix(answers: 1)
    out.bytes += [0xC0, 12, 0, 1, 0, 3, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]  // class CH
    #expect(interpretFailure(out.bytes) == .noData(name: "example.org", authentic: false))
}

/// Query names are normalized; impossible ones are refused.
@Test func normalizeNames() {
    #expect(DNSQuery.normalize("Mail.Example.ORG.") == "mail.example.org")
    #expect(DNSQuery.normalize("_25._tcp.mx.example.org") == "_25._tcp.mx.example.org")
    #expect(DNSQuery.normalize(String(repeating: "a", count: 63) + ".org") != nil)
    for bad in ["", ".", "..", "a..b", ".a", "a b", "a\\.b", "ä.example", String(repeating: "a", count: 64)] {
        #expect(DNSQuery.normalize(bad) == nil, "\(bad.debugDescription)")
    }
}

/// The query has our ID, RD, one question, and the OPT record (1232, DO) as its only additional.
@Test func queryBytes() throws {
    var state: __res_state = .init()
    try #require(__res_ninit(&state) == 0)
    defer { __res_nclose(&state) }
    let query = try DNSQuery.make(state: &state, name: "example.org", type: DNSType.tlsa, id: 0xBEEF, wantAD: false)
    let parsed = try #require(FakeQuery(query))
    #expect(parsed.id == 0xBEEF)
    #expect(parsed.flags & 0x0100 != 0)
    #expect(parsed.flags & 0x0020 == 0)
    #expect(parsed.name == "example.org" && parsed.type == 52)
    #expect(parsed.udpSize == 1232 && parsed.dnssecOK)
    #expect(query.count == 12 + 13 + 4 + 11)
}
