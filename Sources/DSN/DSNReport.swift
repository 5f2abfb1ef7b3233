import Foundation

/// Everything a delivery status notification says, as plain values: the DSN
/// component composes bytes from it and knows nothing of spools or SMTP.
public struct DSNReport: Sendable {
    public enum Action: String, Sendable {
        /// RFC 3464 2.3.3: permanently failed.
        case failed
        /// Still being retried.
        case delayed
    }

    /// One recipient's block (RFC 3464 2.3).
    public struct Recipient: Sendable {
        /// The recipient as the submitter wrote it (ORCPT), when known and different.
        public var original: String?
        public var final: String
        /// RFC 3463 status, e.g. `5.1.1`; a class default is used when nil.
        public var status: String?
        /// The server that gave the reply (`mx.example.net`).
        public var remoteMTA: String?
        /// The SMTP reply code and text, when a server answered.
        public var smtpReply: String?
        /// A local error in words, when no server answered.
        public var localDiagnostic: String?
        public var lastAttempt: Date?

        public init(original: String? = nil, final: String, status: String? = nil, remoteMTA: String? = nil,
                    smtpReply: String? = nil, localDiagnostic: String? = nil, lastAttempt: Date? = nil) {
            self.original = original
            self.final = final
            self.status = status
            self.remoteMTA = remoteMTA
            self.smtpReply = smtpReply
            self.localDiagnostic = localDiagnostic
            self.lastAttempt = lastAttempt
        }
    }

    /// What of the original message goes back.
    public enum Returned: Sendable {
        /// The header section only (`text/rfc822-headers`, RFC 6522 and
        /// RFC 3461 RET=HDRS; `message/global-headers` when international).
        case headers([UInt8])
        /// The whole message (`message/rfc822`).
        case message([UInt8])
    }

    public var action: Action
    /// `dns; NAME` in Reporting-MTA, and the host of the fresh Message-ID.
    public var reportingMTA: String
    public var from: String
    /// The original envelope sender, who gets the report.
    public var to: String
    public var queueID: String
    public var arrival: Date
    public var date: Date
    /// The fresh Message-ID of the DSN, without brackets.
    public var messageID: String
    /// The original Message-ID, for In-Reply-To and References.
    public var originalMessageID: String?
    /// RFC 3461 ENVID, decoded from xtext: the `Original-Envelope-Id:` field
    /// (RFC 3464 2.2.1), present only when the envelope had one.
    public var envelopeID: String?
    public var recipients: [Recipient]
    /// For a delayed DSN: when the remaining attempts are due, the last being
    /// the one after which the message is given up (the Will-Retry-Until).
    public var remainingAttempts: [Date] = []
    /// The original needs SMTPUTF8: use RFC 6533's global types.
    public var international = false
    public var returned: Returned

    public init(action: Action, reportingMTA: String, from: String, to: String, queueID: String, arrival: Date,
                date: Date, messageID: String, originalMessageID: String?, recipients: [Recipient], returned: Returned) {
        self.action = action
        self.reportingMTA = reportingMTA
        self.from = from
        self.to = to
        self.queueID = queueID
        self.arrival = arrival
        self.date = date
        self.messageID = messageID
        self.originalMessageID = originalMessageID
        self.recipients = recipients
        self.returned = returned
    }
}
