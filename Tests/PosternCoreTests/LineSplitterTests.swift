import Testing
@testable import PosternBase
@testable import PosternCore

struct LineSplitterTests {
    func split(_ chunks: [[UInt8]], limit: Int = 998) throws -> [String] {
        var splitter = LineSplitter(maxLineLength: limit)
        var lines: [String] = []
        for chunk in chunks {
            try splitter.feed(chunk) { lines.append(String(decoding: $0, as: UTF8.self)) }
        }
        try splitter.finish { lines.append(String(decoding: $0, as: UTF8.self)) }
        return lines
    }

    /// CRLF, bare LF, bare CR and a mix all end lines, and CRLF counts once.
    @Test(arguments: [
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\nb\n", ["a", "b"]),
        ("a\rb\r", ["a", "b"]),
        ("a\r\nb\nc\rd", ["a", "b", "c", "d"]),
        ("a\n\nb", ["a", "", "b"]),
        ("a\r\r\nb", ["a", "", "b"]),
        ("\n", [""]),
        ("", []),
    ])
    func lineEndings(_ input: String, _ expected: [String]) throws {
        #expect(try split([Array(input.utf8)]) == expected)
    }

    /// Fed one byte at a time, the result is the same: a CR at the end of one chunk
    /// and an LF at the start of the next are one line end.
    @Test func chunkBoundaries() throws {
        let input = Array("From: a\r\nTo: b\nSubject: c\r\rbody\r\n.\r\nend".utf8)
        let whole = try split([input])
        let dripped = try split(input.map { [$0] })
        #expect(dripped == whole)
        #expect(whole == ["From: a", "To: b", "Subject: c", "", "body", ".", "end"])
    }

    /// A line of exactly the limit passes; one octet more is an error naming the line.
    @Test func lineLimit() throws {
        let ok = String(repeating: "x", count: 998)
        #expect(try split([Array("a\n\(ok)\n".utf8)]) == ["a", ok])
        #expect(throws: LineSplitter.Failure.lineTooLong(line: 2, limit: 998)) {
            try split([Array("a\n\(ok)y\n".utf8)])
        }
        // Split across chunks, the limit still holds.
        #expect(throws: LineSplitter.Failure.lineTooLong(line: 1, limit: 10)) {
            try split([Array("12345".utf8), Array("678901".utf8)], limit: 10)
        }
    }
}
