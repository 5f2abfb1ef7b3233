import Glibc

/// Splits a byte stream into lines, accepting any of CRLF, bare LF and bare CR as
/// the end of a line, so that a message arriving with Unix, old Mac or mixed line
/// endings is stored with CRLF throughout (RFC 5322 2.1, RFC 5321 2.3.8).
///
/// It works on chunks of any size and boundaries (a CR at the end of one chunk
/// and an LF at the start of the next are one line end) and holds at most one
/// line, so a 50 MiB message costs a 1 KiB buffer.
///
/// A line longer than `maxLineLength` octets (RFC 5322 2.1.1: 998) is an error,
/// not something to fold silently: folding would change the message, and an SMTP
/// server may reject or truncate such a line later, far from the sender.
public struct LineSplitter: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        /// Line `line` (1-based) is longer than the limit.
        case lineTooLong(line: Int, limit: Int)
    }

    public let maxLineLength: Int
    /// The number of complete lines seen so far.
    public private(set) var lineCount = 0
    private var buffer: [UInt8] = []
    private var pendingCR = false
    private var finished = false

    public init(maxLineLength: Int = 998) {
        self.maxLineLength = maxLineLength
        buffer.reserveCapacity(maxLineLength + 2)
    }

    /// Feeds `bytes`; calls `line` with each complete line's content, without its terminator.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer,
                              line: (ArraySlice<UInt8>) throws -> Void) throws {
        guard let base = bytes.baseAddress, !finished else { return }
        var index = 0
        let count = bytes.count
        if pendingCR {
            pendingCR = false
            if count > 0, bytes[0] == 0x0A { index = 1 }   // the LF of a CRLF split across chunks
        }
        while index < count {
            let remaining = count - index
            let start = base + index
            // The next line end is the first CR or LF; memchr keeps this fast even unoptimised.
            let lf = memchr(start, 0x0A, remaining).map { UnsafeRawPointer($0) - UnsafeRawPointer(start) }
            let crLimit = lf ?? remaining
            let cr = memchr(start, 0x0D, crLimit).map { UnsafeRawPointer($0) - UnsafeRawPointer(start) }
            guard let end = cr ?? lf else {
                try append(UnsafeRawBufferPointer(start: start, count: remaining))
                return
            }
            try append(UnsafeRawBufferPointer(start: start, count: end))
            try emit(line)
            index += end + 1
            if cr != nil {
                if index < count {
                    if bytes[index] == 0x0A { index += 1 }
                } else {
                    pendingCR = true
                }
            }
        }
    }

    /// Convenience for tests and small inputs.
    public mutating func feed(_ bytes: [UInt8], line: (ArraySlice<UInt8>) throws -> Void) throws {
        try bytes.withUnsafeBytes { try feed($0, line: line) }
    }

    /// Ends the stream: a last line without a terminator is still a line.
    public mutating func finish(line: (ArraySlice<UInt8>) throws -> Void) throws {
        guard !finished else { return }
        finished = true
        if !buffer.isEmpty { try emit(line) }
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) throws {
        guard buffer.count + bytes.count <= maxLineLength else {
            throw Failure.lineTooLong(line: lineCount + 1, limit: maxLineLength)
        }
        buffer.append(contentsOf: bytes)
    }

    private mutating func emit(_ line: (ArraySlice<UInt8>) throws -> Void) throws {
        lineCount += 1
        try line(buffer[...])
        buffer.removeAll(keepingCapacity: true)
    }
}
