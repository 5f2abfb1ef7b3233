import Foundation
import PosternCore
import Testing
@testable import Delivery

/// Maildir delivery into temporary directories.
struct MaildirTransportTests {
    /// A fresh directory, a message file in it with `content`, and a request for it.
    func setUp(_ content: [UInt8], sender: String = "sender@example.org",
               recipients: [String] = ["a@example.net", "b@example.net"]) throws -> (directory: String, request: DeliveryRequest) {
        let directory = NSTemporaryDirectory() + "/postern-maildir-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/message"
        try Data(content).write(to: URL(fileURLWithPath: path))
        let request = DeliveryRequest(id: QueueIDGenerator().next(), messagePath: path, sender: sender, recipients: recipients, domain: "example.net")
        return (directory, request)
    }

    func names(_ path: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
    }

    /// The Maildir is made; one file lands in new/ with the envelope as header
    /// lines and LF line endings; tmp/ is left empty.
    @Test func deliverAndReadBack() throws {
        let (directory, request) = try setUp(Array("Subject: hello\r\nFrom: sender@example.org\r\n\r\nline one\r\nline two\r\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let maildir = directory + "/Maildir"
        let report = MaildirTransport(path: maildir + "/", hostname: "mail.example").deliver(request, cancellation: Cancellation())

        let delivered = try names(maildir + "/new")
        try #require(delivered.count == 1)
        #expect(report.results.map(\.recipient) == ["a@example.net", "b@example.net"])
        for result in report.results {
            #expect(result.outcome == .delivered)
            #expect(result.code == nil)
            #expect(result.text == "delivered to maildir \(maildir)/new/\(delivered[0])")
        }
        let text = try String(contentsOfFile: maildir + "/new/" + delivered[0], encoding: .utf8)
        #expect(text == "Return-Path: <sender@example.org>\nDelivered-To: a@example.net\nDelivered-To: b@example.net\n"
            + "Subject: hello\nFrom: sender@example.org\n\nline one\nline two\n")
        #expect(try names(maildir + "/tmp").isEmpty)
        #expect(try names(maildir + "/cur").isEmpty)
        for sub in ["", "/tmp", "/new", "/cur"] {
            #expect(mode(maildir + sub) == 0o700)
        }
        #expect(mode(maildir + "/new/" + delivered[0]) == 0o600)
    }

    /// The null sender is `<>`; line breaks in addresses cannot add header lines.
    @Test func envelopeHeaderLines() throws {
        let (directory, request) = try setUp(Array("\r\nbody\r\n".utf8), sender: "", recipients: ["x@example.net\r\nBcc: evil@example.com"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let transport = MaildirTransport(path: directory + "/Maildir", hostname: "h")
        #expect(String(decoding: transport.header(for: request), as: UTF8.self)
            == "Return-Path: <>\nDelivered-To: x@example.netBcc: evil@example.com\n")
    }

    /// Two deliveries, two names in the modern form; the host name escaped as the spec says.
    @Test func distinctNames() throws {
        let (directory, request) = try setUp(Array("Subject: x\r\n\r\nx\r\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let transport = MaildirTransport(path: directory + "/Maildir", hostname: "mail/host:25")
        let first = transport.deliver(request, cancellation: Cancellation())
        let second = transport.deliver(request, cancellation: Cancellation())
        #expect(first.results[0].text != second.results[0].text)
        let delivered = try names(directory + "/Maildir/new")
        #expect(delivered.count == 2)
        for name in delivered {
            #expect(name.wholeMatch(of: /[0-9]+\.M[0-9]+P[0-9]+Q[0-9]+\.mail\\057host\\07225/) != nil, "\(name)")
        }
        #expect(MaildirTransport.escape("a:b/c") == "a\\072b\\057c")
    }

    /// A symbolic link in place of new/ is not followed: nothing is written
    /// where it points, and the delivery waits.
    @Test func symlinkedNewRefused() throws {
        let (directory, request) = try setUp(Array("Subject: x\r\n\r\nx\r\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let maildir = directory + "/Maildir"
        let elsewhere = directory + "/elsewhere"
        for path in [maildir, maildir + "/tmp", maildir + "/cur", elsewhere] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(atPath: maildir + "/new", withDestinationPath: elsewhere)
        let report = MaildirTransport(path: maildir, hostname: "h").deliver(request, cancellation: Cancellation())
        #expect(report.results.allSatisfy { $0.outcome == .deferred })
        #expect(report.results[0].text == "maildir \(maildir): \(maildir)/new is a symbolic link; refusing to follow it")
        #expect(try names(elsewhere).isEmpty)
        #expect(try names(maildir + "/tmp").isEmpty)
    }

    /// A Maildir that cannot be made (its parent is missing) defers.
    @Test func missingParentDeferred() throws {
        let (directory, request) = try setUp(Array("Subject: x\r\n\r\nx\r\n".utf8))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let maildir = directory + "/missing/Maildir"
        let report = MaildirTransport(path: maildir, hostname: "h").deliver(request, cancellation: Cancellation())
        #expect(report.results.allSatisfy { $0.outcome == .deferred && $0.code == nil })
        #expect(report.results[0].text == "maildir \(maildir): create \(maildir): No such file or directory")
    }

    /// A missing message file defers too.
    @Test func missingMessageDeferred() throws {
        let (directory, request) = try setUp([])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.removeItem(atPath: request.messagePath)
        let report = MaildirTransport(path: directory + "/Maildir", hostname: "h").deliver(request, cancellation: Cancellation())
        #expect(report.results[0].outcome == .deferred)
        #expect(report.results[0].text.hasSuffix("open \(request.messagePath): No such file or directory"))
    }

    /// CRLF split between blocks, a bare CR, and a CR at the very end.
    @Test func lineEndingsAcrossBlocks() {
        var pending = false
        var output: [UInt8] = []
        for block in ["a\r", "\nb\r", "c\r", "\r", "\n", "\r"] {
            let input = Array(block.utf8)
            var buffer = [UInt8](repeating: 0, count: input.count + 1)
            let count = input.withUnsafeBytes { raw in
                buffer.withUnsafeMutableBytes { MaildirTransport.convertLineEndings(raw, into: $0, pendingCR: &pending) }
            }
            output += buffer[..<count]
        }
        #expect(pending)
        #expect(output == Array("a\nb\rc\r\n".utf8))
    }

    /// 10 MiB go through the 64 KiB blocks intact, with a CRLF split across
    /// the first block boundary.
    @Test func largeMessage() throws {
        var message = Data(capacity: 10 * 1024 * 1024 + 70_000)
        var expected = Data(capacity: 10 * 1024 * 1024 + 70_000)
        expected.append(contentsOf: Array("Return-Path: <sender@example.org>\nDelivered-To: a@example.net\n".utf8))
        let first = Data(repeating: 0x41, count: MaildirTransport.blockSize - 1)
        message.append(first + Data("\r\n".utf8))
        expected.append(first + Data("\n".utf8))
        var line = 0
        while message.count < 10 * 1024 * 1024 {
            let text = String(format: "line %08d ", line) + String(repeating: "x", count: 64)
            message.append(Data((text + "\r\n").utf8))
            expected.append(Data((text + "\n").utf8))
            line += 1
        }
        let (directory, request) = try setUp([UInt8](message), recipients: ["a@example.net"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let report = MaildirTransport(path: directory + "/Maildir", hostname: "h").deliver(request, cancellation: Cancellation())
        #expect(report.results[0].outcome == .delivered)
        let delivered = try names(directory + "/Maildir/new")
        try #require(delivered.count == 1)
        let stored = try Data(contentsOf: URL(fileURLWithPath: directory + "/Maildir/new/" + delivered[0]))
        #expect(stored.count == expected.count)
        #expect(stored == expected)
    }
}
