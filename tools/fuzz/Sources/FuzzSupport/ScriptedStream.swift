import PosternCore
import TLS

/// A `ByteStream` that hands out fixed bytes in reads of the sizes given (then
/// of the last size), and the end of the stream after them: a peer that sends
/// a reply split anywhere, as TCP may. Writes are counted and dropped.
public final class ScriptedStream: ByteStream {
    private let bytes: [UInt8]
    private let chunks: [Int]
    private var position = 0
    private var reads = 0
    public private(set) var written = 0

    /// `chunks` are read sizes, each at least 1.
    public init(_ bytes: [UInt8], chunks: [Int]) {
        self.bytes = bytes
        self.chunks = chunks.isEmpty ? [4096] : chunks.map { max(1, $0) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int {
        let size = chunks[min(reads, chunks.count - 1)]
        reads += 1
        let count = min(size, buffer.count, bytes.count - position)
        guard count > 0 else { return 0 }
        for offset in 0..<count { buffer[offset] = bytes[position + offset] }
        position += count
        return count
    }

    public func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError) {
        written += bytes.count
    }

    public var fileDescriptor: Int32 { -1 }
}
