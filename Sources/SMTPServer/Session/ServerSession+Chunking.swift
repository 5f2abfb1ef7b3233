import PosternBase

/// CHUNKING (RFC 3030): the message in BDAT chunks of a size given in
/// advance, with no dot stuffing and no end-of-data line.
extension ServerSession {
    /// What became of one BDAT chunk.
    public enum ChunkOutcome: Sendable, Equatable {
        /// Stored; more chunks follow.
        case stored(octets: Int)
        /// The message ended with this chunk (BDAT LAST), or was refused at it.
        case finished(DataOutcome)
    }

    /// `BDAT chunk-size [LAST]` (RFC 3030 2). The chunk is read whatever the
    /// reply, since its octets would otherwise be taken for commands; only a
    /// command whose size cannot be read leaves them to be.
    mutating func chunk(_ argument: String) -> Response {
        let words = argument.split(separator: " ")
        // chunk-size = 1*DIGIT; 18 digits fit an Int.
        guard (1...2).contains(words.count), (1...18).contains(words[0].utf8.count),
              words[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let size = Int(words[0]),
              words.count == 1 || words[1].uppercased() == "LAST" else {
            return Response(reply: ServerReply(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]"), next: .proceed)
        }
        let last = words.count == 2
        guard let transaction else {
            return Response(reply: ServerReply(503, "5.5.1", "Error: need MAIL command"), next: .discardChunk(size: size))
        }
        guard !transaction.recipients.isEmpty else {
            return Response(reply: ServerReply(554, "5.5.1", "Error: no valid recipients"), next: .discardChunk(size: size))
        }
        self.transaction?.chunked = true
        return Response(reply: ServerReply(250, "2.0.0", "Ok"), next: .receiveChunk(size: size, last: last))
    }

    /// A chunk was read and handled. After its last chunk, or when it was
    /// refused, the transaction ends as after DATA; a message refused before
    /// its last chunk keeps the transaction until BDAT LAST, each chunk still
    /// in the pipeline answered as the first refused one and counted once
    /// as an error (RFC 3030 2: the client sends no more after a failure).
    public mutating func finishChunk(_ outcome: ChunkOutcome, last: Bool) -> Response {
        switch outcome {
        case .stored(let octets):
            return Response(reply: ServerReply(250, "2.0.0", "Ok: \(octets) octets"), next: .proceed)
        case .finished(let result):
            let earlier = transaction?.chunkRefusal
            if let earlier {
                if last {
                    transaction = nil
                    phase = .greeted
                }
                return Response(reply: reply(to: earlier), next: .proceed)
            }
            if last { return finishData(result) }
            transaction?.chunkRefusal = result
            return count(Response(reply: reply(to: result), next: .proceed))
        }
    }
}
