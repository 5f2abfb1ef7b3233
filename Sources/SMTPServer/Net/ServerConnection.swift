import Glibc
import Logging
import Monitoring
import PosternCore
import SpoolDrop
import TLS

/// One client connection: reads command lines, hands them to its
/// `ServerSession`, writes the replies, and carries out what the session
/// asks (STARTTLS, reading DATA into a drop, closing). It runs on a thread
/// of its own and blocks only that thread, every wait bounded by `smtp.timeout`.
final class ServerConnection {
    /// The longest command line read (RFC 5321 4.5.3.1.4 says 512 octets with
    /// CRLF; extensions' parameters and SMTPUTF8 addresses make room for more,
    /// as Postfix's 2048 does).
    static let commandLimit = 2048

    let context: ListenerContext
    var session: ServerSession
    let reader: LineReader
    /// The message of a BDAT transaction, between its chunks.
    var chunked: ChunkedMessage?
    private var output: [UInt8] = []

    init(stream: ByteStream, context: ListenerContext, clientAddress: [UInt8], clientText: String) {
        self.context = context
        reader = LineReader(stream: stream)
        session = ServerSession(settings: context.settings, clientAddress: clientAddress, clientText: clientText)
    }

    var deadline: Deadline { Deadline.after(context.timeout) }

    /// The whole session; returns how it ended.
    func run() -> SMTPSessionEnd {
        defer { dropUnfinishedChunks(always: true) }
        do throws(StreamError) {
            output += session.greeting.wire
            try flush()
            while true {
                let response: ServerSession.Response
                switch try reader.next(limit: Self.commandLimit, deadline: { self.deadline }) {
                case .line(let line, _): response = session.handle(line: line)
                case .tooLong: response = session.lineTooLong()
                }
                dropUnfinishedChunks()
                // A chunk's reply comes once the chunk is read (finishChunk).
                if case .receiveChunk = response.next {} else { output += response.reply.wire }
                switch response.next {
                case .proceed:
                    // RFC 2920 3.2: replies to pipelined commands go out together,
                    // once the commands that were sent together are read.
                    if !reader.hasBufferedLine { try flush() }
                case .close:
                    try flush()
                    return response.reply.code == 421 ? .errors : .quit
                case .startTLS:
                    try flush()
                    // RFC 3207 5: anything pipelined after STARTTLS was sent in
                    // plaintext and may be an attacker's: it is discarded.
                    reader.discardBuffered()
                    guard let tls = context.tls else { return .tlsFailed }
                    do throws(StreamError) {
                        reader.stream = try TLSStream(acceptingOver: reader.stream, context: tls, deadline: deadline)
                    } catch {
                        context.logger.info("smtp tls failed", metadata: ["client": "\(session.clientText)", "error": "\(error)"])
                        return .tlsFailed
                    }
                    session.tlsStarted()
                case .receiveData:
                    try flush()
                    let outcome = try receiveData()
                    context.finished(outcome, session: session)
                    if try answer(session.finishData(outcome)) { return .errors }
                case .receiveChunk(let size, let last):
                    let outcome = try receiveChunk(size: size, last: last)
                    // A refusal is counted at the chunk that earned it, not again at the chunks after it.
                    if case .finished(let result) = outcome, session.transaction?.chunkRefusal == nil {
                        context.finished(result, session: session)
                    }
                    if try answer(session.finishChunk(outcome, last: last)) { return .errors }
                case .discardChunk(let size):
                    try discardChunk(size: size)
                    if !reader.hasBufferedLine { try flush() }
                }
            }
        } catch .timeout {
            // RFC 5321 4.5.3.2.7: the server may close after its timeout; 421 says why.
            output += ServerReply(421, "4.4.2", "\(context.settings.hostname) Error: timeout exceeded").wire
            try? flush()
            return .timeout
        } catch {
            return .disconnected
        }
    }

    /// Queues the reply to a message's data or chunk; true when the session
    /// must end (that reply was the last error allowed, now 421).
    private func answer(_ response: ServerSession.Response) throws(StreamError) -> Bool {
        output += response.reply.wire
        if response.next == .close {
            try flush()
            return true
        }
        if !reader.hasBufferedLine { try flush() }
        return false
    }

    func flush() throws(StreamError) {
        guard !output.isEmpty else { return }
        try reader.stream.write(output, deadline: deadline)
        output.removeAll(keepingCapacity: true)
    }
}
