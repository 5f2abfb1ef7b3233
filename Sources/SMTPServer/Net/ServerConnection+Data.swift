import Glibc
import Logging
import Monitoring
import PosternCore
import SpoolDrop
import TLS

extension ServerConnection {
    /// The longest text line a message may have (RFC 5322 2.1.1), without CRLF.
    static let maxLineLength = 998

    /// Reads the message after 354 up to the end-of-data line and stores it
    /// as a drop; returns what happened to it. Whatever fails, the rest of the
    /// data is read (and dropped) up to its end, so that the session can go on.
    ///
    /// RFC 5321 4.5.2: a leading dot is removed from each line. The end is a
    /// line with a single dot, with CRLF before and after it: a dot line with a
    /// bare LF on either side does not end the data (the SMTP smuggling of
    /// CVE-2023-51764), as with Postfix's `smtpd_forbid_bare_newline = normalize`.
    /// Other lines that end with a bare LF, and bare CRs inside a line, become
    /// line ends as `postern drop` makes them (CRLF throughout).
    func receiveData() throws(StreamError) -> ServerSession.DataOutcome {
        guard let transaction = session.transaction else { return .invalid("no transaction") }
        var failure: ServerSession.DataOutcome?
        var drop: DropStream?
        do throws(SpoolError) {
            drop = try context.begin(transaction, session: session)
        } catch {
            context.logger.error("smtp cannot store", metadata: ["error": "\(error)"])
            failure = .temporaryFailure(error.message)
        }
        var previousCRLF = true
        var size = 0
        let maxSize = context.settings.maxMessageSize
        while true {
            let next: LineReader.Line
            do throws(StreamError) {
                // One more octet than a text line may have, so that a CR before the LF still fits.
                next = try reader.next(limit: Self.maxLineLength + 1, deadline: { self.deadline })
            } catch {
                drop?.abandon()
                throw error
            }
            guard case .line(var line, let crlf) = next else {
                if failure == nil { failure = .lineTooLong }
                drop?.abandon()
                drop = nil
                if case .tooLong(let crlf) = next { previousCRLF = crlf }
                continue
            }
            if crlf, previousCRLF, line.count == 1, line.first == UInt8(ascii: ".") { break }
            previousCRLF = crlf
            guard failure == nil, let stream = drop else { continue }
            if line.first == UInt8(ascii: ".") { line = line.dropFirst() }
            size += line.count + 2
            let problem: ServerSession.DataOutcome? = line.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return nil }
                if memchr(base, 0, raw.count) != nil { return .nul }
                return nil
            }
            if let problem {
                failure = problem
            } else if line.count > Self.maxLineLength {
                failure = .lineTooLong
            } else if size > maxSize {
                failure = .tooBig
            } else {
                do throws(SpoolError) {
                    try Self.add(line, to: stream)
                } catch {
                    failure = stream.size > maxSize ? .tooBig : .invalid(error.message)
                }
            }
            if failure != nil {
                stream.abandon()
                drop = nil
            }
        }
        if let failure { return failure }
        guard let stream = drop else { return .temporaryFailure("no drop") }
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
