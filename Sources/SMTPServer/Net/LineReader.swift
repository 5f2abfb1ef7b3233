import Glibc
import PosternCore
import TLS

/// Reads CRLF-terminated lines from a stream into one fixed buffer: a line
/// is a slice of that buffer, valid until the next call. A line longer than
/// the limit is skipped to its end and reported as such, so that memory per
/// connection stays at the buffer's size whatever the client sends.
final class LineReader {
    enum Line {
        /// The line without its LF; `crlf` tells whether a CR preceded the LF
        /// (and was removed).
        case line(ArraySlice<UInt8>, crlf: Bool)
        /// A line over the limit, skipped; `crlf` as for a line.
        case tooLong(crlf: Bool)
    }

    static let capacity = 64 << 10
    var stream: ByteStream
    private var buffer = [UInt8](repeating: 0, count: LineReader.capacity)
    private var start = 0
    private var end = 0

    init(stream: ByteStream) {
        self.stream = stream
    }

    /// Whether a whole line is already buffered: pipelined commands (RFC 2920
    /// 3.2: replies may wait until the client's input is read).
    var hasBufferedLine: Bool {
        buffer.withUnsafeBytes { raw in memchr(raw.baseAddress! + start, 0x0A, end - start) != nil }
    }

    /// Whether any byte is buffered (after STARTTLS, RFC 3207 5: none may be).
    var hasBufferedBytes: Bool { end > start }

    /// How many octets are buffered and not yet read.
    var bufferedCount: Int { end - start }

    /// Forgets what is buffered.
    func discardBuffered() {
        start = 0
        end = 0
    }

    /// Up to `count` octets as they come, for data counted in advance (a
    /// BDAT chunk, RFC 3030): what is buffered first, else one read of the
    /// stream. The slice is valid until the next call; throws
    /// `StreamError.closed` at the end of the stream.
    func octets(upTo count: Int, deadline: Deadline) throws(StreamError) -> ArraySlice<UInt8> {
        if start == end {
            start = 0
            end = 0
            try fill(deadline: deadline)
        }
        let taken = min(count, end - start)
        defer { start += taken }
        return buffer[start..<(start + taken)]
    }

    /// The next line of at most `limit` octets before its LF; throws
    /// `StreamError.closed` at the end of the stream.
    func next(limit: Int, deadline: () -> Deadline) throws(StreamError) -> Line {
        var skipping = false
        // The last octet thrown away while skipping: the CR of a CRLF split from its LF.
        var lastSkipped: UInt8 = 0
        while true {
            let found = buffer.withUnsafeBytes { raw -> Int? in
                memchr(raw.baseAddress! + start, 0x0A, end - start).map { UnsafeRawPointer($0) - raw.baseAddress! }
            }
            if let lf = found {
                let lineStart = start
                start = lf + 1
                let crlf = lf > lineStart ? buffer[lf - 1] == 0x0D : skipping && lastSkipped == 0x0D
                if skipping || lf - lineStart > limit + 1 { return .tooLong(crlf: crlf) }
                return .line(buffer[lineStart..<(crlf ? lf - 1 : lf)], crlf: crlf)
            }
            if end - start > limit + 1 {
                // Too long already: keep nothing of it, read on to its end.
                skipping = true
                lastSkipped = buffer[end - 1]
                start = 0
                end = 0
            }
            if start > 0 {
                let count = end - start
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + start, count)
                }
                start = 0
                end = count
            }
            try fill(deadline: deadline())
        }
    }

    /// One read of the stream into the free space after `end`; throws
    /// `StreamError.closed` at the end of the stream.
    private func fill(deadline: Deadline) throws(StreamError) {
        // withUnsafeMutableBytes rethrows untyped errors: the typed one is carried out by hand.
        var failure: StreamError?
        let stream = self.stream
        let from = end
        let read = buffer.withUnsafeMutableBytes { raw -> Int in
            do throws(StreamError) {
                return try stream.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[from...]), deadline: deadline)
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        if read == 0 { throw .closed }
        end += read
    }
}
