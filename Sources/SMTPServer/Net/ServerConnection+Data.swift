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
        let sink = MessageSink(context: context, transaction: transaction, session: session)
        var previousCRLF = true
        while true {
            let next: LineReader.Line
            do throws(StreamError) {
                // One more octet than a text line may have, so that a CR before the LF still fits.
                next = try reader.next(limit: Self.maxLineLength + 1, deadline: { self.deadline })
            } catch {
                sink.abandon()
                throw error
            }
            guard case .line(var line, let crlf) = next else {
                sink.refuse(.lineTooLong)
                if case .tooLong(let crlf) = next { previousCRLF = crlf }
                continue
            }
            if crlf, previousCRLF, line.count == 1, line.first == UInt8(ascii: ".") { break }
            previousCRLF = crlf
            if line.first == UInt8(ascii: ".") { line = line.dropFirst() }
            sink.add(line)
        }
        return sink.finish(session: session)
    }
}
