import Foundation
import PosternCore

extension Envelope {
    /// The largest `envelope.json` read; more is not an envelope this program wrote.
    public static let maxEncodedSize = DropEnvelope.maxEncodedSize

    /// Decodes and validates an envelope.
    ///
    /// Validation is strict where a wrong value could reach an SMTP command or
    /// mislead the scheduler: every address must parse as an RFC 5321 mailbox
    /// (which rejects CR, LF and control characters), counts must not be negative,
    /// and the ID must be a queue ID. The message ID, each recipient's
    /// `original` and the `envid` reach the header and the delivery-status
    /// fields of a DSN, and operators' terminals, so they are checked as strictly
    /// (`validate(messageID:)`, `validate(original:)`, `EnvelopeIDParameter`):
    /// an envelope is another user's file, and CR or LF in any of them would let
    /// it inject header fields into a DSN.
    public static func decode(_ data: Data) throws(EnvelopeError) -> Envelope {
        let root: JSONValue
        do {
            root = try JSONValue.decode(data)
        } catch {
            throw EnvelopeError(kind: .notJSON, field: "", detail: "not valid JSON")
        }
        var reader = try JSONObjectReader(root, path: "")
        let versionText = try reader.requiredString("version")
        guard let version = EnvelopeVersion(versionText) else {
            throw reader.bad("version", "\(QuotedString.quoted(versionText)) is not MAJOR.MINOR")
        }
        guard version.major == currentVersion.major else {
            throw EnvelopeError(kind: .unsupportedVersion, field: "version",
                                detail: "major version \(version.major) is not supported (this program reads \(currentVersion.major).x)")
        }
        let idText = try reader.requiredString("id")
        guard let id = QueueID(idText) else { throw reader.bad("id", "\(QuotedString.quoted(idText)) is not a queue ID") }
        let senderText = try reader.requiredString("sender")
        if !senderText.isEmpty { try validate(address: senderText, field: "sender") }
        let recipients = try reader.array("recipients", Recipient.decode)
        guard !recipients.isEmpty else {
            throw EnvelopeError(kind: .missingField, field: "recipients", detail: "no recipients")
        }
        let arrival = try reader.requiredDate("arrival")
        let size = try reader.requiredInteger("size")
        guard size >= 0 else { throw reader.bad("size", "negative") }
        let uid = try reader.requiredInteger("uid")
        guard uid >= 0 else { throw reader.bad("uid", "negative") }

        var envelope = Envelope(id: id, sender: senderText.isEmpty ? nil : senderText,
                                recipients: recipients, arrival: arrival, size: size, uid: uid)
        envelope.version = version.minor > currentVersion.minor ? version : currentVersion
        envelope.messageID = try reader.string("message_id")
        if let messageID = envelope.messageID { try validate(messageID: messageID, field: "message_id") }
        envelope.eightBit = try reader.bool("eight_bit") ?? false
        envelope.smtputf8 = try reader.bool("smtputf8") ?? false
        envelope.requireTLS = try reader.bool("require_tls")
        envelope.transport = try reader.string("transport")
        envelope.maxAttempts = try reader.integer("max_attempts")
        if let max = envelope.maxAttempts, max < 1 { throw reader.bad("max_attempts", "must be at least 1") }
        envelope.attempts = try reader.integer("attempts") ?? 0
        guard envelope.attempts >= 0 else { throw reader.bad("attempts", "negative") }
        envelope.nextAttempt = try reader.date("next_attempt")
        envelope.lastResult = try reader.optional("last_result").map { value throws(EnvelopeError) in
            try DeliveryResult.decode(value, path: "last_result")
        }
        if let dialed = reader.optional("dialed_ips") {
            var table = try JSONObjectReader(dialed, path: "dialed_ips")
            for host in table.keys {
                envelope.dialedIPs[host] = try table.array(host) { value, path throws(EnvelopeError) in
                    guard case .string(let ip) = value else {
                        throw EnvelopeError(kind: .wrongType, field: path, detail: "expected a string, found \(value.typeName)")
                    }
                    return ip
                }
            }
        }
        envelope.holdReason = try reader.string("hold_reason")
        if let notify = try reader.string("notify") {
            guard notify == "never" else { throw reader.bad("notify", "\(QuotedString.quoted(notify)) is not \"never\"") }
            envelope.notifyNever = true
        }
        if let ret = try reader.string("ret") {
            guard let parsed = DSNReturn(rawValue: ret) else { throw reader.bad("ret", "\(QuotedString.quoted(ret)) is not \"full\" or \"hdrs\"") }
            envelope.dsnReturn = parsed
        }
        envelope.envelopeID = try reader.string("envid")
        if let envid = envelope.envelopeID, let problem = EnvelopeIDParameter.problem(inXText: envid) {
            // It reaches MAIL FROM and a DSN's Original-Envelope-Id: field.
            throw reader.bad("envid", "the envelope ID \(problem)")
        }
        envelope.dsnPending = try reader.array("dsn_pending") { value, path throws(EnvelopeError) in
            guard case .string(let address) = value else {
                throw EnvelopeError(kind: .wrongType, field: path, detail: "expected a string, found \(value.typeName)")
            }
            try validate(address: address, field: path)
            return address
        }
        envelope.history = try reader.array("history", AttemptRecord.decode)
        envelope.extra = reader.leftovers
        return envelope
    }

    /// The envelope as `envelope.json` holds it: pretty-printed, keys sorted.
    public func encoded() -> Data {
        var writer = JSONObjectWriter(preserving: extra)
        writer.set("version", version.description)
        writer.set("id", id.rawValue)
        writer.set("sender", sender ?? "")
        writer.set("recipients", recipients.map(\.json))
        writer.set("arrival", arrival)
        writer.set("size", size)
        writer.set("uid", uid)
        writer.set("message_id", messageID)
        writer.set("eight_bit", eightBit)
        writer.set("smtputf8", smtputf8)
        // The tri-state is always written, null for "unset", so `jq` shows all three.
        writer.set("require_tls", requireTLS.map(JSONValue.bool) ?? .null)
        writer.set("transport", transport)
        writer.set("max_attempts", maxAttempts)
        writer.set("attempts", attempts)
        writer.set("next_attempt", nextAttempt)
        writer.set("last_result", lastResult?.json)
        writer.set("hold_reason", holdReason)
        writer.set("dialed_ips", dialedIPs.isEmpty ? nil : JSONValue.object(dialedIPs.mapValues { .array($0.map(JSONValue.string)) }))
        writer.set("notify", notifyNever ? "never" : nil)
        writer.set("ret", dsnReturn?.rawValue)
        writer.set("envid", envelopeID)
        writer.set("dsn_pending", dsnPending.isEmpty ? nil : JSONValue.array(dsnPending.map(JSONValue.string)))
        writer.set("history", history.map(\.json))
        return writer.value.encoded()
    }

    static func validate(address: String, field: String) throws(EnvelopeError) {
        do {
            _ = try MailboxAddress(parsing: address)
        } catch {
            throw EnvelopeError(kind: .badValue, field: field, detail: error.description)
        }
    }

    /// A msg-id's content without its angle brackets (RFC 5322 3.6.4; `MessageID`).
    static func validate(messageID: String, field: String) throws(EnvelopeError) {
        if let problem = MessageID.problem(in: messageID) {
            throw EnvelopeError(kind: .badValue, field: field, detail: "the message ID \(problem)")
        }
    }

    /// RFC 3461 4.2: an ORCPT address is printable text ("graphic and white
    /// space"); RFC 6533 lets it be UTF-8, but no control character (C0, DEL or
    /// C1) belongs in it, and none may reach the `Original-Recipient:` field of a
    /// DSN, where a CR would start a field of its own. The same section allows the
    /// whole ORCPT parameter 500 characters; 1000 octets leaves room for UTF-8
    /// and keeps the field well within a 998-octet line once folded.
    static let maxOriginalLength = 1000

    static func validate(original: String, field: String) throws(EnvelopeError) {
        guard original.utf8.count <= maxOriginalLength else {
            throw EnvelopeError(kind: .badValue, field: field, detail: "longer than \(maxOriginalLength) octets")
        }
        // General category Cc is exactly C0, DEL and C1.
        if let bad = original.unicodeScalars.first(where: { $0.properties.generalCategory == .control }) {
            let hex = String(bad.value, radix: 16, uppercase: true)
            throw EnvelopeError(kind: .badValue, field: field,
                                detail: "contains the control character U+\(String(repeating: "0", count: 4 - hex.count))\(hex)")
        }
    }
}

extension Recipient {
    static func decode(_ value: JSONValue, path: String) throws(EnvelopeError) -> Recipient {
        var reader = try JSONObjectReader(value, path: path)
        let address = try reader.requiredString("address")
        try Envelope.validate(address: address, field: "\(path).address")
        let original = try reader.string("original")
        if let original { try Envelope.validate(original: original, field: "\(path).original") }
        var recipient = Recipient(address: address, original: original)
        if let state = try reader.string("state") {
            guard let parsed = State(rawValue: state) else {
                throw reader.bad("state", "\(QuotedString.quoted(state)) is not one of pending, delivered, failed")
            }
            recipient.state = parsed
        }
        recipient.attempts = try reader.integer("attempts") ?? 0
        recipient.lastResult = try reader.optional("last_result").map { value throws(EnvelopeError) in
            try DeliveryResult.decode(value, path: "\(path).last_result")
        }
        recipient.extra = reader.leftovers
        return recipient
    }

    var json: JSONValue {
        var writer = JSONObjectWriter(preserving: extra)
        writer.set("address", address)
        writer.set("original", original)
        writer.set("state", state.rawValue)
        writer.set("attempts", attempts)
        writer.set("last_result", lastResult?.json)
        return writer.value
    }
}

extension DeliveryResult {
    static func decode(_ value: JSONValue, path: String) throws(EnvelopeError) -> DeliveryResult {
        var reader = try JSONObjectReader(value, path: path)
        var result = DeliveryResult(time: try reader.requiredDate("time"), code: try reader.integer("code"),
                                    enhanced: try reader.string("enhanced"), text: try reader.string("text") ?? "",
                                    host: try reader.string("host"), permanent: try reader.bool("permanent") ?? false)
        result.extra = reader.leftovers
        return result
    }

    var json: JSONValue {
        var writer = JSONObjectWriter(preserving: extra)
        writer.set("time", time)
        writer.set("code", code)
        writer.set("enhanced", enhanced)
        writer.set("text", text)
        writer.set("host", host)
        writer.set("permanent", permanent)
        return writer.value
    }
}

extension AttemptRecord {
    static func decode(_ value: JSONValue, path: String) throws(EnvelopeError) -> AttemptRecord {
        var reader = try JSONObjectReader(value, path: path)
        let time = try reader.requiredDate("time")
        let recipients = try reader.array("recipients") { value, itemPath throws(EnvelopeError) in
            guard case .string(let text) = value else {
                throw EnvelopeError(kind: .wrongType, field: itemPath, detail: "expected a string, found \(value.typeName)")
            }
            return text
        }
        var record = AttemptRecord(time: time, recipients: recipients, host: try reader.string("host"),
                                   ip: try reader.string("ip"), tls: try reader.string("tls"),
                                   result: try DeliveryResult.decode(try reader.required("result"), path: "\(path).result"))
        record.connectionUse = try reader.integer("conn_use")
        if let text = try reader.string("tls_policy") {
            guard let policy = TLSPolicy(rawValue: text) else {
                throw EnvelopeError(kind: .badValue, field: "\(path).tls_policy", detail: "not a TLS policy name")
            }
            record.policy = policy
        }
        record.extra = reader.leftovers
        return record
    }

    var json: JSONValue {
        var writer = JSONObjectWriter(preserving: extra)
        writer.set("time", time)
        writer.set("recipients", recipients.map(JSONValue.string))
        writer.set("host", host)
        writer.set("ip", ip)
        writer.set("tls", tls)
        writer.set("conn_use", connectionUse)
        writer.set("tls_policy", policy?.rawValue)
        writer.set("result", result.json)
        return writer.value
    }
}
