import Foundation
import FuzzSupport
import PosternBase
@testable import DSN

/// The DSN composer (`DSNComposer`, RFC 3464 / RFC 6522, RFC 6533), composed
/// from fuzzed plain values (a server's reply text above all, but every field
/// of the report) and read back.
///
/// Invariants, on everything but the returned original (the message's own
/// bytes): CRLF line ends only, no line over 998 octets, no control character;
/// the header section has exactly the fields the composer writes (no value can
/// inject one) and its continuation lines start with white space; the three
/// boundary lines and the closing one are where they belong and nothing else
/// looks like one; the delivery-status part has one block per recipient, with
/// only the fields of RFC 3464 2.3, and its Final-Recipient unfolds to the
/// recipient's cleaned address; the original follows unchanged.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDSN(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let report = makeReport(&input)
    let boundary = "=_postern_fuzz"
    let bytes = DSNComposer.compose(report, boundary: boundary)

    let content: [UInt8] = switch report.returned {
    case .headers(let bytes), .message(let bytes): bytes
    }
    var tail = content
    if !content.isEmpty, content.suffix(2) != [0x0D, 0x0A] { tail += [0x0D, 0x0A] }
    tail += Array("--\(boundary)--\r\n".utf8)
    require(bytes.count >= tail.count && Array(bytes.suffix(tail.count)) == tail, "the DSN does not end with the original and the closing boundary")
    let composed = Array(bytes.prefix(bytes.count - tail.count))

    let lines = crlfLines(composed)
    for line in lines {
        require(line.utf8.count <= 998, "a DSN line of \(line.utf8.count) octets")
        require(!hasControl(line), "a control character in a DSN line: \(shown(line))")
        require(!line.hasPrefix("--\(boundary)") || line == "--\(boundary)", "a line that looks like the boundary: \(shown(line))")
    }
    require(lines.filter { $0 == "--\(boundary)" }.count == 3, "not three boundary lines")

    let header = unfold(Array(lines.prefix { !$0.isEmpty }))
    var expected = ["From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]
    if let original = report.originalMessageID, MessageID.isValid(original) { expected.insert(contentsOf: ["In-Reply-To", "References"], at: 5) }
    require(header.map(\.name) == expected, "the DSN's header fields are \(header.map(\.name))")

    let parts = lines.split(separator: "--\(boundary)", omittingEmptySubsequences: false)
    require(parts.count == 4, "the DSN has \(parts.count - 1) parts")
    let status = Array(parts[2].drop { !$0.isEmpty }.dropFirst())
    let blocks = status.split(separator: "", omittingEmptySubsequences: true).map { unfold(Array($0)) }
    require(blocks.count == 1 + report.recipients.count, "\(blocks.count - 1) recipient blocks for \(report.recipients.count) recipients")
    let perMessage = ["Reporting-MTA", "X-Postern-Queue-ID", "Arrival-Date"]
    require(blocks[0].map(\.name) == perMessage, "the per-message fields are \(blocks[0].map(\.name))")
    let allowed: Set = ["Original-Recipient", "Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code",
                        "Last-Attempt-Date", "Will-Retry-Until"]
    for (block, recipient) in zip(blocks.dropFirst(), report.recipients) {
        require(block.allSatisfy { allowed.contains($0.name) }, "recipient fields \(block.map(\.name))")
        guard let final = block.first(where: { $0.name == "Final-Recipient" }) else { fail("a recipient block without Final-Recipient") }
        let type = recipient.final.unicodeScalars.allSatisfy(\.isASCII) ? "rfc822" : "utf-8"
        require(withoutSpaces(final.value) == withoutSpaces(type + ";" + DSNLines.clean(recipient.final)),
                "Final-Recipient \(shown(final.value)) for \(shown(recipient.final))")
        require(block.filter { $0.name == "Diagnostic-Code" }.count == ((recipient.smtpReply ?? recipient.localDiagnostic) == nil ? 0 : 1),
                "a Diagnostic-Code field too many or missing")
        let status = block.first { $0.name == "Status" }?.value ?? ""
        require(EnhancedCodeSyntax.valid(status), "Status: \(shown(status))")
    }
    return 0
}

func makeReport(_ input: inout FuzzInput) -> DSNReport {
    func date(_ input: inout FuzzInput) -> Date {
        // Years 1970 to about 10000: what an envelope's timestamps can hold.
        Date(timeIntervalSince1970: Double(input.int(in: 0...65535) * 3_869_000 + input.int(in: 0...65535)))
    }
    func optional(_ input: inout FuzzInput) -> String? {
        input.bool() ? input.string() : nil
    }
    let action: DSNReport.Action = input.bool() ? .failed : .delayed
    let international = input.bool()
    let full = input.bool()
    var recipients: [DSNReport.Recipient] = []
    for _ in 0..<input.int(in: 0...4) {
        recipients.append(DSNReport.Recipient(original: optional(&input), final: input.string(), status: optional(&input),
                                              remoteMTA: optional(&input), smtpReply: optional(&input),
                                              localDiagnostic: optional(&input), lastAttempt: input.bool() ? date(&input) : nil))
    }
    let schedule = (0..<input.int(in: 0...3)).map { _ in date(&input) }
    var report = DSNReport(action: action, reportingMTA: input.string(), from: input.string(), to: input.string(),
                           queueID: input.string(), arrival: date(&input), date: date(&input), messageID: input.string(),
                           originalMessageID: optional(&input), recipients: recipients, returned: .headers([]))
    report.international = international
    report.remainingAttempts = schedule
    let original = input.rest()
    report.returned = full ? .message(original) : .headers(original)
    return report
}

/// The text split at CRLF; a line may not hold a bare CR or LF.
func crlfLines(_ bytes: [UInt8]) -> [String] {
    var lines: [String] = []
    var start = 0
    var index = 0
    while index < bytes.count {
        switch bytes[index] {
        case 0x0D:
            require(index + 1 < bytes.count && bytes[index + 1] == 0x0A, "a bare CR in a DSN")
            lines.append(String(decoding: bytes[start..<index], as: UTF8.self))
            index += 2
            start = index
        case 0x0A:
            fail("a bare LF in a DSN")
        default:
            index += 1
        }
    }
    require(start == bytes.count, "a DSN that does not end with CRLF")
    return lines
}

/// Fields of a header section or delivery-status block, unfolded (RFC 5322
/// 2.2.3): a continuation line starts with white space, a field line has a name.
func unfold(_ lines: [String]) -> [(name: String, value: String)] {
    var fields: [(name: String, value: String)] = []
    for line in lines {
        // The first octet, not the first Character: a space followed by a
        // combining mark is one Character in Swift, and still a continuation.
        if line.utf8.first == UInt8(ascii: " ") || line.utf8.first == UInt8(ascii: "\t") {
            require(!fields.isEmpty, "a continuation line before any field: \(shown(line))")
            fields[fields.count - 1].value += line
            continue
        }
        guard let colon = line.firstIndex(of: ":") else { fail("a line that is neither a field nor a continuation: \(shown(line))") }
        let name = String(line[..<colon])
        require(!name.isEmpty && name.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }, "a field name \(shown(name))")
        fields.append((name, String(line[line.index(after: colon)...].drop { $0 == " " })))
    }
    return fields
}

/// Folding breaks at spaces and may add one: compare without them.
func withoutSpaces(_ text: String) -> [Unicode.Scalar] {
    text.unicodeScalars.filter { $0 != " " }
}
