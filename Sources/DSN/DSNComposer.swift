import Foundation
import PosternCore

/// Composes a delivery status notification (RFC 3464) as a `multipart/report`
/// (RFC 6522) message: a human-readable part, the machine-readable
/// `message/delivery-status`, and the original's headers or whole message. For
/// a message that needed SMTPUTF8, RFC 6533's `message/global-delivery-status`
/// and `message/global-headers` (or `message/global`) instead.
///
/// The result is CRLF throughout with lines under 998 octets, ready to drop.
public enum DSNComposer {
    public static func compose(_ report: DSNReport, boundary: String = randomBoundary()) -> [UInt8] {
        var out = ""
        let crlf = "\r\n"
        func header(_ name: String, _ value: String) { out += fold("\(name): \(value)") + crlf }
        header("From", report.from)
        header("To", report.to)
        header("Subject", report.action == .failed ? "Undelivered mail returned to sender" : "Delayed mail: delivery is still being attempted")
        header("Date", Timestamp.rfc5322(report.date))
        header("Message-ID", "<\(report.messageID)>")
        if let original = report.originalMessageID {
            header("In-Reply-To", "<\(original)>")
            header("References", "<\(original)>")
        }
        // RFC 3834 5: a DSN is automatic; auto-responders must not answer it.
        header("Auto-Submitted", "auto-replied")
        header("MIME-Version", "1.0")
        header("Content-Type", "multipart/report; report-type=delivery-status; boundary=\"\(boundary)\"")
        out += crlf + "This is a delivery status notification in MIME format (RFC 3464)." + crlf + crlf

        let text = humanText(report)
        out += "--\(boundary)" + crlf
        out += "Content-Type: text/plain; charset=utf-8" + crlf
        out += "Content-Transfer-Encoding: \(isASCII(text) ? "7bit" : "8bit")" + crlf + crlf
        out += text.replacingOccurrences(of: "\n", with: crlf) + crlf

        out += "--\(boundary)" + crlf
        out += "Content-Type: message/\(report.international ? "global-delivery-status" : "delivery-status")" + crlf
        out += "Content-Transfer-Encoding: \(report.international ? "8bit" : "7bit")" + crlf + crlf
        out += deliveryStatus(report).replacingOccurrences(of: "\n", with: crlf)

        out += "--\(boundary)" + crlf
        var bytes = Array(out.utf8)
        let (type, content): (String, [UInt8]) = switch report.returned {
        case .headers(let headers): (report.international ? "message/global-headers" : "text/rfc822-headers", headers)
        case .message(let message): (report.international ? "message/global" : "message/rfc822", message)
        }
        let encoding = content.allSatisfy { $0 < 0x80 } ? "7bit" : "8bit"
        bytes += Array("Content-Type: \(type)\(crlf)Content-Transfer-Encoding: \(encoding)\(crlf)\(crlf)".utf8)
        bytes += content
        if !content.isEmpty, content.suffix(2) != [0x0D, 0x0A] { bytes += [0x0D, 0x0A] }
        bytes += Array("--\(boundary)--\(crlf)".utf8)
        return bytes
    }

    /// The machine-readable part: per-message fields, then a block per recipient (RFC 3464 2.2, 2.3).
    static func deliveryStatus(_ report: DSNReport) -> String {
        var text = "Reporting-MTA: dns; \(report.reportingMTA)\n"
        text += "X-Postern-Queue-ID: \(report.queueID)\n"
        text += "Arrival-Date: \(Timestamp.rfc5322(report.arrival))\n\n"
        for recipient in report.recipients {
            var lines: [String] = []
            if let original = recipient.original { lines.append("Original-Recipient: \(addressType(original, report)); \(original)") }
            lines.append("Final-Recipient: \(addressType(recipient.final, report)); \(recipient.final)")
            lines.append("Action: \(report.action.rawValue)")
            lines.append("Status: \(status(recipient, report.action))")
            if let remote = recipient.remoteMTA { lines.append("Remote-MTA: dns; \(remote)") }
            if let reply = recipient.smtpReply {
                lines.append("Diagnostic-Code: smtp; \(oneLine(reply))")
            } else if let local = recipient.localDiagnostic {
                lines.append("Diagnostic-Code: X-Postern; \(oneLine(local))")
            }
            if let last = recipient.lastAttempt { lines.append("Last-Attempt-Date: \(Timestamp.rfc5322(last))") }
            if report.action == .delayed, let until = report.remainingAttempts.last {
                lines.append("Will-Retry-Until: \(Timestamp.rfc5322(until))")
            }
            text += lines.map { fold($0, newline: "\n") }.joined(separator: "\n") + "\n\n"
        }
        return text
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

    static func humanText(_ report: DSNReport) -> String {
        var text = "This is the mail system at \(report.reportingMTA).\n\n"
        switch report.action {
        case .failed:
            text += "Your message could not be delivered to the recipients below. This is a\n"
            text += "permanent failure: it will not be tried again.\n\n"
        case .delayed:
            text += "Your message has not been delivered yet to the recipients below. Delivery\n"
            text += "is still being attempted; you need not send it again.\n\n"
        }
        for recipient in report.recipients {
            text += "<\(recipient.final)>:\n"
            if let reply = recipient.smtpReply {
                text += "    \(recipient.remoteMTA ?? "the server") said: \(oneLine(reply))\n"
            } else if let local = recipient.localDiagnostic {
                text += "    \(oneLine(local))\n"
            }
        }
        if report.action == .delayed, let last = report.remainingAttempts.last {
            let times = report.remainingAttempts.map(readable)
            text += "\nThe remaining attempts are due at \(times.joined(separator: ", ")).\n"
            text += "If the last one, at \(readable(last)), fails too, you will get a failure notice.\n"
        }
        switch report.returned {
        case .headers: text += "\nThe headers of your message are attached.\n"
        case .message: text += "\nYour message is attached.\n"
        }
        return text
    }

    /// `2026-11-29 07:30 UTC`: a time people read at a glance.
    static func readable(_ date: Date) -> String {
        let stamp = Timestamp.format(date)   // 2026-11-29T07:30:00Z
        return stamp.prefix(10) + " " + stamp.dropFirst(11).prefix(5) + " UTC"
    }

    /// Reply lines joined by spaces, control characters removed.
    static func oneLine(_ text: String) -> String {
        var line = text.split(whereSeparator: \.isNewline).joined(separator: " ")
        line.unicodeScalars.removeAll { $0.value < 0x20 || $0.value == 0x7F }
        return line
    }

    /// Folds a field at white space so no line exceeds 78 characters where it can be helped (RFC 5322 2.2.3).
    static func fold(_ line: String, newline: String = "\r\n") -> String {
        guard line.count > 78 else { return line }
        var result = ""
        var current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            if !current.isEmpty, current.count + 1 + word.count > 78 {
                result += current + newline
                current = " " + word
            } else {
                current += (current.isEmpty ? "" : " ") + word
            }
        }
        return result + current
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
