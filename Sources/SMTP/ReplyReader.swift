import PosternCore
import TLS

/// Reads SMTP replies from a stream, bounded against hostile servers.
///
/// RFC 5321 4.5.3.1.5 limits a reply line to 512 octets; real servers exceed it
/// now and then, so up to 4 KiB is accepted and anything longer, a reply of more
/// than 100 lines, or a line that is not `DDD` followed by a space or hyphen is a
/// protocol error. Each wait is bounded by the deadline of the command.
struct ReplyReader {
    static let maxLineLength = 4096
    static let maxLines = 100

    private var buffer: [UInt8] = []
    private var start = 0

    /// Reads one complete reply.
    mutating func read(from stream: ByteStream, deadline: Deadline) throws(SMTPError.Failure) -> SMTPReply {
        var lines: [String] = []
        var code = 0
        while true {
            let line = try readLine(from: stream, deadline: deadline)
            guard line.count >= 3, line.prefix(3).allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  line.count == 3 || line[3] == 0x20 || line[3] == 0x2D,
                  let lineCode = Int(String(decoding: line.prefix(3), as: UTF8.self)), (200...599).contains(lineCode) else {
                throw .protocol("not an SMTP reply: \(Self.printable(line))")
            }
            if lines.isEmpty { code = lineCode }
            guard lineCode == code else { throw .protocol("reply code changed from \(code) to \(lineCode) within a reply") }
            lines.append(String(decoding: line.dropFirst(4), as: UTF8.self))
            if line.count == 3 || line[3] == 0x20 { return SMTPReply(code: code, lines: lines) }
            guard lines.count < Self.maxLines else { throw .protocol("reply of more than \(Self.maxLines) lines") }
        }
    }

    /// One line without its CRLF (a bare LF is tolerated as the end of a line).
    private mutating func readLine(from stream: ByteStream, deadline: Deadline) throws(SMTPError.Failure) -> [UInt8] {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                guard line.count <= Self.maxLineLength else {
                    throw .protocol("reply line longer than \(Self.maxLineLength) octets")
                }
                return line
            }
            guard buffer.count - start <= Self.maxLineLength + 1 else {
                throw .protocol("reply line longer than \(Self.maxLineLength) octets")
            }
            if start > 0 {
                buffer.removeFirst(start)
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            var failure: StreamError?
            let count = chunk.withUnsafeMutableBytes { raw -> Int in
                do throws(StreamError) { return try stream.read(into: raw, deadline: deadline) } catch {
                    failure = error
                    return 0
                }
            }
            if let failure { throw .stream(failure) }
            guard count > 0 else { throw .stream(.closed) }
            buffer.append(contentsOf: chunk[0..<count])
        }
    }

    /// Whether bytes the server sent are waiting unread (a server that talks before
    /// its turn, RFC 2920 3.1 forbids that for pipelining, is a protocol error).
    var hasBufferedInput: Bool { start < buffer.count }

    static func printable(_ line: [UInt8]) -> String {
        String(String(decoding: line.prefix(80), as: UTF8.self).unicodeScalars.map { scalar in
            scalar.value < 0x20 || scalar.value == 0x7F ? "?" : Character(scalar)
        })
    }
}
