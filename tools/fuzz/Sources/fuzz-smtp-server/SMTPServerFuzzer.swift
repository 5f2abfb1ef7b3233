import FuzzSupport
import PosternBase
import PosternCore
@testable import SMTPServer
import TLS

/// The SMTP listener's side of a session: the line reader (`LineReader`, on a
/// stream that delivers the client's octets in reads of fuzzed sizes), the
/// command parser (`ServerCommand`: verbs, paths, ESMTP parameters, xtext) and
/// the session's state machine (`ServerSession`: HELO/EHLO, MAIL, RCPT, AUTH,
/// STARTTLS, DATA, BDAT), as `ServerConnection` drives them.
///
/// The first input bytes choose the read size, the client's address (loopback
/// may relay, 192.0.2.1 may not) and what becomes of each DATA; the rest is
/// what the client sends. A STARTTLS the session accepts is taken as done, so
/// that the TLS-only paths (AUTH, REQUIRETLS) are reached; DATA's content is
/// not read (the message store is the drop's, fuzzed elsewhere), so what
/// follows is read as commands again; a BDAT chunk's octets are read and
/// dropped, as the connection reads them.
///
/// Invariants: every reply is well formed on the wire (a 2xx-5xx code, one
/// CRLF per line and no other CR or LF, lines of at most 512 octets, RFC 5321
/// 4.5.3.1.5); the HELO name holds no space or control character; every
/// sender and recipient of a transaction is a valid mailbox whose SMTP form
/// holds no control character; an original recipient holds none either; no
/// more recipients than the limit, and none without the right to relay.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPServer(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let chunk = input.int(in: 1...300)
    let loopback = input.bool()
    let outcomeSeed = input.byte()
    let client = input.rest()

    var settings = SessionSettings(hostname: "mx.example.org", maxMessageSize: 10 << 20, maxRecipients: 5)
    settings.users = ["user": Array("secret".utf8)]
    settings.tlsAvailable = true
    let address: [UInt8] = loopback ? [127, 0, 0, 1] : [192, 0, 2, 1]
    var session = ServerSession(settings: settings, clientAddress: address, clientText: loopback ? "127.0.0.1" : "192.0.2.1")
    checkWire(session.greeting)
    let reader = LineReader(stream: ScriptedStream(client, chunks: [chunk]))
    var dataCount = 0
    while true {
        let response: ServerSession.Response
        do {
            switch try reader.next(limit: 2048, deadline: { Deadline.after(60) }) {
            case .line(let line, _):
                require(line.count <= 2049, "a command line of \(line.count) octets")
                require(!line.contains(0x0A), "a command line holding an LF")
                response = session.handle(line: line)
            case .tooLong:
                response = session.lineTooLong()
            }
        } catch {
            return 0
        }
        checkWire(response.reply)
        check(session)
        switch response.next {
        case .proceed: continue
        case .close: return 0
        case .startTLS:
            reader.discardBuffered()
            session.tlsStarted()
        case .receiveData:
            dataCount += 1
            let outcome: ServerSession.DataOutcome = switch (Int(outcomeSeed) + dataCount) % 6 {
            case 0: .accepted(id: QueueID(high: 0x0193_0000_0000_0001, low: UInt64(dataCount)))
            case 1: .tooBig
            case 2: .lineTooLong
            case 3: .nul
            case 4: .invalid("header line \u{0D}\u{0A}injected: \(String(decoding: client.prefix(40), as: UTF8.self))")
            default: .temporaryFailure("disk full")
            }
            let finished = session.finishData(outcome)
            checkWire(finished.reply)
            require(session.transaction == nil, "a transaction survives its DATA")
        case .receiveChunk(let size, _), .discardChunk(let size):
            // The chunk's octets are read as the connection reads them, and dropped.
            var remaining = size
            while remaining > 0 {
                guard let piece = try? reader.octets(upTo: remaining, deadline: Deadline.after(60)) else { return 0 }
                remaining -= piece.count
            }
            guard case .receiveChunk(_, let last) = response.next else { continue }
            dataCount += 1
            let id = QueueID(high: 0x0193_0000_0000_0001, low: UInt64(dataCount))
            // Stored or refused before the last chunk; accepted or refused at it.
            let outcome: ServerSession.ChunkOutcome = switch (Int(outcomeSeed) + dataCount) % 3 {
            case 0: last ? .finished(.accepted(id: id)) : .stored(octets: size)
            case 1: .finished(.tooBig)
            default: .finished(.invalid("header line \u{0D}\u{0A}injected: \(String(decoding: client.prefix(40), as: UTF8.self))"))
            }
            let finished = session.finishChunk(outcome, last: last)
            checkWire(finished.reply)
            if finished.next == .close { return 0 }
            require(!last || session.transaction == nil, "a transaction survives its BDAT LAST")
        }
    }
}

func checkWire(_ reply: ServerReply) {
    require((200...599).contains(reply.code), "a reply code \(reply.code)")
    let wire = reply.wire
    var lines = 0
    var start = 0
    for index in wire.indices where wire[index] == 0x0A || wire[index] == 0x0D {
        require(wire[index] == 0x0D && index + 1 < wire.count && wire[index + 1] == 0x0A || wire[index] == 0x0A && index > 0 && wire[index - 1] == 0x0D,
                "a bare CR or LF in a reply: \(shown(String(decoding: wire, as: UTF8.self)))")
        if wire[index] == 0x0A {
            lines += 1
            require(index + 1 - start <= 512, "a reply line of \(index + 1 - start) octets")
            start = index + 1
        }
    }
    require(lines == reply.lines.count && start == wire.count, "a reply of \(reply.lines.count) lines is not as many CRLF lines")
}

func check(_ session: ServerSession) {
    if let name = session.heloName {
        require(!name.isEmpty && !name.contains(" ") && !hasControl(name), "a HELO name \(shown(name))")
    }
    guard let transaction = session.transaction else { return }
    let addresses = (transaction.sender.map { [$0] } ?? []) + transaction.recipients
    for address in addresses {
        let form = address.smtpForm
        require(!hasControl(form), "an address with a control character in a transaction: \(shown(form))")
        require((try? MailboxAddress(parsing: form))?.smtpForm == form, "an address that does not parse again: \(shown(form))")
        require(!address.requiresSMTPUTF8 || transaction.smtputf8, "a non-ASCII address without SMTPUTF8: \(shown(form))")
    }
    for original in transaction.originals.values {
        require(!hasControl(original), "an ORCPT with a control character: \(shown(original))")
    }
    require(transaction.recipients.count <= session.settings.maxRecipients, "\(transaction.recipients.count) recipients")
    require(transaction.recipients.isEmpty || session.mayRelay, "a recipient accepted from a client that may not relay")
    require(!transaction.requireTLS || session.tls, "REQUIRETLS accepted without TLS")
}
