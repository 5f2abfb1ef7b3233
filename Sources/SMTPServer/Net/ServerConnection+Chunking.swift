import Glibc
import PosternCore
import TLS

/// A message arriving in BDAT chunks (RFC 3030): its sink, and the line the
/// last chunk left unfinished.
final class ChunkedMessage {
    let sink: MessageSink
    var lines = ChunkLines()

    init(sink: MessageSink) {
        self.sink = sink
    }
}

/// Joins chunks into lines. A chunk may end anywhere, inside a line or
/// between a CR and its LF, so the unfinished line is kept for the next one:
/// at most one text line and its CR (999 octets), longer ones are only
/// counted. A line ends at LF, with or without a CR before it, and each
/// becomes a CRLF line in the drop, as DATA's lines do; there is no dot
/// stuffing in BDAT.
struct ChunkLines {
    private var pending: [UInt8] = []
    private var overlong = false

    mutating func feed(_ octets: ArraySlice<UInt8>, into sink: MessageSink) {
        var rest = octets
        while let lf = Self.firstLF(in: rest) {
            append(rest[rest.startIndex..<lf])
            emit(into: sink)
            rest = rest[(lf + 1)...]
        }
        append(rest)
    }

    /// After the last chunk: a last line without a line end is a line all the same.
    mutating func finish(into sink: MessageSink) {
        if overlong || !pending.isEmpty { emit(into: sink) }
    }

    private mutating func append(_ part: ArraySlice<UInt8>) {
        guard !overlong, !part.isEmpty else { return }
        guard pending.count + part.count <= ServerConnection.maxLineLength + 1 else {
            overlong = true
            pending.removeAll(keepingCapacity: true)
            return
        }
        pending += part
    }

    private mutating func emit(into sink: MessageSink) {
        if overlong {
            sink.refuse(.lineTooLong)
        } else {
            sink.add(pending.last == 0x0D ? pending.dropLast() : pending[...])
        }
        pending.removeAll(keepingCapacity: true)
        overlong = false
    }

    private static func firstLF(in octets: ArraySlice<UInt8>) -> Int? {
        octets.withUnsafeBytes { raw in
            guard let base = raw.baseAddress, let found = memchr(base, 0x0A, raw.count) else { return nil }
            return octets.startIndex + (UnsafeRawPointer(found) - base)
        }
    }
}

extension ServerConnection {
    /// Reads one BDAT chunk of `size` octets into the transaction's message;
    /// with `last`, the message is then committed (spool-layout.md 6.1) or
    /// refused. A message refused before its last chunk is not stored further,
    /// but each chunk the client had already sent is read (RFC 3030 2: "MUST
    /// be prepared to accept and discard additional BDAT chunks").
    func receiveChunk(size: Int, last: Bool) throws(StreamError) -> ServerSession.ChunkOutcome {
        guard let transaction = session.transaction else {
            try discardChunk(size: size)
            return .finished(.invalid("no transaction"))
        }
        let message = chunked ?? ChunkedMessage(sink: MessageSink(context: context, transaction: transaction, session: session))
        chunked = message
        try readChunk(size: size) { message.lines.feed($0, into: message.sink) }
        guard last else { return message.sink.failure.map { .finished($0) } ?? .stored(octets: size) }
        chunked = nil
        message.lines.finish(into: message.sink)
        return .finished(message.sink.finish(session: session))
    }

    /// Reads a chunk whose command was refused and throws it away.
    func discardChunk(size: Int) throws(StreamError) {
        try readChunk(size: size) { _ in }
    }

    /// Hands the chunk's `size` octets to `body` as they come, in pieces of
    /// at most the reader's buffer: memory stays bounded whatever the size.
    private func readChunk(size: Int, _ body: (ArraySlice<UInt8>) -> Void) throws(StreamError) {
        // No reply comes before a chunk: what pipelined commands earned goes out before waiting for it.
        if reader.bufferedCount < size { try flush() }
        var remaining = size
        while remaining > 0 {
            let piece = try reader.octets(upTo: remaining, deadline: deadline)
            remaining -= piece.count
            body(piece)
        }
    }

    /// A transaction that ended without its last chunk (RSET, EHLO, or with
    /// `always`, the connection's end) leaves nothing of its message.
    func dropUnfinishedChunks(always: Bool = false) {
        guard let message = chunked, always || session.transaction == nil else { return }
        message.sink.abandon()
        chunked = nil
    }
}
