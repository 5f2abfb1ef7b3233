import PosternBase

extension ServerSession {
    /// MAIL FROM (RFC 5321 4.1.1.2) with the parameters of the extensions
    /// offered: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET and
    /// ENVID (RFC 3461), REQUIRETLS (RFC 8689), AUTH (RFC 4954 5).
    mutating func mail(_ argument: String) -> Response {
        func reply(_ code: Int, _ enhanced: String, _ text: String) -> Response {
            Response(reply: ServerReply(code, enhanced, text), next: .proceed)
        }
        guard phase != .fresh else { return reply(503, "5.5.1", "Error: send HELO/EHLO first") }
        guard transaction == nil else { return reply(503, "5.5.1", "Error: nested MAIL command") }
        guard let (path, parameters) = ServerCommand.path(argument, prefix: "FROM:") else {
            return reply(501, "5.5.4", "Syntax: MAIL FROM:<address>")
        }
        guard esmtp || parameters.isEmpty else { return reply(555, "5.5.4", "Parameters need EHLO") }
        var transaction = MailTransaction()
        for (keyword, value) in parameters {
            switch (keyword, value) {
            case ("SIZE", let value?):
                guard let size = Int(value), size >= 0 else { return reply(501, "5.5.4", "Bad SIZE parameter") }
                // RFC 1870 6: refuse at once what cannot be accepted.
                guard size <= settings.maxMessageSize else {
                    return reply(552, "5.3.4", "Message size exceeds fixed limit of \(settings.maxMessageSize) octets")
                }
                transaction.declaredSize = size
            case ("BODY", let value?):
                guard ["7BIT", "8BITMIME"].contains(value.uppercased()) else { return reply(501, "5.5.4", "Bad BODY parameter") }
            case ("SMTPUTF8", nil):
                transaction.smtputf8 = true
            case ("RET", let value?):
                // RFC 3461 4.3: at most once; stored, and honoured by the failure DSN.
                guard transaction.dsnReturn == nil, let ret = DSNReturn(keyword: value) else {
                    return reply(501, "5.5.4", "Bad RET parameter")
                }
                transaction.dsnReturn = ret
            case ("ENVID", let value?):
                // RFC 3461 4.4: kept as received (xtext), for DSNs and the next hop.
                guard transaction.envelopeID == nil, EnvelopeIDParameter.problem(inXText: value) == nil else {
                    return reply(501, "5.5.4", "Bad ENVID parameter")
                }
                transaction.envelopeID = value
            case ("REQUIRETLS", nil):
                guard tls else { return reply(530, "5.7.10", "REQUIRETLS needs a TLS session") }
                transaction.requireTLS = true
            case ("AUTH", _):
                continue   // RFC 4954 5: the original submitter; nothing here uses it
            default:
                return reply(555, "5.5.4", "Unsupported parameter \(Self.printable(keyword))")
            }
        }
        if !path.isEmpty {
            let sender: MailboxAddress
            do {
                sender = try MailboxAddress(parsing: path)
            } catch {
                return reply(553, "5.1.7", "Bad sender address: \(Self.printable(error.description))")
            }
            // RFC 6531 3.4: a non-ASCII address needs SMTPUTF8 on MAIL.
            guard !sender.requiresSMTPUTF8 || transaction.smtputf8 else {
                return reply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
            }
            transaction.sender = sender
        }
        self.transaction = transaction
        phase = .mail
        return reply(250, "2.1.0", "Ok")
    }

    /// RCPT TO (RFC 5321 4.1.1.3) with NOTIFY and ORCPT (RFC 3461 4.1, 4.2);
    /// relay authorization is decided here, at each recipient.
    mutating func recipient(_ argument: String) -> Response {
        func reply(_ code: Int, _ enhanced: String, _ text: String) -> Response {
            Response(reply: ServerReply(code, enhanced, text), next: .proceed)
        }
        guard var transaction else { return reply(503, "5.5.1", "Error: need MAIL command") }
        guard let (path, parameters) = ServerCommand.path(argument, prefix: "TO:") else {
            return reply(501, "5.5.4", "Syntax: RCPT TO:<address>")
        }
        guard esmtp || parameters.isEmpty else { return reply(555, "5.5.4", "Parameters need EHLO") }
        var original: String?
        var never = false
        for (keyword, value) in parameters {
            switch (keyword, value) {
            case ("NOTIFY", let value?):
                let words = value.uppercased().split(separator: ",").map(String.init)
                guard !words.isEmpty, Set(words).isSubset(of: ["NEVER", "SUCCESS", "FAILURE", "DELAY"]),
                      !words.contains("NEVER") || words.count == 1 else { return reply(501, "5.5.4", "Bad NOTIFY parameter") }
                never = words == ["NEVER"]
            case ("ORCPT", let value?):
                guard let semicolon = value.firstIndex(of: ";"), let decoded = XText.decode(String(value[value.index(after: semicolon)...])),
                      value[..<semicolon].lowercased() == "rfc822" || value[..<semicolon].lowercased() == "utf-8",
                      decoded.utf8.count <= 500, !decoded.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                    return reply(501, "5.5.4", "Bad ORCPT parameter")
                }
                original = decoded
            default:
                return reply(555, "5.5.4", "Unsupported parameter \(Self.printable(keyword))")
            }
        }
        let address: MailboxAddress
        do {
            // RFC 5321 4.5.1: <Postmaster> without a domain must be accepted.
            if path.lowercased() == "postmaster" {
                address = try MailboxAddress(parsing: path, completingWith: settings.hostname)
            } else {
                address = try MailboxAddress(parsing: path)
            }
        } catch {
            return reply(553, "5.1.3", "Bad recipient address: \(Self.printable(error.description))")
        }
        guard !address.requiresSMTPUTF8 || transaction.smtputf8 else {
            return reply(553, "5.6.7", "Non-ASCII address needs SMTPUTF8")
        }
        // RFC 5321 7.1: no open relay.
        guard mayRelay else { return reply(554, "5.7.1", "<\(Self.printable(path))>: Relay access denied") }
        guard transaction.recipients.count < settings.maxRecipients else {
            // RFC 5321 4.5.3.1.10: 452 "too many recipients"; the client sends the rest in another transaction.
            return reply(452, "4.5.3", "Too many recipients")
        }
        if !transaction.recipients.contains(where: { $0.smtpForm == address.smtpForm }) {
            transaction.recipients.append(address)
            if never { transaction.neverNotify += 1 }
            if let original { transaction.originals[address.smtpForm] = original }
        }
        self.transaction = transaction
        return reply(250, "2.1.5", "Ok")
    }
}
