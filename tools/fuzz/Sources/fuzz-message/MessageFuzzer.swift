import FuzzSupport
import PosternBase

/// The message as `sendmail` reads it: the line-ending normalizer
/// (`LineSplitter`), the header section (`HeaderSection`), the recipients of
/// `sendmail -t` (`HeaderCompletion.recipients`, `AddressList`) and the fields
/// the drop adds (`HeaderCompletion.complete`).
///
/// The first input byte chooses the chunk size the message arrives in, the
/// rest is the message. Invariants: lines are the same whatever the chunks
/// (a CR LF split across two reads is one line end); no line holds a CR or LF
/// or exceeds the limit; the stored header section is CRLF throughout and
/// splits back into the same lines; every `-t` recipient is a valid mailbox
/// without control characters; a completed header section still has no bare
/// CR or LF and has `From:`, `Date:` and no `Bcc:`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessage(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let chunk = input.int(in: 1...64)
    let message = input.rest()

    let whole = split(message, chunk: message.count + 1)
    let chunked = split(message, chunk: chunk)
    require(whole == chunked, "lines differ when the message arrives in chunks of \(chunk) octets")
    guard case .lines(let lines) = whole else { return 0 }
    for line in lines {
        require(!hasLineBreak(line), "a split line holds a CR or LF")
        require(line.count <= 998, "a split line of \(line.count) octets")
    }

    var headers = HeaderSection()
    for line in lines {
        guard let kind = try? headers.add(line: line[...]), kind == .header else { break }
    }
    checkSerialized(headers)
    for domain in [nil, "example.org"] {
        guard let recipients = try? HeaderCompletion.recipients(in: headers, completingWith: domain) else { continue }
        for recipient in recipients {
            let form = recipient.smtpForm
            require(!hasControl(form), "a -t recipient with a control character: \(shown(form))")
            require((try? MailboxAddress(parsing: form))?.smtpForm == form, "a -t recipient that does not parse again: \(shown(form))")
        }
    }
    for field in headers.fields { _ = MessageID.extract(fromFieldValue: field.value) }

    let completion = HeaderCompletion(sender: try? MailboxAddress(parsing: "sender@example.org"),
                                      fullName: headers.fields.first.map(\.value), hostname: "host.example.org",
                                      time: 1_796_000_000, queueID: QueueID(high: 0x0193_0000_0000_0001, low: 42))
    var completed = headers
    let messageID = completion.complete(&completed)
    if let messageID {
        require(MessageID.isValid(messageID), "complete() returned an invalid message ID: \(shown(messageID))")
    }
    require(completed.contains("From") && completed.contains("Date") && completed.contains("Message-ID"),
            "a completed header section lacks From, Date or Message-ID")
    require(!completed.contains("Bcc"), "a completed header section keeps Bcc")
    checkSerialized(completed)
    return 0
}

enum Split: Equatable {
    case lines([[UInt8]])
    case tooLong(line: Int)
}

/// The message through a splitter, `chunk` octets per feed, then its end.
func split(_ message: [UInt8], chunk: Int) -> Split {
    var splitter = LineSplitter()
    var lines: [[UInt8]] = []
    do {
        var start = 0
        while start < message.count {
            let end = min(message.count, start + chunk)
            try splitter.feed(Array(message[start..<end])) { lines.append(Array($0)) }
            start = end
        }
        try splitter.finish { lines.append(Array($0)) }
    } catch LineSplitter.Failure.lineTooLong(let line, _) {
        return .tooLong(line: line)
    } catch {
        fail("LineSplitter threw \(error)")
    }
    return .lines(lines)
}

/// The stored header section: CRLF line ends only, and the same lines again.
func checkSerialized(_ headers: HeaderSection) {
    let stored = headers.serialized()
    var lines: [[UInt8]] = []
    var start = 0
    var index = 0
    while index < stored.count {
        if stored[index] == 0x0D {
            require(index + 1 < stored.count && stored[index + 1] == 0x0A, "a bare CR in a stored header section")
            lines.append(Array(stored[start..<index]))
            index += 2
            start = index
        } else {
            require(stored[index] != 0x0A, "a bare LF in a stored header section")
            index += 1
        }
    }
    require(start == stored.count, "a stored header section does not end in CRLF")
    let expected = headers.fields.flatMap(\.lines) + [[]]
    require(lines == expected, "a stored header section does not split back into its lines")
}
