import Foundation
import Testing
@testable import PosternBase
@testable import PosternCore

struct HeaderTests {
    func section(_ text: String) throws -> (HeaderSection, [HeaderSection.LineKind]) {
        var headers = HeaderSection()
        var kinds: [HeaderSection.LineKind] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let kind = try headers.add(line: Array(line.utf8)[...])
            kinds.append(kind)
            if kind != .header { break }
        }
        return (headers, kinds)
    }

    func completion(sender: String? = "alice@example.org", name: String? = nil) throws -> HeaderCompletion {
        HeaderCompletion(sender: try sender.map { try MailboxAddress(parsing: $0) }, fullName: name,
                         hostname: "host.example", date: Date(timeIntervalSince1970: 1_764_386_254),
                         queueID: QueueID("01KB4Q3F2Z0000000000000000")!)
    }

    /// Folded fields unfold into one value; the empty line ends the section.
    @Test func foldingAndSeparator() throws {
        let (headers, kinds) = try section("Subject: one\n two\nTo: a@x\n\nbody")
        #expect(kinds == [.header, .header, .header, .separator])
        #expect(headers.values(of: "subject") == ["one two"])
        #expect(headers.fields.count == 2)
    }

    /// A line that is not a header field ends the section and belongs to the body.
    @Test func bodyWithoutSeparator() throws {
        let (_, kinds) = try section("To: a@x\nthis is text\n")
        #expect(kinds == [.header, .body])
        let (_, continuation) = try section(" leading space\n")
        #expect(continuation == [.body])
    }

    /// An mbox "From " line before the headers is dropped.
    @Test func mboxFromLine() throws {
        let (headers, _) = try section("From alice Sun Nov 29 03:17:34 2026\nTo: a@x\n\n")
        #expect(headers.fields.map(\.name) == ["To"])
    }

    /// Missing From, Date and Message-ID are added; present ones are kept as they are.
    @Test func addsOnlyWhatIsMissing() throws {
        var (headers, _) = try section("To: b@example.net\n\n")
        let id = try completion().complete(&headers)
        #expect(headers.values(of: "From") == ["alice@example.org"])
        #expect(headers.values(of: "Date") == ["Sat, 29 Nov 2025 03:17:34 +0000"])
        #expect(headers.values(of: "Message-ID") == ["<01KB4Q3F2Z0000000000000000@host.example>"])
        #expect(id == "01KB4Q3F2Z0000000000000000@host.example")

        var (full, _) = try section("From: Me <me@x>\nDate: yesterday\nMessage-ID: <abc@x>\n\n")
        let kept = try completion().complete(&full)
        #expect(full.values(of: "From") == ["Me <me@x>"])
        #expect(full.values(of: "Date") == ["yesterday"])
        #expect(full.fields.count == 3)
        #expect(kept == "abc@x")
    }

    /// A generated From carries the full name, quoted or encoded as needed; the null sender becomes MAILER-DAEMON.
    @Test func generatedFrom() throws {
        #expect(try completion(name: "Alice Example").fromValue == "Alice Example <alice@example.org>")
        #expect(try completion(name: "Example, Alice").fromValue == "\"Example, Alice\" <alice@example.org>")
        #expect(try completion(name: "Zoë").fromValue == "=?UTF-8?B?Wm/Dqw==?= <alice@example.org>")
        // RFC 2047 2: no encoded word over 75 characters; a long name is several, of whole characters.
        let long = String(repeating: "Zoë ", count: 30)
        let words = try completion(name: long).fromValue.split(separator: " ").filter { $0.hasPrefix("=?") }
        #expect(words.count > 1 && words.allSatisfy { $0.count <= 75 })
        #expect(HeaderCompletion.displayName("é") == "=?UTF-8?B?w6k=?=")
        #expect(try completion(name: "Evil\r\nBcc: x@y").fromValue == "\"EvilBcc: x@y\" <alice@example.org>")
        #expect(try completion(sender: nil).fromValue == "MAILER-DAEMON@host.example")
    }

    /// -t takes To, Cc and Bcc in order, and Bcc disappears from the stored message.
    @Test func extractRecipientsAndRemoveBcc() throws {
        var (headers, _) = try section("To: A <a@x.example>, b@y.example\nCc: team: c@z.example;\nBcc: hidden@w.example\nSubject: s\n\n")
        let recipients = try HeaderCompletion.recipients(in: headers).map(\.smtpForm)
        #expect(recipients == ["a@x.example", "b@y.example", "c@z.example", "hidden@w.example"])
        try completion().complete(&headers)
        #expect(!headers.contains("Bcc"))
        #expect(!String(decoding: headers.serialized(), as: UTF8.self).contains("hidden"))
    }

    /// A malformed recipient header is an error, not silently skipped.
    @Test func badRecipientHeader() throws {
        let (headers, _) = try section("To: <unterminated@x\n\n")
        #expect(throws: AddressError.self) { try HeaderCompletion.recipients(in: headers) }
    }

    /// The serialized section ends every line with CRLF and closes with an empty line.
    @Test func serialization() throws {
        let (headers, _) = try section("Subject: a\n b\nTo: c@d\n\n")
        #expect(String(decoding: headers.serialized(), as: UTF8.self) == "Subject: a\r\n b\r\nTo: c@d\r\n\r\n")
    }
}
