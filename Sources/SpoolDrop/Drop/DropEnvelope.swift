import PosternBase

/// The envelope a new drop writes (spool-layout.md section 5): the submission
/// fields only, in the same JSON form as the full envelope codec writes, made
/// here without it so that the drop program links no Foundation. The scanner
/// and the daemon read it with that codec; a test holds the two together.
public struct DropEnvelope: Sendable, Equatable {
    /// The largest `envelope.json` a reader accepts.
    public static let maxEncodedSize = 4 << 20
    /// The attempts an envelope's history keeps.
    public static let historyLimit = 32
    /// The longest result text kept, in octets: a reply is the remote server's
    /// to make as long as it likes, and each one lands in the envelope.
    public static let maxResultText = 1000

    public var id: QueueID
    /// The envelope sender in SMTP form; `nil` is the null sender.
    public var sender: String?
    public var recipients: [String]
    /// Seconds since the Unix epoch.
    public var arrival: Double
    public var size: Int
    public var uid: Int
    public var messageID: String?
    public var eightBit = false
    public var smtputf8 = false
    public var requireTLS: Bool?
    /// RFC 3461 ORCPT by recipient address: each recipient's `original`.
    public var originals: [String: String] = [:]
    /// RFC 3461 NOTIFY=NEVER: the envelope's `notify`.
    public var notifyNever = false
    /// RFC 3461 RET: the envelope's `ret`.
    public var dsnReturn: DSNReturn?
    /// RFC 3461 ENVID (xtext): the envelope's `envid`.
    public var envelopeID: String?

    public init(id: QueueID, sender: String?, recipients: [String], arrival: Double, size: Int, uid: Int) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.arrival = arrival
        self.size = size
        self.uid = uid
    }

    /// `envelope.json`'s bytes: pretty-printed, keys sorted, a final newline.
    public func encoded() -> [UInt8] {
        var object: [String: JSONValue] = [
            "version": .string("1.0"), "id": .string(id.rawValue), "sender": .string(sender ?? ""),
            "recipients": .array(recipients.map { address in
                var recipient: [String: JSONValue] = ["address": .string(address)]
                if let original = originals[address], original != address { recipient["original"] = .string(original) }
                return .object(recipient)
            }),
            "arrival": .string(Timestamp.format(epochSeconds: arrival)), "size": .integer(Int64(size)),
            "uid": .integer(Int64(uid)), "eight_bit": .bool(eightBit), "smtputf8": .bool(smtputf8),
            "require_tls": requireTLS.map(JSONValue.bool) ?? .null,
        ]
        if let messageID { object["message_id"] = .string(messageID) }
        if notifyNever { object["notify"] = .string("never") }
        if let dsnReturn { object["ret"] = .string(dsnReturn.rawValue) }
        if let envelopeID { object["envid"] = .string(envelopeID) }
        return JSONValue.object(object).encodedBytes()
    }

    /// An upper bound of the encoded size an envelope of `encodedSize` octets
    /// with these recipients can reach while it is delivered: a result of the
    /// longest text for each recipient and for the message, and a full history
    /// whose every attempt lists every recipient (pretty-printing included). A
    /// drop whose bound exceeds `maxEncodedSize` is refused, so that no envelope
    /// outgrows what a reader accepts.
    public static func largestSize(encodedSize: Int, recipients: [String]) -> Int {
        let result = maxResultText + 400
        let addresses = recipients.reduce(0) { $0 + $1.utf8.count + 16 }
        return encodedSize + recipients.count * (result + 100) + historyLimit * (result + 200 + addresses)
    }
}
