import PosternCore
import TLS

extension SMTPClient {
    /// Delivers one message to its recipients on this connection.
    ///
    /// Never throws: each recipient gets its own outcome. Recipients beyond the
    /// server's RCPTMAX (RFC 9422), or refused with 452 after others were
    /// accepted (RFC 5321 4.5.3.1.10), go into further transactions on the same
    /// connection, with RSET between them.
    public func deliver(_ transaction: Transaction) -> DeliveryReport {
        if let refusal = localRefusal(transaction) {
            let error = SMTPError(.refused(refusal), command: "MAIL FROM")
            return DeliveryReport(outcomes: transaction.recipients.map { ($0, .failure(error)) }, connectionUsable: true, transactions: 0)
        }
        var report = DeliveryReport(outcomes: [], connectionUsable: true, transactions: 0)
        var pending = transaction.recipients
        let batchSize = facts.extensions.recipientLimit ?? Int.max
        while !pending.isEmpty {
            if report.transactions > 0 {
                do throws(SMTPError) {
                    let reset = try command("RSET", timeout: options.timeouts.command)
                    guard reset.code == 250 else { throw SMTPError(.reply(reset), command: "RSET") }
                } catch {
                    report.outcomes += pending.map { ($0, .failure(error)) }
                    report.connectionUsable = false
                    break
                }
            }
            let batch = Array(pending.prefix(batchSize))
            pending.removeFirst(batch.count)
            report.transactions += 1
            let result = run(transaction, recipients: batch)
            report.outcomes += result.outcomes
            pending = result.deferred + pending
            if let failure = result.connectionFailure {
                report.outcomes += pending.map { ($0, .failure(failure)) }
                report.connectionUsable = false
                break
            }
        }
        return report
    }

    /// What the client refuses before sending anything (RFC 1870, 6531, 8689).
    func localRefusal(_ transaction: Transaction) -> SMTPError.Refusal? {
        let size = transaction.message.size
        if let limit = facts.extensions.sizeLimit, size > limit { return .messageTooLarge(size: size, limit: limit) }
        if transaction.smtputf8, !facts.extensions.smtputf8 { return .smtputf8Unsupported }
        // RFC 8689 4.2.1: REQUIRETLS only over TLS whose certificate was verified (DANE or PKIX).
        if transaction.requireTLS, facts.tls?.verified != true || !facts.extensions.requireTLS { return .requireTLSUnsupported }
        do {
            if let offset = try DataEncoder.firstBareLineEnding(in: transaction.message) { return .bareLineEnding(offset: offset) }
        } catch {
            return error
        }
        return nil
    }

    struct BatchResult {
        var outcomes: [(recipient: String, result: Result<SMTPReply, SMTPError>)] = []
        /// Recipients refused with 452 after others were accepted: for the next transaction.
        var deferred: [String] = []
        /// Set when the connection cannot be used any more.
        var connectionFailure: SMTPError?
    }

    /// One SMTP transaction: MAIL, RCPTs, DATA, the message, the final reply.
    func run(_ transaction: Transaction, recipients: [String]) -> BatchResult {
        var result = BatchResult()
        let mail = mailCommand(transaction)
        let rcpts = recipients.map { "RCPT TO:<\($0)>" + orcptParameter(transaction, $0) }
        let pipelined = facts.extensions.pipelining
        var sendFailure: SMTPError?
        if pipelined {
            // RFC 2920 3.1: MAIL, RCPT and DATA may all go in one write.
            do { try send([mail] + rcpts + ["DATA"], timeout: options.timeouts.mail, command: "MAIL FROM") } catch { sendFailure = error }
        }

        // Reads the reply to a command, sending it first when not pipelining.
        func step(_ line: String, command: String, timeout: Double) throws(SMTPError) -> SMTPReply {
            if !pipelined { try send([line], timeout: timeout, command: command) }
            do {
                return try readReply(command: command, timeout: timeout)
            } catch {
                // A write that failed explains a read that fails after it.
                throw sendFailure ?? error
            }
        }

        let mailReply: SMTPReply
        do {
            mailReply = try step(mail, command: "MAIL FROM", timeout: options.timeouts.mail)
        } catch {
            result.outcomes = recipients.map { ($0, .failure(error)) }
            result.connectionFailure = error
            return result
        }
        guard mailReply.isPositive else {
            // Every recipient shares the MAIL reply's fate, even if the server
            // hangs up next: a 5xx stays permanent, not a network error.
            let error = SMTPError(.reply(mailReply), command: "MAIL FROM")
            result.outcomes = recipients.map { ($0, .failure(error)) }
            if mailReply.code == 421 { result.connectionFailure = error }
            if pipelined {
                do {
                    for _ in rcpts { _ = try readReply(command: "RCPT TO", timeout: options.timeouts.recipient) }
                    try readDataReplyAndAbort()
                } catch {
                    result.connectionFailure = error
                }
            }
            return result
        }
        var accepted: [String] = []
        for (index, recipient) in recipients.enumerated() {
            let reply: SMTPReply
            do {
                reply = try step(rcpts[index], command: "RCPT TO", timeout: options.timeouts.recipient)
            } catch {
                result.outcomes += recipients[index...].map { ($0, .failure(error)) }
                result.outcomes += accepted.map { ($0, .failure(error)) }
                result.connectionFailure = error
                return result
            }
            if reply.isPositive {
                accepted.append(recipient)
            } else if reply.code == 452, !accepted.isEmpty {
                result.deferred.append(recipient)
            } else {
                result.outcomes.append((recipient, .failure(SMTPError(.reply(reply), command: "RCPT TO"))))
                if reply.code == 421 {
                    result.outcomes += recipients[(index + 1)...].map { ($0, .failure(SMTPError(.reply(reply), command: "RCPT TO"))) }
                    result.outcomes += accepted.map { ($0, .failure(SMTPError(.reply(reply), command: "RCPT TO"))) }
                    result.connectionFailure = SMTPError(.reply(reply), command: "RCPT TO")
                    return result
                }
            }
        }
        if accepted.isEmpty && !pipelined { return result }

        let dataReply: SMTPReply
        do {
            dataReply = try step("DATA", command: "DATA", timeout: options.timeouts.dataInitiation)
        } catch {
            result.outcomes += accepted.map { ($0, .failure(error)) }
            result.connectionFailure = error
            return result
        }
        if accepted.isEmpty {
            // RFC 2920 3.1: with no valid recipient, a 354 must still be answered with an empty message.
            if dataReply.code == 354 { _ = try? abortData() }   // nothing was accepted; the outcome is already known
            return result
        }
        guard dataReply.code == 354 else {
            result.outcomes += accepted.map { ($0, .failure(SMTPError(.reply(dataReply), command: "DATA"))) }
            return result
        }
        do throws(SMTPError) {
            try DataEncoder.encode(transaction.message) { (bytes) throws(SMTPError.Failure) in
                do throws(StreamError) { try stream.write(bytes, deadline: .after(options.timeouts.dataBlock)) } catch { throw .stream(error) }
            }
            let final = try readReply(command: "end of data", timeout: options.timeouts.dataTermination)
            let outcome: Result<SMTPReply, SMTPError> = final.isPositive ? .success(final) : .failure(SMTPError(.reply(final), command: "end of data"))
            result.outcomes += accepted.map { ($0, outcome) }
            if final.code == 421 { result.connectionFailure = SMTPError(.reply(final), command: "end of data") }
        } catch {
            result.outcomes += accepted.map { ($0, .failure(error)) }
            result.connectionFailure = error
        }
        return result
    }

    /// MAIL FROM with the parameters the message and the server call for.
    func mailCommand(_ transaction: Transaction) -> String {
        var line = "MAIL FROM:<\(transaction.sender)>"
        let extensions = facts.extensions
        if extensions.has("SIZE") { line += " SIZE=\(transaction.message.size)" }          // RFC 1870
        if transaction.eightBit, extensions.eightBitMIME { line += " BODY=8BITMIME" }       // RFC 6152
        if transaction.smtputf8 { line += " SMTPUTF8" }                                     // RFC 6531 3.4
        if transaction.requireTLS { line += " REQUIRETLS" }                                 // RFC 8689 4.1
        // RFC 3461 4.3, 4.4: only to a server that announced DSN; never otherwise.
        if extensions.dsn, let ret = transaction.dsnReturn { line += " RET=\(ret.keyword)" }
        if extensions.dsn, let envid = transaction.envelopeID, EnvelopeIDParameter.problem(inXText: envid) == nil {
            line += " ENVID=\(envid)"
        }
        return line
    }

    /// ` ORCPT=rfc822;ADDRESS` (RFC 3461 4.2) for a recipient that has an
    /// original, when the server offers DSN; "" otherwise. The address is
    /// xtext (RFC 3461 4): `+`, `=` and every octet outside 33-126 as `+HH`.
    /// A non-ASCII original (RFC 6533's utf-8 type would need SMTPUTF8) and
    /// one over 500 characters (RFC 3461 4.2's bound) are not sent.
    func orcptParameter(_ transaction: Transaction, _ recipient: String) -> String {
        guard facts.extensions.dsn, let original = transaction.originalRecipients[recipient],
              original.utf8.allSatisfy({ $0 < 0x80 }) else { return "" }
        let text = "rfc822;" + XText.encode(original)
        return text.utf8.count <= 500 ? " ORCPT=" + text : ""
    }

    /// After a failed pipelined MAIL: reads the DATA reply, and ends a 354 at once.
    private func readDataReplyAndAbort() throws(SMTPError) {
        let reply = try readReply(command: "DATA", timeout: options.timeouts.dataInitiation)
        if reply.code == 354 { try abortData() }
    }

    /// Sends an empty message body to close a DATA no one should have started.
    private func abortData() throws(SMTPError) {
        try send(["."], timeout: options.timeouts.dataBlock, command: "DATA")
        _ = try readReply(command: "end of data", timeout: options.timeouts.dataTermination)
    }
}
