/// What `sendmail` does to the header section of a submitted message: extract
/// recipients for `-t`, remove `Bcc:`, and add `From:`, `Date:` and `Message-ID:`
/// when the message lacks them (RFC 5322 3.6 requires the first two; 3.6.4 says a
/// message SHOULD have a Message-ID, and many receivers score its absence as spam).
///
/// Fields that are present are never rewritten: the submitter's headers are theirs.
public struct HeaderCompletion: Sendable {
    /// The envelope sender; `nil` for the null sender.
    public var sender: MailboxAddress?
    /// The full name for a generated `From:` (`-F`), if any.
    public var fullName: String?
    /// The host name for generated addresses and Message-IDs.
    public var hostname: String
    /// When the message was submitted, in seconds since the Unix epoch.
    public var time: Double
    public var queueID: QueueID

    public init(sender: MailboxAddress?, fullName: String?, hostname: String, time: Double, queueID: QueueID) {
        self.sender = sender
        self.fullName = fullName
        self.hostname = hostname
        self.time = time
        self.queueID = queueID
    }

    /// The recipients named in `To:`, `Cc:` and `Bcc:`, in order, for `sendmail -t`.
    /// A bare local part (`To: root`, which cron and scripts write) is
    /// completed with `domain` when one is given, as on the command line.
    ///
    /// - Throws: `AddressError` for the first field value or address that does not parse.
    public static func recipients(in headers: HeaderSection, completingWith domain: String? = nil) throws(AddressError) -> [MailboxAddress] {
        var result: [MailboxAddress] = []
        for field in headers.fields where ["to", "cc", "bcc"].contains(field.name.lowercased()) {
            for text in try AddressList.addresses(in: field.value) {
                if let domain {
                    result.append(try MailboxAddress(parsing: text, completingWith: domain))
                } else {
                    result.append(try MailboxAddress(parsing: text))
                }
            }
        }
        return result
    }

    /// Removes `Bcc:` and adds what is missing. Returns the message's Message-ID
    /// (without angle brackets), whether found or generated, for the envelope;
    /// nil when the submitter's own Message-ID is malformed (it stays in the
    /// message untouched, but the envelope, which refuses a malformed
    /// `message_id`, records none, and a DSN then has no `In-Reply-To:`).
    @discardableResult
    public func complete(_ headers: inout HeaderSection) -> String? {
        // RFC 5322 3.6.3: Bcc recipients must not be disclosed to the others.
        headers.removeAll(named: "Bcc")
        if !headers.contains("From") {
            headers.append(HeaderField(name: "From", value: fromValue))
        }
        if !headers.contains("Date") {
            headers.append(HeaderField(name: "Date", value: Timestamp.rfc5322(epochSeconds: time)))
        }
        if let existing = headers.values(of: "Message-ID").first {
            return MessageID.extract(fromFieldValue: existing)
        }
        let messageID = "\(queueID)@\(hostname)"
        headers.append(HeaderField(name: "Message-ID", value: "<\(messageID)>"))
        return MessageID.isValid(messageID) ? messageID : nil
    }

    /// `From:` for a message without one: the envelope sender with the full name
    /// as a display name; for the null sender, the mailer daemon of this host.
    var fromValue: String {
        let address = sender?.smtpForm ?? "MAILER-DAEMON@\(hostname)"
        guard let name = fullName?.trimmingWhitespace(), !name.isEmpty else { return address }
        return "\(Self.displayName(name)) <\(address)>"
    }

    /// A display name as an RFC 5322 phrase: bare when it is only atoms and
    /// spaces, a quoted string otherwise, and an RFC 2047 encoded word when it
    /// is not ASCII.
    static func displayName(_ name: String) -> String {
        // Control characters (CR and LF above all) would break the header line.
        var cleaned = name
        cleaned.unicodeScalars.removeAll { $0.value < 0x20 || $0.value == 0x7F }
        if !cleaned.unicodeScalars.allSatisfy(\.isASCII) {
            // RFC 2047 2: an encoded word is at most 75 characters, so a long
            // name is several, each of whole characters (45 octets, 60 in base64).
            var words: [String] = []
            var chunk: [UInt8] = []
            for character in cleaned {
                let bytes = Array(String(character).utf8)
                if chunk.count + bytes.count > 45, !chunk.isEmpty {
                    words.append("=?UTF-8?B?\(Base64.encode(chunk))?=")
                    chunk = []
                }
                chunk += bytes
            }
            words.append("=?UTF-8?B?\(Base64.encode(chunk))?=")
            return words.joined(separator: " ")
        }
        // RFC 5322 3.2.3 atext, and the spaces between words.
        let atext = Set("!#$%&'*+-/=?^_`{|}~ ".unicodeScalars)
        if cleaned.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0)
            || ("0"..."9").contains($0) || atext.contains($0) }) {
            return cleaned
        }
        var escaped = ""
        for character in cleaned {
            if character == "\\" || character == "\"" { escaped.append("\\") }
            escaped.append(character)
        }
        return "\"\(escaped)\""
    }
}
