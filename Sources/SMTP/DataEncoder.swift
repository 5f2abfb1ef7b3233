import Glibc

/// The DATA phase's byte work (RFC 5321 4.5.2 and 4.1.1.4): checking that a
/// message is CRLF throughout, and dot-stuffing it while it streams.
enum DataEncoder {
    static let blockSize = 64 << 10

    /// The offset of the first bare CR or LF, or nil when every line ends in CRLF.
    ///
    /// A bare LF would be sent as is and read by the server as a line end or
    /// not, depending on the server: the same message would differ between hosts
    /// (and bare LFs have been used to smuggle SMTP commands). So it is refused.
    static func firstBareLineEnding(in source: any MessageSource) throws(SMTPError.Refusal) -> Int? {
        var block = [UInt8](repeating: 0, count: blockSize)
        var offset = 0
        var previous: UInt8 = 0
        while true {
            let count = try read(source, into: &block, at: offset)
            if count == 0 { return previous == 0x0D ? offset - 1 : nil }
            if previous == 0x0D, block[0] != 0x0A { return offset - 1 }
            let found: Int? = block.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                // Every LF must follow a CR.
                var position = 0
                while position < count, let hit = memchr(base + position, 0x0A, count - position) {
                    let index = UnsafeRawPointer(hit) - base
                    let before = index == 0 ? previous : raw[index - 1]
                    if before != 0x0D { return index }
                    position = index + 1
                }
                // Every CR must precede an LF (a CR at the block's end is checked with the next block).
                position = 0
                while position < count, let hit = memchr(base + position, 0x0D, count - position) {
                    let index = UnsafeRawPointer(hit) - base
                    if index + 1 < count, raw[index + 1] != 0x0A { return index }
                    position = index + 1
                }
                return nil
            }
            if let found { return offset + found }
            previous = block[count - 1]
            offset += count
        }
    }

    /// Streams the message through `send` in blocks, with a dot added before
    /// every line that starts with one, then the end-of-data line.
    static func encode(_ source: any MessageSource, send: ([UInt8]) throws(SMTPError.Failure) -> Void) throws(SMTPError) {
        var block = [UInt8](repeating: 0, count: blockSize)
        var output: [UInt8] = []
        output.reserveCapacity(blockSize + blockSize / 2)
        var offset = 0
        var atLineStart = true
        var last: UInt8 = 0x0A
        while true {
            let count: Int
            do {
                count = try read(source, into: &block, at: offset)
            } catch {
                throw SMTPError(.refused(error), command: "message")
            }
            if count == 0 { break }
            offset += count
            block.withUnsafeBytes { raw in
                let base = raw.baseAddress!
                var index = 0
                while index < count {
                    if atLineStart, raw[index] == 0x2E { output.append(0x2E) }
                    let end = memchr(base + index, 0x0A, count - index).map { UnsafeRawPointer($0) - base + 1 } ?? count
                    output.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[index..<end]))
                    atLineStart = raw[end - 1] == 0x0A
                    index = end
                }
                last = raw[count - 1]
            }
            if output.count >= blockSize {
                do { try send(output) } catch { throw error.at("DATA") }
                output.removeAll(keepingCapacity: true)
            }
        }
        // A message whose last line lacks its CRLF still needs one before the dot.
        if last != 0x0A { output.append(contentsOf: [0x0D, 0x0A]) }
        output.append(contentsOf: Array(".\r\n".utf8))
        do { try send(output) } catch { throw error.at("DATA") }
    }

    private static func read(_ source: any MessageSource, into block: inout [UInt8], at offset: Int) throws(SMTPError.Refusal) -> Int {
        var failure: SMTPError.Refusal?
        let count = block.withUnsafeMutableBytes { raw -> Int in
            do throws(SMTPError.Refusal) { return try source.read(into: raw, at: offset) } catch {
                failure = error
                return 0
            }
        }
        if let failure { throw failure }
        return count
    }
}
