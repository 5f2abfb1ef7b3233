import DSN
import Foundation
import Glibc
import Logging
import Monitoring
import PosternCore
import Spool

/// Sends DSNs through the spool: a notification is composed, then dropped by
/// the durable drop protocol with the null sender (RFC 5321 4.5.5), and the
/// daemon delivers it like any other message.
public struct SpoolDSN: DSNHook {
    /// What the configuration says about DSNs.
    public struct Settings: Sendable {
        public var hostname: String
        /// The From: address; MAILER-DAEMON@hostname when empty.
        public var from: String
        /// Failure DSNs carry the whole message up to this size; 0 headers only.
        public var returnFullUpTo: Int
        /// Up to what size a sender's RET=FULL (RFC 3461 4.3) returns the whole
        /// message when `returnFullUpTo` is smaller: Postfix's default
        /// `message_size_limit`, beyond which many servers would refuse the DSN.
        public var requestedFullUpTo = 10_240_000
        /// Where failures of null-sender messages go, if anywhere.
        public var postmaster: String?
        public var copyFailuresToPostmaster: Bool

        public init(hostname: String, from: String = "", returnFullUpTo: Int = 0, postmaster: String? = nil,
                    copyFailuresToPostmaster: Bool = false) {
            self.hostname = hostname
            self.from = from
            self.returnFullUpTo = returnFullUpTo
            self.postmaster = postmaster
            self.copyFailuresToPostmaster = copyFailuresToPostmaster
        }

        var fromAddress: String { from.isEmpty ? "MAILER-DAEMON@\(hostname)" : from }
    }

    public let layout: SpoolLayout
    public let settings: Settings
    public let logger: Logger
    let ids = QueueIDGenerator()

    let metrics: PosternMetrics?
    /// The daemon's account of a full or read-only spool: a DSN that cannot
    /// be written for such a reason is said there once, not here each time.
    let trouble: SpoolTrouble?

    public init(layout: SpoolLayout, settings: Settings, logger: Logger, metrics: PosternMetrics? = nil,
                trouble: SpoolTrouble? = nil) {
        self.layout = layout
        self.settings = settings
        self.logger = logger
        self.metrics = metrics
        self.trouble = trouble
    }

    @discardableResult
    public func failed(_ envelope: Envelope, recipients: [Recipient]) -> Bool {
        guard !recipients.isEmpty else { return true }
        guard !envelope.notifyNever else {
            logger.warning("undeliverable notification; not reported further; kept in hold/",
                           metadata: ["id": "\(envelope.id)", "recipients": "\(recipients.map(\.address).joined(separator: ","))"])
            return true
        }
        guard let sender = envelope.sender else {
            // RFC 5321 4.5.5: a message with the null sender is never answered
            // with a DSN; the postmaster may hear of it instead, also from <>.
            logger.warning("\("undeliverable bounce; no DSN for the null sender" + (settings.postmaster == nil ? "; kept in hold/" : ""))",
                           metadata: ["id": "\(envelope.id)", "recipients": "\(recipients.map(\.address).joined(separator: ","))"])
            if let postmaster = settings.postmaster {
                return send(.failed, envelope, recipients, to: postmaster, full: false, schedule: [], notifyNever: true)
            }
            return true
        }
        guard send(.failed, envelope, recipients, to: sender, full: returnsFull(envelope), schedule: []) else {
            return false
        }
        if settings.copyFailuresToPostmaster, let postmaster = settings.postmaster {
            // A copy: its loss is logged, and retrying would repeat the sender's DSN.
            send(.failed, envelope, recipients, to: postmaster, full: false, schedule: [], notifyNever: true)
        }
        return true
    }

    public var reportsDoubleBounces: Bool { settings.postmaster != nil }

    /// Whether the sender's failure DSN returns the whole message or only its
    /// header section. RFC 3461 4.3: RET=HDRS asks for the headers, RET=FULL
    /// for the whole message (honoured up to `requestedFullUpTo`, or
    /// `returnFullUpTo` if larger); without RET the MTA chooses, and
    /// `dsn.return_full_up_to` does. RFC 8689 4.4 outweighs them all: a
    /// REQUIRETLS message's body must not come back in a notification that
    /// travels without REQUIRETLS, as DSNs do.
    func returnsFull(_ envelope: Envelope) -> Bool {
        guard envelope.requireTLS != true else { return false }
        switch envelope.dsnReturn {
        case .hdrs: return false
        case .full: return envelope.size <= max(settings.returnFullUpTo, settings.requestedFullUpTo)
        case nil: return envelope.size <= settings.returnFullUpTo
        }
    }

    public func delayed(_ envelope: Envelope, recipients: [Recipient], schedule: [Date]) {
        guard !recipients.isEmpty, !envelope.notifyNever, let sender = envelope.sender else { return }
        send(.delayed, envelope, recipients, to: sender, full: false, schedule: schedule)
    }

    /// Composes and drops one notification; false when it could not be dropped.
    @discardableResult
    private func send(_ action: DSNReport.Action, _ envelope: Envelope, _ recipients: [Recipient], to address: String,
                      full: Bool, schedule: [Date], notifyNever: Bool = false) -> Bool {
        let id = ids.next()
        let original: [UInt8]
        do {
            original = try readOriginal(envelope.id, size: envelope.size, full: full)
        } catch {
            // Without the original, the notification still tells what happened.
            logger.error("cannot read the message for its DSN", metadata: ["id": "\(envelope.id)", "error": "\(error)"])
            original = []
        }
        var report = DSNReport(action: action, reportingMTA: settings.hostname, from: settings.fromAddress, to: address,
                               queueID: envelope.id.rawValue, arrival: envelope.arrival, date: Date(),
                               messageID: "\(id)@\(settings.hostname)", originalMessageID: envelope.messageID,
                               recipients: recipients.map(Self.recipient), returned: full ? .message(original) : .headers(original))
        report.international = envelope.smtputf8
        // Checked xtext (Envelope.decode), so it decodes to printable ASCII.
        report.envelopeID = envelope.envelopeID.flatMap(XText.decode)
        report.remainingAttempts = schedule
        var bytes = DSNComposer.compose(report)
        if Self.longestLine(bytes) > 998 {
            // The composer keeps its own lines within RFC 5322 2.1.1; only the
            // returned original can break the limit (a hand-made drop, whose
            // content no one checked). A DSN no server should accept is no DSN.
            logger.warning("the original has lines over 998 octets; the DSN leaves it out", metadata: ["id": "\(envelope.id)"])
            report.returned = .headers([])
            bytes = DSNComposer.compose(report)
        }
        do {
            let writer = try DropWriter(layout: layout, id: id)
            try writer.write(bytes)
            var dsnEnvelope = Envelope(id: id, sender: nil, recipients: [Recipient(address: address)], arrival: Date(),
                                       size: writer.size, uid: Int(getuid()))
            dsnEnvelope.messageID = report.messageID
            dsnEnvelope.eightBit = bytes.contains { $0 >= 0x80 }
            dsnEnvelope.smtputf8 = !address.unicodeScalars.allSatisfy(\.isASCII)
            dsnEnvelope.notifyNever = notifyNever
            try writer.commit(dsnEnvelope)
            metrics?.dsn(kind: notifyNever ? .postmaster : action == .failed ? .failed : .delayed)
            logger.info("dsn", metadata: ["id": "\(envelope.id)", "dsn": "\(id)", "kind": "\(action.rawValue)", "to": "\(address)",
                                          "recipients": "\(recipients.map(\.address).joined(separator: ","))"])
            return true
        } catch {
            if trouble?.absorb(error, while: "writing a DSN") != true {
                logger.error("cannot drop a DSN", metadata: ["id": "\(envelope.id)", "kind": "\(action.rawValue)", "error": "\(error)"])
            }
            return false
        }
    }

    /// The length of the longest line of `bytes`, CRLF not counted.
    static func longestLine(_ bytes: [UInt8]) -> Int {
        var longest = 0
        var start = 0
        for index in bytes.indices where bytes[index] == 0x0A {
            longest = max(longest, index - start - (index > start && bytes[index - 1] == 0x0D ? 1 : 0))
            start = index + 1
        }
        return max(longest, bytes.count - start)
    }

    static func recipient(_ recipient: Recipient) -> DSNReport.Recipient {
        let result = recipient.lastResult
        let answered = result?.code != nil
        return DSNReport.Recipient(original: recipient.original, final: recipient.address, status: result?.enhanced,
                                   remoteMTA: result?.host, smtpReply: answered ? result?.text : nil,
                                   localDiagnostic: answered ? nil : result?.text, lastAttempt: result?.time)
    }

    /// The original's header section, or the whole message, from whichever
    /// area holds it: opened through the message directory without following a
    /// link or blocking on a FIFO, and only as a regular file of the size the
    /// envelope states, so that nothing but the message can be returned.
    func readOriginal(_ id: QueueID, size: Int, full: Bool) throws -> [UInt8] {
        for area in [SpoolLayout.Area.queue, .hold] {
            guard let directory = try? DirectoryHandle(path: layout.path(area, id)) else { continue }
            let (fd, _) = try directory.openRegularFile(SpoolLayout.messageFile, expectedSize: size)
            defer { close(fd) }   // a read-only descriptor; closing cannot lose anything
            let bytes = try RegularFile.read(fd, upTo: full ? size : min(size, HeaderSection.maxSize))
            if !full, let end = bytes.firstRange(of: [13, 10, 13, 10]) { return Array(bytes[..<end.upperBound]) }
            return bytes
        }
        throw SpoolIOError("open", layout.path(.queue, id), ENOENT)
    }
}
