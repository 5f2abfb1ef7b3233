import Foundation
import PosternCore
import SpoolDrop

/// What a listing shows of an envelope (`postern list`, `mailq`), read from
/// its JSON text with the parser's cursor: the members a listing shows are
/// taken, the others (the history, above all) passed over without being built.
///
/// A listing is a display, not a decision: addresses are shown as the
/// envelope has them, without the full validation `Envelope.decode` makes
/// before the daemon acts on a message (listing 20,000 envelopes that way
/// cost five times Postfix's `postqueue -j`, issue #15). The values are still
/// typed and bounded (the file is at most `Envelope.maxEncodedSize`), and
/// every output quotes or makes safe what it prints.
public struct EnvelopeSummary: Sendable {
    public var id: QueueID
    /// `nil` for the null sender.
    public var sender: String?
    public var recipients: [Recipient]
    public var arrival: Date
    public var size: Int
    public var attempts: Int
    public var nextAttempt: Date?
    public var messageID: String?
    public var lastResult: DeliveryResult?

    /// The summary of an envelope already decoded (`retired/`, `show`).
    public init(_ envelope: Envelope) {
        self.init(id: envelope.id, sender: envelope.sender, recipients: envelope.recipients, arrival: envelope.arrival,
                  size: envelope.size, attempts: envelope.attempts, nextAttempt: envelope.nextAttempt,
                  messageID: envelope.messageID, lastResult: envelope.lastResult)
    }

    public init(id: QueueID, sender: String?, recipients: [Recipient], arrival: Date, size: Int, attempts: Int,
                nextAttempt: Date?, messageID: String?, lastResult: DeliveryResult?) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.arrival = arrival
        self.size = size
        self.attempts = attempts
        self.nextAttempt = nextAttempt
        self.messageID = messageID
        self.lastResult = lastResult
    }

    /// Reads the members a listing shows; a missing required member, a
    /// value of the wrong type or malformed JSON is an error, as for `Envelope.decode`.
    public static func decode(_ bytes: [UInt8]) throws(EnvelopeError) -> EnvelopeSummary {
        var parser = JSONText.Parser(bytes: bytes)
        var id: QueueID?
        var sender: String??
        var recipients: [Recipient]?
        var arrival: Date?
        var size: Int?
        var attempts = 0
        var nextAttempt: Date?
        var messageID: String?
        var lastResult: DeliveryResult?
        var version: String?
        var field = ""
        do throws(JSONText.Malformed) {
            try parser.members { parser, key throws(JSONText.Malformed) in
                field = key
                switch key {
                case "version": version = try parser.optionalString()
                case "id": id = try parser.withOptionalString { QueueID(utf8: $0) } ?? nil
                case "sender": sender = .some(try parser.optionalString().flatMap { $0.isEmpty ? nil : $0 })
                case "recipients": recipients = try Self.recipients(&parser)
                case "arrival": arrival = try Self.time(&parser)
                case "size": size = try parser.optionalInteger().map { Int($0) }
                case "attempts": attempts = Int(try parser.optionalInteger() ?? 0)
                case "next_attempt": nextAttempt = try Self.time(&parser)
                case "message_id": messageID = try parser.optionalString()
                case "last_result": lastResult = try Self.result(&parser)
                default: try parser.skip()
                }
            }
            try parser.end()
        } catch {
            throw EnvelopeError(kind: .notJSON, field: field, detail: error.description)
        }
        func missing(_ name: String) -> EnvelopeError {
            EnvelopeError(kind: .missingField, field: name, detail: "missing or of the wrong type")
        }
        // The members' meaning is that of one major version.
        guard let version else { throw missing("version") }
        guard let parsed = EnvelopeVersion(version) else {
            throw EnvelopeError(kind: .badValue, field: "version", detail: "\(QuotedString.quoted(version)) is not MAJOR.MINOR")
        }
        guard parsed.major == Envelope.currentVersion.major else {
            throw EnvelopeError(kind: .unsupportedVersion, field: "version",
                                detail: "major version \(parsed.major) is not supported (this program reads \(Envelope.currentVersion.major).x)")
        }
        guard let id else { throw missing("id") }
        guard let sender else { throw missing("sender") }
        guard let recipients, !recipients.isEmpty else { throw missing("recipients") }
        guard let arrival else { throw missing("arrival") }
        guard let size, size >= 0 else { throw missing("size") }
        return EnvelopeSummary(id: id, sender: sender, recipients: recipients, arrival: arrival, size: size,
                               attempts: attempts, nextAttempt: nextAttempt, messageID: messageID, lastResult: lastResult)
    }

    private static func time(_ parser: inout JSONText.Parser) throws(JSONText.Malformed) -> Date? {
        guard let seconds = try parser.withOptionalString({ Timestamp.parseEpochSeconds(utf8: $0) ?? .nan }) else { return nil }
        guard !seconds.isNaN else { throw parser.fail("not an RFC 3339 time") }
        return Date(timeIntervalSince1970: seconds)
    }

    private static func recipients(_ parser: inout JSONText.Parser) throws(JSONText.Malformed) -> [Recipient] {
        var recipients: [Recipient] = []
        try parser.elements(depth: 1) { parser throws(JSONText.Malformed) in
            var recipient = Recipient(address: "")
            var address: String?
            try parser.members(depth: 2) { parser, key throws(JSONText.Malformed) in
                switch key {
                case "address": address = try parser.optionalString()
                case "state":
                    let text = try parser.optionalString() ?? "pending"
                    guard let state = Recipient.State(rawValue: text) else { throw parser.fail("unknown recipient state") }
                    recipient.state = state
                case "attempts": recipient.attempts = Int(try parser.optionalInteger() ?? 0)
                case "last_result": recipient.lastResult = try Self.result(&parser)
                default: try parser.skip()
                }
            }
            guard let address else { throw parser.fail("a recipient without an address") }
            recipient.address = address
            recipients.append(recipient)
        }
        return recipients
    }

    private static func result(_ parser: inout JSONText.Parser) throws(JSONText.Malformed) -> DeliveryResult? {
        guard !parser.nextIsNull() else {
            try parser.skip()
            return nil
        }
        var time: Date?
        var result = DeliveryResult(time: .distantPast, text: "", permanent: false)
        try parser.members(depth: 2) { parser, key throws(JSONText.Malformed) in
            switch key {
            case "time": time = try Self.time(&parser)
            case "code": result.code = try parser.optionalInteger().map { Int($0) }
            case "enhanced": result.enhanced = try parser.optionalString()
            case "text": result.text = try parser.optionalString() ?? ""
            case "host": result.host = try parser.optionalString()
            case "permanent": result.permanent = try parser.bool()
            default: try parser.skip()
            }
        }
        guard let time else { throw parser.fail("a result without a time") }
        result.time = time
        return result
    }
}
