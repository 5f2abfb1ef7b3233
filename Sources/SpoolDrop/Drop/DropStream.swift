import PosternBase

/// One drop in progress whose message arrives line by line: `postern drop`
/// copies standard input into it, the SMTP listener its DATA lines. Both go
/// through the same composer (CRLF, header completion, NUL and line-length
/// refusals, the size limit) and the same `DropWriter`, so a message accepted
/// over SMTP is stored exactly as the drop would store it.
public final class DropStream {
    let composer: MessageComposer
    private let writer: DropWriter
    private let arrival: Double
    private var finished = false

    init(submission: Submission, writer: DropWriter, arrival: Double) {
        self.writer = writer
        self.arrival = arrival
        composer = MessageComposer(submission: submission, writer: writer, date: arrival)
    }

    deinit {
        if !finished { writer.abandon() }
    }

    public var id: QueueID { writer.id }
    /// Octets written so far, as stored.
    public var size: Int { writer.size }
    /// When the drop began (seconds since the Unix epoch): its arrival.
    public var arrivalTime: Double { arrival }
    /// The envelope as committed (what `envelope.json` holds); nil before.
    public private(set) var committedEnvelope: DropEnvelope?

    /// Trace fields (RFC 5321 4.4, `Received:`) stored above the header
    /// section, each line CRLF-terminated. Set before the first line.
    public var trace: [UInt8] {
        get { composer.trace }
        set { composer.trace = newValue }
    }

    /// One line of the message, without its terminator. A lone `.` ends it
    /// unless the submission says `ignoreDots` (SMTP undoes its dot-stuffing
    /// itself and sets it).
    public func add(line: ArraySlice<UInt8>) throws(SpoolError) {
        try composer.add(line: line)
    }

    /// Finishes the message and commits the drop (spool-layout.md 6.1).
    ///
    /// - Parameter group: shares the syncs with concurrent writers (group
    ///   commit, `DropGroupCommit`); nil syncs each step for this drop alone.
    /// - Returns: the queue ID, once the drop survives a power loss.
    @discardableResult
    public func commit(group: DropGroupCommit? = nil) throws(SpoolError) -> QueueID {
        precondition(!finished, "a drop stream is finished once")
        finished = true
        do {
            try composer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        let submission = composer.submission
        var recipients: [String] = []
        var seen = Set<String>()
        var smtputf8 = submission.sender?.requiresSMTPUTF8 ?? false
        for address in submission.recipients + composer.extractedRecipients where seen.insert(address.smtpForm).inserted {
            recipients.append(address.smtpForm)
            smtputf8 = smtputf8 || address.requiresSMTPUTF8
        }
        guard !recipients.isEmpty else {
            writer.abandon()
            throw SpoolError(.dataError, "no recipients: name them as arguments or use -t")
        }
        guard recipients.count <= submission.maxRecipients else {
            writer.abandon()
            throw SpoolError(.dataError, "too many recipients: \(recipients.count), the limit is \(submission.maxRecipients) "
                                       + "(drop.max_recipients); send it as several messages")
        }
        var envelope = DropEnvelope(id: writer.id, sender: submission.sender?.smtpForm, recipients: recipients,
                                    arrival: arrival, size: writer.size, uid: submission.uid)
        envelope.messageID = composer.messageID
        envelope.eightBit = composer.eightBit
        envelope.smtputf8 = smtputf8
        envelope.requireTLS = submission.requireTLS ? true : composer.requireTLS
        envelope.originals = submission.originals
        envelope.notifyNever = submission.notifyNever
        envelope.dsnReturn = submission.dsnReturn
        envelope.envelopeID = submission.envelopeID
        let encoded = envelope.encoded()
        guard DropEnvelope.largestSize(encodedSize: encoded.count, recipients: recipients) <= DropEnvelope.maxEncodedSize else {
            writer.abandon()
            throw SpoolError(.dataError, "too many recipients for one envelope: with their delivery results it could "
                                       + "outgrow \(DropEnvelope.maxEncodedSize) octets; send it as several messages")
        }
        do {
            try writer.commit(envelopeBytes: encoded, arrival: arrival, group: group)
        } catch {
            throw SpoolError(error.exitStatus, "cannot write the drop: \(error)")
        }
        committedEnvelope = envelope
        return writer.id
    }

    /// Gives the drop up: nothing is left in `tmp/` or `drop/`.
    public func abandon() {
        guard !finished else { return }
        finished = true
        writer.abandon()
    }
}
