import Foundation
import PosternCore

/// Composes a delivery status notification (RFC 3464) as a `multipart/report`
/// (RFC 6522) message: a human-readable part, the machine-readable
/// `message/delivery-status`, and the original's headers or whole message. For
/// a message that needed SMTPUTF8, RFC 6533's `message/global-delivery-status`
/// and `message/global-headers` (or `message/global`) instead.
///
/// The result is CRLF throughout with lines of at most 998 octets, ready to drop.
public enum DSNComposer {
    /// Every line but those of the returned original is built from values made
    /// one-line by `DSNLines.clean` (or split by `DSNLines.lines`) and folded by
    /// `DSNLines.fold`, so none carries a control character and none exceeds 998
    /// octets (RFC 5322 2.1.1), whatever a server answered. The returned original
    /// is the message's own bytes, whose lines the drop already limited.
    public static func compose(_ report: DSNReport, boundary: String = randomBoundary()) -> [UInt8] {
        var lines: [String] = []
        // Fields fold at 78 octets where they can; the human-readable text only
        // where it must, at 998, so its sentences keep their lines.
        func add(_ logical: String...) { lines += logical.flatMap { DSNLines.fold($0) } }
        func header(_ name: String, _ value: String) { add("\(name): \(value)") }
        header("From", DSNLines.clean(report.from))
        header("To", DSNLines.clean(report.to))
        header("Subject", report.action == .failed ? "Undelivered mail returned to sender" : "Delayed mail: delivery is still being attempted")
        header("Date", Timestamp.rfc5322(report.date))
        header("Message-ID", "<\(DSNLines.clean(report.messageID))>")
        // A malformed original ID is left out rather than cleaned: the fields are
        // optional (RFC 5322 3.6.4), and a mangled ID would thread nothing.
        if let original = report.originalMessageID, MessageID.isValid(original) {
            header("In-Reply-To", "<\(original)>")
            header("References", "<\(original)>")
        }
        // RFC 3834 5: a DSN is automatic; auto-responders must not answer it.
        header("Auto-Submitted", "auto-replied")
        header("MIME-Version", "1.0")
        header("Content-Type", "multipart/report; report-type=delivery-status; boundary=\"\(boundary)\"")
        add("", "This is a delivery status notification in MIME format (RFC 3464).", "")

        let text = humanText(report)
        add("--\(boundary)", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: \(text.allSatisfy(isASCII) ? "7bit" : "8bit")", "")
        lines += text.flatMap { DSNLines.fold($0, preferred: DSNLines.limit) }

        add("--\(boundary)", "Content-Type: message/\(report.international ? "global-delivery-status" : "delivery-status")",
            "Content-Transfer-Encoding: \(report.international ? "8bit" : "7bit")", "")
        lines += deliveryStatus(report).flatMap { DSNLines.fold($0) }

        let (type, content): (String, [UInt8]) = switch report.returned {
        case .headers(let headers): (report.international ? "message/global-headers" : "text/rfc822-headers", headers)
        case .message(let message): (report.international ? "message/global" : "message/rfc822", message)
        }
        add("--\(boundary)", "Content-Type: \(type)", "Content-Transfer-Encoding: \(content.allSatisfy { $0 < 0x80 } ? "7bit" : "8bit")", "")
        var bytes = Array(lines.map { $0 + "\r\n" }.joined().utf8)
        bytes += content
        if !content.isEmpty, content.suffix(2) != [0x0D, 0x0A] { bytes += [0x0D, 0x0A] }
        bytes += Array("--\(boundary)--\r\n".utf8)
        return bytes
    }

    /// The machine-readable part, as lines: per-message fields, then a block
    /// per recipient (RFC 3464 2.2, 2.3), each block ended by an empty line.
    static func deliveryStatus(_ report: DSNReport) -> [String] {
        var lines: [String] = []
        // RFC 3464 2.2.1: first of the per-message fields, the envelope ID
        // exactly as the sender gave it (case kept), decoded from xtext.
        if let envelopeID = report.envelopeID { lines.append("Original-Envelope-Id: \(DSNLines.clean(envelopeID))") }
        lines += ["Reporting-MTA: dns; \(DSNLines.clean(report.reportingMTA))",
                  "X-Postern-Queue-ID: \(DSNLines.clean(report.queueID))",
                  "Arrival-Date: \(Timestamp.rfc5322(report.arrival))", ""]
        for recipient in report.recipients {
            if let original = recipient.original {
                lines.append("Original-Recipient: \(addressType(original, report)); \(DSNLines.clean(original))")
            }
            lines.append("Final-Recipient: \(addressType(recipient.final, report)); \(DSNLines.clean(recipient.final))")
            lines.append("Action: \(report.action.rawValue)")
            lines.append("Status: \(status(recipient, report.action))")
            if let remote = recipient.remoteMTA { lines.append("Remote-MTA: dns; \(DSNLines.clean(remote))") }
            // RFC 3464 2.3.6: a multi-line reply is one Diagnostic-Code field,
            // its further lines continuation lines (each starts with a space).
            let diagnostic = recipient.smtpReply.map { ("smtp", $0) } ?? recipient.localDiagnostic.map { ("X-Postern", $0) }
            if case let (type, text)? = diagnostic {
                let reply = DSNLines.lines(of: text)
                lines.append("Diagnostic-Code: \(type); \(reply[0])")
                lines += reply.dropFirst().map { " " + $0 }
            }
            if let last = recipient.lastAttempt { lines.append("Last-Attempt-Date: \(Timestamp.rfc5322(last))") }
            if report.action == .delayed, let until = report.remainingAttempts.last {
                lines.append("Will-Retry-Until: \(Timestamp.rfc5322(until))")
            }
            lines.append("")
        }
        return lines
    }

    /// The status: the server's enhanced code when it gave one, else the class
    /// default for the action (RFC 3463 3.1: X.0.0).
    static func status(_ recipient: DSNReport.Recipient, _ action: DSNReport.Action) -> String {
        if let status = recipient.status, EnhancedCodeSyntax.valid(status) { return status }
        return action == .failed ? "5.0.0" : "4.0.0"
    }

    /// `rfc822` for ASCII addresses; RFC 6533's `utf-8` for the others.
    static func addressType(_ address: String, _ report: DSNReport) -> String {
        isASCII(address) ? "rfc822" : "utf-8"
    }

    /// The human-readable part, as lines; a reply keeps its line breaks, indented.
    static func humanText(_ report: DSNReport) -> [String] {
        var lines = ["This is the mail system at \(DSNLines.clean(report.reportingMTA)).", ""]
        switch report.action {
        case .failed:
            lines.append("Your message could not be delivered to the recipients below. This is a")
            lines.append("permanent failure: it will not be tried again.")
        case .delayed:
            lines.append("Your message has not been delivered yet to the recipients below. Delivery")
            lines.append("is still being attempted; you need not send it again.")
        }
        lines.append("")
        for recipient in report.recipients {
            lines.append("<\(DSNLines.clean(recipient.final))>:")
            if let reply = recipient.smtpReply {
                let text = DSNLines.lines(of: reply)
                lines.append("    \(DSNLines.clean(recipient.remoteMTA ?? "the server")) said: \(text[0])")
                lines += text.dropFirst().map { "    " + $0 }
            } else if let local = recipient.localDiagnostic {
                lines += DSNLines.lines(of: local).map { "    " + $0 }
            }
        }
        if report.action == .delayed, let last = report.remainingAttempts.last {
            let times = report.remainingAttempts.map(readable)
            lines.append("")
            lines.append("The remaining attempts are due at \(times.joined(separator: ", ")).")
            lines.append("If the last one, at \(readable(last)), fails too, you will get a failure notice.")
        }
        lines.append("")
        switch report.returned {
        case .headers: lines.append("The headers of your message are attached.")
        case .message: lines.append("Your message is attached.")
        }
        return lines
    }

    /// `2026-11-29 07:30 UTC`: a time people read at a glance.
    static func readable(_ date: Date) -> String {
        let stamp = Timestamp.format(date)   // 2026-11-29T07:30:00Z
        return stamp.prefix(10) + " " + stamp.dropFirst(11).prefix(5) + " UTC"
    }

    static func isASCII(_ text: String) -> Bool { text.utf8.allSatisfy { $0 < 0x80 } }

    public static func randomBoundary() -> String {
        var generator = SystemRandomNumberGenerator()
        return "=_postern_" + (0..<4).map { _ in String(generator.next() as UInt32, radix: 16) }.joined()
    }
}

/// `class.subject.detail` (RFC 3463 2), checked before it goes into a Status: field.
enum EnhancedCodeSyntax {
    static func valid(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && ["2", "4", "5"].contains(parts[0])
            && parts.dropFirst().allSatisfy { !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) }
    }
}
