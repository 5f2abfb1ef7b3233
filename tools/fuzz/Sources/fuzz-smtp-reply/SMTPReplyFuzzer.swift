import FuzzSupport
import PosternCore
@testable import SMTP
import TLS

/// What the SMTP client reads from a server: replies (`ReplyReader`, on a
/// stream that delivers the server's bytes in reads of fuzzed sizes), the EHLO
/// reply's extensions (`Extensions`), enhanced status codes, and the SCRAM
/// server messages that come inside 334 replies (`SCRAMMessages`).
///
/// The first two input bytes choose the read sizes, the rest is what the
/// server sends. Invariants: the same replies, and the same end, whatever the
/// read sizes; a reply has a code of 200 to 599 on every line, at most 100
/// lines of at most 4 KiB, none holding an LF; the reader never holds more
/// than one line's bound unread; an enhanced code agrees with the reply's
/// class; parsed extensions are upper-case, and their limits positive.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let chunks = [input.int(in: 1...600), input.int(in: 1...17)]
    let server = input.rest()

    let whole = readAll(server, chunks: [4096])
    let split = readAll(server, chunks: chunks)
    require(whole.replies == split.replies, "replies differ when the server's octets arrive in reads of \(chunks)")
    require(whole.end == split.end, "the reading ends differently in reads of \(chunks): \(whole.end) and \(split.end)")
    for reply in whole.replies {
        checkReply(reply)
        if reply.code == 250 { checkExtensions(Extensions(ehloReply: reply)) }
        for line in reply.lines { checkSCRAM(Array(line.utf8)) }
    }
    return 0
}

struct Reading {
    var replies: [SMTPReply] = []
    var end = ""
}

func readAll(_ bytes: [UInt8], chunks: [Int]) -> Reading {
    let stream = ScriptedStream(bytes, chunks: chunks)
    var reader = ReplyReader()
    var reading = Reading()
    let deadline = Deadline.after(60)
    while true {
        do {
            reading.replies.append(try reader.read(from: stream, deadline: deadline))
        } catch {
            reading.end = "\(error)"
            return reading
        }
    }
}

func checkReply(_ reply: SMTPReply) {
    require((200...599).contains(reply.code), "a reply with code \(reply.code)")
    require(!reply.lines.isEmpty && reply.lines.count <= ReplyReader.maxLines, "a reply of \(reply.lines.count) lines")
    for line in reply.lines {
        require(line.utf8.count <= ReplyReader.maxLineLength, "a reply line of \(line.utf8.count) octets")
        require(!line.utf8.contains(0x0A), "a reply line holding an LF: \(shown(line))")
    }
    let enhanced = reply.withEnhancedCode()
    if let code = enhanced.enhanced {
        require(code.codeClass == reply.code / 100, "enhanced code \(code) believed on a \(reply.code) reply")
        require(EnhancedStatusCode(Substring(code.description)) == code, "enhanced code \(code) does not parse back")
    }
    _ = reply.text
}

func checkExtensions(_ extensions: Extensions) {
    for keyword in extensions.keywords.keys {
        require(!keyword.isEmpty && keyword == keyword.uppercased(), "an extension keyword not upper-cased: \(shown(keyword))")
    }
    if let size = extensions.sizeLimit { require(size > 0, "a SIZE limit of \(size)") }
    if let limit = extensions.recipientLimit { require(limit > 0, "a RCPTMAX limit of \(limit)") }
    for mechanism in extensions.authMechanisms {
        require(mechanism == mechanism.uppercased(), "an AUTH mechanism not upper-cased: \(shown(mechanism))")
    }
}

/// A 334 challenge's text, base64-decoded when it is base64, as SCRAM's two
/// server messages (RFC 5802 7).
func checkSCRAM(_ line: [UInt8]) {
    let message = SCRAMMessages.decodeBase64(line) ?? line
    let nonce = Array("fyko+d2lbbFgONRv9qkxdawL".utf8)
    if let first = try? SCRAMMessages.parseServerFirst(message, clientNonce: nonce, iterationBounds: 4096...600_000) {
        require(first.nonce.starts(with: nonce) && first.nonce.count > nonce.count, "a SCRAM nonce that does not extend ours")
        require(!first.salt.isEmpty && (4096...600_000).contains(first.iterations), "a SCRAM salt or count out of bounds")
    }
    _ = try? SCRAMMessages.parseServerFinal(message)
}
