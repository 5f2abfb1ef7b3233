import Glibc
import Logging
import Monitoring
import PosternCore
import SpoolDrop
import TLS

/// What every connection of a listener shares: the settings, the spool and
/// its group commit, the TLS context, the log and the metrics.
final class ListenerContext: @unchecked Sendable {
    let settings: SessionSettings
    let layout: SpoolLayout
    let submitter: Submitter
    /// Share the drop protocol's last sync between sessions (group commit):
    /// of `drop/`, and of `queue/` for messages queued straight away.
    let dropCommit: DropGroupCommit
    let queueCommit: DropGroupCommit
    /// The daemon beside the listener, when it takes messages straight into `queue/`.
    let handoff: QueueHandoff?
    let tls: TLSServerContext?
    let timeout: Double
    let logger: Logger
    let metrics: PosternMetrics

    init(settings: SessionSettings, layout: SpoolLayout, tls: TLSServerContext?, timeout: Double,
         handoff: QueueHandoff?, logger: Logger, metrics: PosternMetrics) {
        self.settings = settings
        self.layout = layout
        var submitter = Submitter(layout: layout)
        submitter.checksSpool = false   // checked once, when the listener starts
        submitter.spoolOwner = try? DropWriter.spoolOwner(layout)   // nil: looked up at each drop
        submitter.blanks = handoff?.blanks
        submitter.fileSystem = InjectedSyncFailure.wrapping(submitter.fileSystem, layout: layout)
        self.submitter = submitter
        dropCommit = DropGroupCommit(layout: layout, area: .drop, fileSystem: submitter.fileSystem)
        queueCommit = DropGroupCommit(layout: layout, area: .queue, fileSystem: submitter.fileSystem)
        handoff?.blanks?.follow(queueCommit)
        handoff?.blanks?.makeAhead(layout: layout, fileSystem: submitter.fileSystem) { [metrics] in metrics.smtpBlanksMade($0) }
        self.handoff = handoff
        self.tls = tls
        self.timeout = timeout
        self.logger = logger
        self.metrics = metrics
    }

    /// Starts the drop of a transaction's message, its `Received:` field set.
    func begin(_ transaction: MailTransaction, session: ServerSession) throws(SpoolError) -> DropStream {
        var submission = Submission(sender: transaction.sender, recipients: transaction.recipients,
                                    hostname: settings.hostname, maxSize: settings.maxMessageSize, uid: Int(getuid()))
        submission.ignoreDots = true
        submission.maxRecipients = settings.maxRecipients
        submission.originals = transaction.originals
        submission.notifyNever = transaction.neverNotify == transaction.recipients.count
        submission.requireTLS = transaction.requireTLS
        submission.dsnReturn = transaction.dsnReturn
        submission.envelopeID = transaction.envelopeID
        let stream = try submitter.begin(submission)
        stream.trace = ReceivedField.bytes(session: session, transaction: transaction, id: stream.id,
                                           hostname: settings.hostname, time: stream.arrivalTime)
        return stream
    }

    /// Commits a finished message: straight into `queue/` when the daemon
    /// takes it so (`QueueHandoff`), else into `drop/`.
    func commit(_ stream: DropStream, _ transaction: MailTransaction) throws(SpoolError) -> QueueID {
        guard let handoff, handoff.takes(transaction.recipients.map(\.routingDomain)) else {
            return try stream.commit(group: dropCommit)
        }
        let id = stream.id
        handoff.expect(id)
        do throws(SpoolError) {
            try stream.commit(group: queueCommit)
        } catch {
            handoff.unsure(id)
            throw error
        }
        handoff.queued(id, stream.committedEnvelope)
        return id
    }

    /// The metrics and a log line for a message refused after its data
    /// (accepted ones are counted by `accepted`).
    func finished(_ outcome: ServerSession.DataOutcome, session: ServerSession) {
        let reason: SMTPRejection? = switch outcome {
        case .accepted: nil
        case .tooBig: .tooBig
        case .lineTooLong: .lineTooLong
        case .nul: .nul
        case .invalid: .invalid
        case .temporaryFailure: .temporary
        }
        guard let reason else { return }
        metrics.smtpRejected(reason)
        logger.info("refused", metadata: ["client": "\(session.clientText)", "reason": "\(reason.rawValue)",
                                          "sender": "\(session.transaction?.sender?.smtpForm ?? "")"])
    }

    /// One log line and the metrics for an accepted message.
    func accepted(id: QueueID, size: Int, transaction: MailTransaction, session: ServerSession) {
        metrics.smtpAccepted(bytes: size)
        var metadata: Logger.Metadata = [
            "id": "\(id)", "client": "\(session.clientText)", "helo": "\(ServerSession.printable(session.heloName ?? ""))",
            "sender": "\(transaction.sender?.smtpForm ?? "")", "recipients": "\(transaction.recipients.count)",
            "size": "\(size)", "tls": "\(session.tls ? "yes" : "no")",
        ]
        if let user = session.authenticatedUser { metadata["user"] = "\(ServerSession.printable(user))" }
        logger.info("received", metadata: metadata)
    }
}

/// The `Received:` trace field the listener puts on top of each message
/// (RFC 5321 4.4), with the protocol names of RFC 3848 and RFC 6531 7.2:
///
///     Received: from client.example ([192.0.2.1])
///             by mail.example.org (Postern) with ESMTPS id 01K...
///             for <bob@example.net>; Fri, 04 Dec 2026 21:00:00 +0000
enum ReceivedField {
    static func bytes(session: ServerSession, transaction: MailTransaction, id: QueueID,
                      hostname: String, time: Double) -> [UInt8] {
        let helo = ServerSession.printable(session.heloName ?? "unknown")
        let literal = session.clientAddress.count == 16 ? "IPv6:\(session.clientText)" : session.clientText
        var protocolName = transaction.smtputf8 ? "UTF8SMTP" : session.esmtp ? "ESMTP" : "SMTP"
        if session.tls { protocolName += "S" }
        if session.authenticatedUser != nil { protocolName += "A" }
        if protocolName == "SMTPS" || protocolName == "SMTPA" || protocolName == "SMTPSA" { protocolName = "E" + protocolName }
        // One recipient is named (RFC 5321 4.4 "for"); several would disclose each to the others.
        let recipient = transaction.recipients.count == 1 ? "\r\n\tfor <\(transaction.recipients[0].smtpForm)>" : ""
        let text = "Received: from \(helo) ([\(literal)])\r\n\tby \(hostname) (Postern) with \(protocolName) id \(id)"
            + "\(recipient); \(Timestamp.rfc5322(epochSeconds: time))\r\n"
        return Array(text.utf8)
    }
}
