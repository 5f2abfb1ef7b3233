import Glibc
import Logging
import Monitoring
import PosternCore
import SpoolDrop

/// One message on its way from the client into its drop, line by line, with
/// the checks `postern drop` makes: the same for DATA, whose lines come
/// dot-unstuffed, and for BDAT, whose chunks `ChunkLines` joins into lines.
///
/// The first problem refuses the message: its drop is abandoned at once
/// (nothing stays in `tmp/`), and the lines that still come are read and
/// ignored, so that the session can go on after the reply.
final class MessageSink {
    private let context: ListenerContext
    private let transaction: MailTransaction
    private var drop: DropStream?
    private(set) var failure: ServerSession.DataOutcome?
    /// Octets of the message as stored, CRLF line ends counted.
    private var size = 0

    init(context: ListenerContext, transaction: MailTransaction, session: ServerSession) {
        self.context = context
        self.transaction = transaction
        do throws(SpoolError) {
            drop = try context.begin(transaction, session: session)
        } catch {
            context.logger.error("smtp cannot store", metadata: ["error": "\(error)"])
            failure = .temporaryFailure(error.message)
        }
    }

    /// A line of the message, without its line end.
    func add(_ line: ArraySlice<UInt8>) {
        guard failure == nil, let stream = drop else { return }
        size += line.count + 2
        let hasNUL = line.withUnsafeBytes { raw in raw.baseAddress.map { memchr($0, 0, raw.count) != nil } ?? false }
        if hasNUL {
            refuse(.nul)
        } else if line.count > ServerConnection.maxLineLength {
            refuse(.lineTooLong)
        } else if size > context.settings.maxMessageSize {
            refuse(.tooBig)
        } else {
            do throws(SpoolError) {
                try Self.add(line, to: stream)
            } catch {
                refuse(stream.size > context.settings.maxMessageSize ? .tooBig : .invalid(error.message))
            }
        }
    }

    /// Refuses the message, unless it already is.
    func refuse(_ outcome: ServerSession.DataOutcome) {
        guard failure == nil else { return }
        failure = outcome
        abandon()
    }

    /// Leaves nothing of the message behind (the client went away, or the transaction was reset).
    func abandon() {
        drop?.abandon()
        drop = nil
    }

    /// The end of the message: committed (spool-layout.md 6.1), or refused.
    func finish(session: ServerSession) -> ServerSession.DataOutcome {
        if let failure { return failure }
        guard let stream = drop else { return .temporaryFailure("no drop") }
        drop = nil
        do throws(SpoolError) {
            let id = try context.commit(stream, transaction)
            context.accepted(id: id, size: stream.size, transaction: transaction, session: session)
            return .accepted(id: id)
        } catch {
            if error.status == .dataError { return .invalid(error.message) }
            context.logger.error("smtp cannot store", metadata: ["error": "\(error)"])
            return .temporaryFailure(error.message)
        }
    }

    /// A line, split at bare CRs as `postern drop`'s line splitter splits them.
    private static func add(_ line: ArraySlice<UInt8>, to stream: DropStream) throws(SpoolError) {
        guard line.contains(0x0D) else { return try stream.add(line: line) }
        for part in line.split(separator: 0x0D, omittingEmptySubsequences: false) {
            try stream.add(line: part)
        }
    }
}
