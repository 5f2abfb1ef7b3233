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

    /// RFC 3464 2.2.1: the envelope ID opens the per-message fields, as given
    /// (case kept), made one line; without one, no such field.
    @Test func originalEnvelopeID() {
        var report = Self.report()
        report.envelopeID = "Batch 7/Order=42\r\nX-Injected: 1"
        let text = String(decoding: DSNComposer.compose(report, boundary: "B"), as: UTF8.self)
        let status = Self.parts(text, boundary: "B")[1].body
        #expect(status.hasPrefix("Original-Envelope-Id: Batch 7/Order=42"))
        #expect(!status.contains("\r\nX-Injected"))
        #expect(Self.parse(status).field("Reporting-MTA") == "dns; mail.example.org")
        #expect(!String(decoding: DSNComposer.compose(Self.report()), as: UTF8.self).contains("Original-Envelope-Id"))
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

/// Issue #12 items 7 and 10: what a server or a hand-made envelope puts in a
/// report cannot add fields to it, nor make a line longer than 998 octets.
extension DSNComposerTests {
    /// The lines of the composed DSN, after checking that each ends in CRLF, is at
    /// most 998 octets (RFC 5322 2.1.1) and carries no control character (C0, DEL, C1).
    static func checkedLines(_ report: DSNReport) throws -> [String] {
        let bytes = DSNComposer.compose(report, boundary: "B")
        let text = try #require(String(validating: bytes, as: UTF8.self), "the DSN is not UTF-8")
        #expect(text.hasSuffix("\r\n"))
        let lines = text.components(separatedBy: "\r\n").dropLast()
        for line in lines {
            #expect(line.utf8.count <= 998, "a line of \(line.utf8.count) octets")
            let control = line.unicodeScalars.first { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) }
            #expect(control == nil, "control character U+\(String(control?.value ?? 0, radix: 16)) in \(line.prefix(60))")
        }
        return Array(lines)
    }

    static func deliveryStatusBlock(_ lines: [String]) -> Part {
        let text = lines.joined(separator: "\r\n")
        let status = parts(text, boundary: "B")[1].body.components(separatedBy: "\r\n\r\n")[1]
        return parse(status + "\r\n\r\n")
    }

    /// A 5,000-octet reply without a space is cut into continuation lines, none over
    /// 998 octets, losing nothing but gaining the spaces that start each continuation;
    /// a run of two-octet characters is never cut inside one.
    @Test(arguments: [String(repeating: "x", count: 5000), String(repeating: "é", count: 2500)])
    func unbreakableReply(_ run: String) throws {
        var report = Self.report()
        report.recipients = [.init(final: "bob@example.net", status: "5.1.1", remoteMTA: "mx.example.net", smtpReply: "550 " + run)]
        let lines = try Self.checkedLines(report)
        #expect(lines.contains { $0.utf8.count > 900 })   // cut near the limit, not into thousands of short lines
        let diagnostic = try #require(Self.deliveryStatusBlock(lines).field("Diagnostic-Code"))
        #expect(diagnostic.replacingOccurrences(of: " ", with: "") == "smtp;550" + run)
        let body = Self.parts(lines.joined(separator: "\r\n"), boundary: "B")[0].body
        #expect(body.replacingOccurrences(of: "\r\n", with: "").replacingOccurrences(of: " ", with: "").contains("said:550" + run))
    }

    /// A long reply with spaces folds at a space near 78 octets, every continuation starting with one.
    @Test func longReplyWithSpaces() throws {
        var report = Self.report()
        let words = (1...400).map { "word\($0)" }.joined(separator: " ")
        report.recipients = [.init(final: "bob@example.net", smtpReply: "550 5.7.1 " + words)]
        let lines = try Self.checkedLines(report)
        let block = Self.deliveryStatusBlock(lines)
        #expect(block.field("Diagnostic-Code") == "smtp; 550 5.7.1 " + words)
        let start = try #require(lines.firstIndex { $0.hasPrefix("Diagnostic-Code:") })
        let continuations = lines[(start + 1)...].prefix { $0.hasPrefix(" ") }
        #expect(continuations.count > 20)
        #expect(([lines[start]] + continuations).allSatisfy { $0.utf8.count <= 78 })
    }

    /// A three-line reply is one Diagnostic-Code field whose further lines are
    /// continuations (RFC 3464 2.3.6), not fields of their own; the readable part
    /// shows each line indented.
    @Test func multiLineReply() throws {
        var report = Self.report()
        let reply = "550-5.1.1 The email account that you tried to reach does not exist.\n550-5.1.1 Please try\n550 5.1.1 double-checking the recipient's address."
        report.recipients = [.init(final: "bob@example.net", status: "5.1.1", remoteMTA: "mx.example.net", smtpReply: reply)]
        let lines = try Self.checkedLines(report)
        let start = try #require(lines.firstIndex { $0.hasPrefix("Diagnostic-Code:") })
        #expect(lines[start] == "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach")
        #expect(Array(lines[(start + 1)...(start + 3)]) == [" does not exist.", " 550-5.1.1 Please try", " 550 5.1.1 double-checking the recipient's address."])
        #expect(lines[start + 4].hasPrefix("Last-Attempt-Date:") || lines[start + 4].isEmpty)
        #expect(!lines.contains { $0.hasPrefix("550") })
        let block = Self.deliveryStatusBlock(lines)
        #expect(block.field("Diagnostic-Code") == "smtp; " + reply.replacingOccurrences(of: "\n", with: " "))
        #expect(lines.contains("    mx.example.net said: 550-5.1.1 The email account that you tried to reach does not exist."))
        #expect(lines.contains("    550-5.1.1 Please try"))
    }

    /// CR, LF and other controls in the message IDs, addresses, MTA names and replies
    /// add no header or delivery-status field: they are replaced by "?", and a
    /// malformed original Message-ID leaves out In-Reply-To and References.
    @Test func injectedControls() throws {
        var report = Self.report()
        report.to = "alice@example.org\r\nBcc: victim1@evil.example"
        report.from = "MAILER-DAEMON@mail.example.org\nX-Injected: from"
        report.messageID = "dsn-1@mail.example.org>\r\nSubject: pwned"
        report.originalMessageID = "orig@example.org>\r\nBcc: victim2@evil.example\r\nX-Fake: <x"
        report.reportingMTA = "mail.example.org\r\nX-Injected: mta"
        report.recipients = [.init(original: "Bob@Example.NET\rAction: delivered", final: "bob@example.net\r\nStatus: 2.0.0",
                                   status: "5.1.1", remoteMTA: "mx.example.net\nRemote-MTA: dns; fake.example",
                                   smtpReply: "550 no\u{1B}]0;pwned\u{07} \u{9B}31m such user", lastAttempt: Self.arrival)]
        let lines = try Self.checkedLines(report)
        let text = lines.joined(separator: "\r\n")
        let top = Self.parse(text)
        #expect(top.field("To") == "alice@example.org??Bcc: victim1@evil.example")
        #expect(top.field("Message-ID") == "<dsn-1@mail.example.org>??Subject: pwned>")
        #expect(top.field("In-Reply-To") == nil && top.field("References") == nil)
        #expect(top.all("Bcc").isEmpty && top.all("Subject").count == 1 && top.field("X-Injected") == nil)
        let block = Self.deliveryStatusBlock(lines)
        #expect(block.all("Action") == ["failed"] && block.all("Status") == ["5.1.1"] && block.all("Remote-MTA").count == 1)
        #expect(block.field("Original-Recipient") == "rfc822; Bob@Example.NET?Action: delivered")
        #expect(block.field("Diagnostic-Code") == "smtp; 550 no?]0;pwned? ?31m such user")
        for name in ["Bcc:", "X-Injected:", "X-Fake:", "Action: delivered", "Status: 2.0.0", "Remote-MTA: dns; fake"] {
            #expect(!lines.contains { $0.hasPrefix(name) }, "\(name) became a field")
        }
    }
}
