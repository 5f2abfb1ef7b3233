import Glibc
import PosternBase

/// Turns the bytes a program hands to `sendmail` into the message as stored:
/// CRLF line endings, a completed header section, and the facts the envelope
/// needs (8-bit content, Message-ID, recipients from headers, REQUIRETLS).
final class MessageComposer {
    let submission: Submission
    let writer: DropWriter
    /// Seconds since the Unix epoch, for a generated `Date:`.
    let date: Double
    private var splitter = LineSplitter()
    private var headers = HeaderSection()
    private var inHeaders = true
    private var ended = false
    private var lineNumber = 0
    private(set) var extractedRecipients: [MailboxAddress] = []
    private(set) var messageID: String?
    private(set) var eightBit = false
    private(set) var requireTLS: Bool?
    /// Trace fields written above the header section (`DropStream.trace`).
    var trace: [UInt8] = []

    static let crlf: [UInt8] = [0x0D, 0x0A]

    init(submission: Submission, writer: DropWriter, date: Double) {
        self.submission = submission
        self.writer = writer
        self.date = date
    }

    /// Copies the whole input into the drop.
    func copy(from input: Int32) throws(SpoolError) {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        var total = 0
        while !ended {
            let count: Int
            do throws(SystemCallError) {
                count = try POSIX.readSome(input, into: &chunk)
            } catch {
                throw SpoolError(.ioError, "cannot read the message: \(error)")
            }
            if count == 0 { break }
            total += count
            try split { splitter, take in
                try chunk.withUnsafeBytes { raw in
                    try splitter.feed(UnsafeRawBufferPointer(rebasing: raw[0..<count]), line: take)
                }
            }
        }
        if !ended { try split { splitter, take in try splitter.finish(line: take) } }
        guard total > 0 else { throw SpoolError(.noInput, "empty message: nothing was read from standard input") }
    }

    /// One line of the message, already split (the SMTP listener's DATA).
    func add(line: ArraySlice<UInt8>) throws(SpoolError) {
        guard !ended else { return }
        try take(line: line)
    }

    /// Ends the message: a message of headers only still gets its completion.
    func finish() throws(SpoolError) {
        if inHeaders { try endHeaders() }
    }

    /// Runs the splitter with `take(line:)` as its callback and maps its errors.
    private func split(
        _ body: (inout LineSplitter, (ArraySlice<UInt8>) throws -> Void) throws -> Void
    ) throws(SpoolError) {
        do {
            try body(&splitter) { line in
                guard !self.ended else { return }
                try self.take(line: line)
            }
        } catch let error as SpoolError {
            throw error
        } catch LineSplitter.Failure.lineTooLong(let number, let limit) {
            throw SpoolError(.dataError,
                                  "line \(number) is longer than \(limit) octets (RFC 5322 2.1.1); "
                                  + "encode the message (quoted-printable or base64) before sending it")
        } catch {
            throw SpoolError(.software, "\(error)")
        }
    }

    private func take(line: ArraySlice<UInt8>) throws(SpoolError) {
        lineNumber += 1
        try Self.check(line, number: lineNumber, eightBit: &eightBit)
        // Traditional sendmail: without -i a line with a single dot ends the input.
        if !submission.ignoreDots, line.count == 1, line.first == UInt8(ascii: ".") {
            ended = true
            return
        }
        if inHeaders {
            let kind: HeaderSection.LineKind
            do {
                kind = try headers.add(line: line)
            } catch {
                throw SpoolError(.dataError, "the header section is larger than \(HeaderSection.maxSize) octets")
            }
            switch kind {
            case .header: return
            case .separator: try endHeaders(); return
            case .body: try endHeaders()
            }
        }
        try write(line)
        try write(Self.crlf)
    }

    private func endHeaders() throws(SpoolError) {
        inHeaders = false
        if submission.extractRecipients {
            do {
                extractedRecipients = try HeaderCompletion.recipients(in: headers, completingWith: submission.hostname)
            } catch {
                throw SpoolError(.dataError, "bad recipient header: \(error)")
            }
        }
        // RFC 8689 5: "TLS-Required: No" asks that TLS requirements be waived.
        if headers.values(of: "TLS-Required").contains(where: { $0.trimmingWhitespace().lowercased() == "no" }) {
            requireTLS = false
        }
        let completion = HeaderCompletion(sender: submission.sender, fullName: submission.fullName,
                                          hostname: submission.hostname, time: date, queueID: writer.id)
        messageID = completion.complete(&headers)
        if !trace.isEmpty { try write(trace) }
        try write(headers.serialized())
    }

    private func write(_ bytes: some Collection<UInt8>) throws(SpoolError) {
        do {
            try writer.write(bytes)
        } catch {
            throw SpoolError(error.exitStatus, "cannot write the message: \(error)")
        }
        guard writer.size <= submission.maxSize else {
            throw SpoolError(.dataError, "message is larger than the limit of \(submission.maxSize) octets")
        }
    }

    /// Refuses NUL (RFC 5322 allows none, and SMTP servers cut lines at it) and
    /// notes octets over 127 for BODY=8BITMIME.
    static func check(_ line: ArraySlice<UInt8>, number: Int, eightBit: inout Bool) throws(SpoolError) {
        let (nul, high) = line.withUnsafeBytes { raw -> (Bool, Bool) in
            guard let base = raw.baseAddress else { return (false, false) }
            let nul = memchr(base, 0, raw.count) != nil
            return (nul, raw.contains { $0 >= 0x80 })
        }
        if nul { throw SpoolError(.dataError, "line \(number) contains a NUL byte") }
        if high { eightBit = true }
    }
}
