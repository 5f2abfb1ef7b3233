import PosternCore
import Testing
@testable import SMTP
@testable import TLS

/// A stream that hands out its bytes one at a time, as a slow or hostile server might.
final class DripStream: ByteStream {
    private var bytes: [UInt8]
    let fileDescriptor: Int32 = -1

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int {
        guard !bytes.isEmpty else { return 0 }
        buffer[0] = bytes.removeFirst()
        return 1
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError) {}
}

struct ReplyReaderTests {
    func replies(_ text: String, count: Int) throws(SMTPError.Failure) -> [SMTPReply] {
        let stream = DripStream(text)
        var reader = ReplyReader()
        var result: [SMTPReply] = []
        for _ in 0..<count { result.append(try reader.read(from: stream, deadline: .after(5))) }
        return result
    }

    /// Multi-line replies drip-fed a byte at a time are assembled whole, and consecutive replies stay apart.
    @Test func dripFedMultiLine() throws {
        let result = try replies("250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n354 go\r\n", count: 2)
        #expect(result[0] == SMTPReply(code: 250, lines: ["mx.example", "PIPELINING", "SIZE 100"]))
        #expect(result[1] == SMTPReply(code: 354, lines: ["go"]))
    }

    /// A bare LF ends a line too, and a code alone is a complete reply.
    @Test func lenientLineEnds() throws {
        let result = try replies("250 ok\n221\r\n", count: 2)
        #expect(result.map(\.code) == [250, 221])
        #expect(result[1].lines == [""])
    }

    /// End of stream in the middle of a reply is a closed connection.
    @Test func truncated() {
        #expect(throws: SMTPError.Failure.self) { try replies("250-first\r\n", count: 1) }
    }

    /// The enhanced code is taken from the first line only when its class matches.
    @Test func enhancedCode() {
        #expect(SMTPReply(code: 550, lines: ["5.1.1 unknown"]).withEnhancedCode().enhanced?.description == "5.1.1")
        #expect(SMTPReply(code: 250, lines: ["5.1.1 odd"]).withEnhancedCode().enhanced == nil)
        #expect(SMTPReply(code: 451, lines: ["4.7.1"]).withEnhancedCode().enhanced?.description == "4.7.1")
        #expect(SMTPReply(code: 451, lines: ["4.7.1000 too long"]).withEnhancedCode().enhanced == nil)
    }

    /// The text form joins lines the way the server sent them.
    @Test func text() {
        #expect(SMTPReply(code: 250, lines: ["a", "b"]).text == "250-a\n250 b")
    }
}
