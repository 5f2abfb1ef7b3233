import Foundation
import PosternCore
import Testing
@testable import DSN

/// The composed DSN, taken apart again by a small MIME reader of our own
/// (the integration tests use Python's email package as an independent one).
struct DSNComposerTests {
    static let arrival = Date(timeIntervalSince1970: 1_764_386_254)
    static let headers = Array("From: alice@example.org\r\nTo: bob@example.net\r\nSubject: hi\r\nMessage-ID: <orig@example.org>\r\n\r\n".utf8)

    static func report(_ action: DSNReport.Action = .failed) -> DSNReport {
        DSNReport(action: action, reportingMTA: "mail.example.org", from: "MAILER-DAEMON@mail.example.org",
                  to: "alice@example.org", queueID: "01KB4Q3F2Z7J4X9V0M2C8D6E5F", arrival: arrival,
                  date: arrival.addingTimeInterval(60), messageID: "dsn-1@mail.example.org",
                  originalMessageID: "orig@example.org",
                  recipients: [
                      .init(original: "Bob@Example.NET", final: "bob@example.net", status: "5.1.1", remoteMTA: "mx.example.net",
                            smtpReply: "550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
                            lastAttempt: arrival.addingTimeInterval(30)),
                      .init(final: "carol@example.com", localDiagnostic: "connection refused", lastAttempt: arrival.addingTimeInterval(30)),
                  ],
                  returned: .headers(headers))
    }

    /// A message split into its header fields (unfolded) and body.
    struct Part {
        var fields: [(String, String)] = []
        var body = ""
        func field(_ name: String) -> String? { fields.first { $0.0.lowercased() == name.lowercased() }?.1 }
        func all(_ name: String) -> [String] { fields.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    }

    static func parse(_ text: String) -> Part {
        var part = Part()
        guard let end = text.range(of: "\r\n\r\n") else { return Part(body: text) }
        let head = text[..<end.lowerBound].replacingOccurrences(of: "\r\n ", with: " ").replacingOccurrences(of: "\r\n\t", with: " ")
        for line in head.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            part.fields.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
        }
        part.body = String(text[end.upperBound...])
        return part
    }

    static func parts(_ message: String, boundary: String) -> [Part] {
        // Note: Swift strings treat CRLF as one Character, so the leading line end
        // is removed as a string, not by counting characters.
        message.components(separatedBy: "--\(boundary)").dropFirst().dropLast().map { chunk in
            parse(chunk.hasPrefix("\r\n") ? String(chunk.dropFirst()) : chunk)
        }
    }

    /// The failure DSN has the RFC 3464 structure and every field the issue lists.
    @Test func failureStructure() {
        let text = String(decoding: DSNComposer.compose(Self.report(), boundary: "BOUNDARY"), as: UTF8.self)
        let top = Self.parse(text)
        #expect(top.field("From") == "MAILER-DAEMON@mail.example.org")
        #expect(top.field("To") == "alice@example.org")
        #expect(top.field("Subject") == "Undelivered mail returned to sender")
        #expect(top.field("Message-ID") == "<dsn-1@mail.example.org>")
        #expect(top.field("In-Reply-To") == "<orig@example.org>" && top.field("References") == "<orig@example.org>")
        #expect(top.field("Auto-Submitted") == "auto-replied")
        #expect(top.field("MIME-Version") == "1.0")
        #expect(top.field("Date") == "Sat, 29 Nov 2025 03:18:34 +0000")
        #expect(top.field("Content-Type") == "multipart/report; report-type=delivery-status; boundary=\"BOUNDARY\"")

        let parts = Self.parts(text, boundary: "BOUNDARY")
        #expect(parts.count == 3)
        #expect(parts[0].field("Content-Type") == "text/plain; charset=utf-8")
        #expect(parts[0].body.contains("<bob@example.net>:\r\n    mx.example.net said: 550 5.1.1"))
        #expect(parts[0].body.contains("<carol@example.com>:\r\n    connection refused"))
        #expect(parts[1].field("Content-Type") == "message/delivery-status")
        #expect(parts[2].field("Content-Type") == "text/rfc822-headers")
        #expect(parts[2].body.hasPrefix("From: alice@example.org\r\n"))

        let blocks = parts[1].body.components(separatedBy: "\r\n\r\n").map { Self.parse($0 + "\r\n\r\n") }
        #expect(blocks[0].field("Reporting-MTA") == "dns; mail.example.org")
        #expect(blocks[0].field("Arrival-Date") == "Sat, 29 Nov 2025 03:17:34 +0000")
        #expect(blocks[1].field("Original-Recipient") == "rfc822; Bob@Example.NET")
        #expect(blocks[1].field("Final-Recipient") == "rfc822; bob@example.net")
        #expect(blocks[1].field("Action") == "failed")
        #expect(blocks[1].field("Status") == "5.1.1")
        #expect(blocks[1].field("Remote-MTA") == "dns; mx.example.net")
        #expect(blocks[1].field("Diagnostic-Code") == "smtp; 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table")
        #expect(blocks[1].field("Last-Attempt-Date") == "Sat, 29 Nov 2025 03:18:04 +0000")
        #expect(blocks[1].field("Will-Retry-Until") == nil)
        #expect(blocks[2].field("Status") == "5.0.0")
        #expect(blocks[2].field("Diagnostic-Code") == "X-Postern; connection refused")
        #expect(blocks[2].field("Original-Recipient") == nil)
    }

    /// Every line is CRLF-terminated and short: the DSN goes through the same SMTP checks as any message.
    @Test func wireFormat() {
        let bytes = DSNComposer.compose(Self.report())
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        #expect(text.hasSuffix("--\r\n"))
    }

    /// The delayed DSN states the real remaining attempt times and Will-Retry-Until from the last one.
    @Test func delayedSchedule() {
        var report = Self.report(.delayed)
        report.remainingAttempts = [7200, 14400, 28800].map { Self.arrival.addingTimeInterval($0) }
        report.recipients = [.init(final: "bob@example.net", status: "4.2.0", remoteMTA: "mx.example.net",
                                   smtpReply: "451 4.2.0 try later", lastAttempt: Self.arrival)]
        let text = String(decoding: DSNComposer.compose(report, boundary: "B"), as: UTF8.self)
        #expect(Self.parse(text).field("Subject") == "Delayed mail: delivery is still being attempted")
        let parts = Self.parts(text, boundary: "B")
        #expect(parts[0].body.contains("The remaining attempts are due at 2025-11-29 05:17 UTC, 2025-11-29 07:17 UTC, 2025-11-29 11:17 UTC."))
        let block = Self.parse(parts[1].body.components(separatedBy: "\r\n\r\n")[1] + "\r\n\r\n")
        #expect(block.field("Action") == "delayed")
        #expect(block.field("Status") == "4.2.0")
        #expect(block.field("Will-Retry-Until") == "Sat, 29 Nov 2025 11:17:34 +0000")
    }

    /// For SMTPUTF8 originals the RFC 6533 global types and utf-8 address type are used.
    @Test func international() {
        var report = Self.report()
        report.international = true
        report.recipients = [.init(final: "jürgen@example.de", status: "5.1.1", smtpReply: "550 no")]
        report.returned = .message(Array("Subject: grüße\r\n\r\nhallo\r\n".utf8))
        let text = String(decoding: DSNComposer.compose(report, boundary: "B"), as: UTF8.self)
        let parts = Self.parts(text, boundary: "B")
        #expect(parts[1].field("Content-Type") == "message/global-delivery-status")
        #expect(parts[1].body.contains("Final-Recipient: utf-8; jürgen@example.de"))
        #expect(parts[2].field("Content-Type") == "message/global")
        #expect(parts[2].field("Content-Transfer-Encoding") == "8bit")
    }

    /// A returned whole message is message/rfc822; a malformed status falls back to the class default.
    @Test func wholeMessageAndStatusDefault() {
        var report = Self.report()
        report.returned = .message(Array("Subject: x\r\n\r\nbody\r\n".utf8))
        report.recipients = [.init(final: "a@b.example", status: "9.9.9", smtpReply: "554 no")]
        let text = String(decoding: DSNComposer.compose(report, boundary: "B"), as: UTF8.self)
        let parts = Self.parts(text, boundary: "B")
        #expect(parts[2].field("Content-Type") == "message/rfc822")
        #expect(parts[2].body.hasSuffix("body\r\n"))
        #expect(parts[1].body.contains("Status: 5.0.0"))
    }
}
