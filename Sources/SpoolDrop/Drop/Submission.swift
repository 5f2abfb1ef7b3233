import Glibc
import PosternBase

/// A request to put one message into the spool: what `sendmail`'s flags say.
public struct Submission: Sendable {
    /// The envelope sender; `nil` is the null sender `<>` (for bounces and DSNs).
    public var sender: MailboxAddress?
    public var recipients: [MailboxAddress]
    /// `-t`: also take recipients from `To:`, `Cc:` and `Bcc:`.
    public var extractRecipients = false
    /// `-F`: full name for a generated `From:`.
    public var fullName: String?
    /// `-i`/`-oi`: a line with a single dot does not end the message.
    public var ignoreDots = false
    /// `--require-tls`, or the SMTP `MAIL` parameter REQUIRETLS: REQUIRETLS
    /// for the message (RFC 8689 4); it outweighs a `TLS-Required: No`
    /// header, as RFC 8689 5 says the parameter does.
    public var requireTLS = false
    public var hostname: String
    /// The largest message accepted, in octets as stored (with CRLF and added headers).
    public var maxSize: Int
    /// The uid recorded in the envelope: the invoking user.
    public var uid: Int
    /// The most recipients one message may have (`drop.max_recipients`).
    public var maxRecipients = Submission.defaultMaxRecipients
    public static let defaultMaxRecipients = 1000
    /// RFC 3461 ORCPT: the address a recipient was given as, by its SMTP form,
    /// when it differs (the envelope's `original`).
    public var originals: [String: String] = [:]
    /// RFC 3461 NOTIFY=NEVER for every recipient: no DSN of any kind.
    public var notifyNever = false
    /// RFC 3461 4.3 RET (`-R`, or RET= on MAIL FROM): what a failure DSN returns.
    public var dsnReturn: DSNReturn?
    /// RFC 3461 4.4 ENVID in xtext (`-V` encoded, or ENVID= on MAIL FROM as
    /// received), checked by `EnvelopeIDParameter` before it gets here.
    public var envelopeID: String?

    public init(sender: MailboxAddress?, recipients: [MailboxAddress], hostname: String, maxSize: Int, uid: Int) {
        self.sender = sender
        self.recipients = recipients
        self.hostname = hostname
        self.maxSize = maxSize
        self.uid = uid
    }
}

/// Reads a message from a file descriptor and writes it into the spool as a drop.
///
/// The message is streamed: only the header section (bounded) and one line are in
/// memory at any time. Line endings become CRLF; `From:`, `Date:` and
/// `Message-ID:` are added when missing; `Bcc:` is removed. A line longer than
/// 998 octets refuses the message (RFC 5322 2.1.1): see `spool-layout.md`.
public struct Submitter {
    public let layout: SpoolLayout
    public var fileSystem: any FileSystem = SystemFileSystem()
    public var ids = QueueIDGenerator()
    /// The clock, in seconds since the Unix epoch.
    public var now: () -> Double = Timestamp.now
    /// Called after each step of the drop protocol (the crash-test hook).
    public var observe: (DropStep) -> Void = { _ in }
    /// Whether each drop first checks the spool (`SpoolCheck.requireWritable`):
    /// a long-running writer (the SMTP listener) checks once at its start.
    public var checksSpool = true
    /// The spool owner's uid, for a long-running writer that looks it up once
    /// (`DropWriter.spoolOwner`); nil looks it up at each drop.
    public var spoolOwner: uid_t?
    /// Finished message directories to build drops in (the daemon's own
    /// listener; `BlankPool`); nil creates each one.
    public var blanks: BlankPool?

    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    /// Drops the message read from `input` (until end of file, or a lone `.` line
    /// unless `ignoreDots`). Returns its queue ID.
    public func submit(_ submission: Submission, input: Int32) throws(SpoolError) -> QueueID {
        let stream = try begin(submission)
        do {
            try stream.composer.copy(from: input)
        } catch {
            stream.abandon()
            throw error
        }
        return try stream.commit()
    }

    /// Starts a drop whose lines the caller feeds (`DropStream.add(line:)`):
    /// the SMTP listener's way into the same protocol as `submit`.
    public func begin(_ submission: Submission) throws(SpoolError) -> DropStream {
        if checksSpool { try SpoolCheck.requireWritable(layout) }
        let arrival = now()
        let writer: DropWriter
        do {
            writer = try DropWriter(layout: layout, id: ids.next(), fileSystem: fileSystem, spoolOwner: spoolOwner,
                                    blanks: blanks, observe: observe)
        } catch {
            throw SpoolError(error.exitStatus, "cannot create a drop: \(error)")
        }
        return DropStream(submission: submission, writer: writer, arrival: arrival)
    }
}
