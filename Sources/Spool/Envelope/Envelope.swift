import Foundation
import PosternCore

/// Everything about a queued message except its bytes: the file `envelope.json`
/// beside `message` in the message's directory. `spool-layout.md` documents each
/// field; this type is that documentation in code.
public struct Envelope: Sendable, Equatable {
    /// The layout version this program writes. A reader refuses an unknown major
    /// version (quarantine) and keeps the unknown fields of a newer minor version.
    public static let currentVersion = EnvelopeVersion(major: 1, minor: 0)

    public var version: EnvelopeVersion = Envelope.currentVersion
    public var id: QueueID
    /// The envelope sender (RFC 5321 reverse-path); `nil` is the null sender `<>`.
    public var sender: String?
    public var recipients: [Recipient]
    public var arrival: Date
    /// Octets in `message`, checked by the scanner against the file.
    public var size: Int
    /// The uid of the user who dropped the message.
    public var uid: Int
    public var messageID: String?
    /// The message has octets over 127 (BODY=8BITMIME, RFC 6152).
    public var eightBit = false
    /// An address needs RFC 6531 SMTPUTF8.
    public var smtputf8 = false
    /// RFC 8689 REQUIRETLS: `nil` unset (policy decides), true required, false
    /// explicitly waived (`TLS-Required: No`).
    public var requireTLS: Bool?
    /// A transport name overriding the routes; `nil` for the configured routing.
    public var transport: String?
    /// Overrides the configured maximum number of attempts.
    public var maxAttempts: Int?
    /// Delivery attempts made so far (registered before each attempt starts).
    public var attempts = 0
    /// When the next attempt is due; `nil` means now.
    public var nextAttempt: Date?
    public var lastResult: DeliveryResult?
    /// IP addresses dialed per host in earlier attempts, oldest first, at most
    /// `dialedLimit` per host (mox's DialedIPs).
    public var dialedIPs: [String: [String]] = [:]
    public static let dialedLimit = 8

    /// Adds an attempt's dialed addresses, keeping the latest few per host.
    public mutating func recordDialed(_ dialed: [String: [String]]) {
        for (host, ips) in dialed where !ips.isEmpty {
            dialedIPs[host, default: []].append(contentsOf: ips)
            dialedIPs[host] = Array(dialedIPs[host]!.suffix(Self.dialedLimit))
        }
        if dialedIPs.count > 16 {
            // Hosts of old attempts are the least useful; which ones go is of little consequence.
            for host in dialedIPs.keys.sorted().prefix(dialedIPs.count - 16) { dialedIPs[host] = nil }
        }
    }

    /// RFC 3461 NOTIFY=NEVER: no DSN of any kind for this message, not even to
    /// the postmaster. Set on notifications to the postmaster, so that a failing
    /// one ends the chain instead of starting a storm.
    public var notifyNever = false
    /// RFC 3461 4.3 RET: whether a failure DSN returns the whole message or
    /// its headers only; nil lets `dsn.return_full_up_to` decide.
    public var dsnReturn: DSNReturn?
    /// RFC 3461 4.4 ENVID as SMTP carries it (xtext): the sender's name for
    /// the transaction, passed to the next hop and returned in every DSN's
    /// `Original-Envelope-Id:` (RFC 3464 2.2.1).
    public var envelopeID: String?
    /// Why an operator held the message (`postern hold --reason`).
    public var holdReason: String?
    /// Failed recipients whose failure DSN has not been dropped yet. Written in
    /// the same update that marks them failed and cleared once the DSN's drop
    /// has committed: a full disk or a crash in between leaves the mark, and
    /// the message stays until the DSN is sent (spool-layout.md 6.5).
    public var dsnPending: [String] = []
    /// The latest attempts, oldest first, at most `historyLimit`.
    public var history: [AttemptRecord] = []
    /// Keys this version does not know, kept for the version that wrote them.
    public var extra: [String: JSONValue] = [:]

    public static let historyLimit = DropEnvelope.historyLimit

    public init(id: QueueID, sender: String?, recipients: [Recipient], arrival: Date, size: Int, uid: Int) {
        self.id = id
        self.sender = sender
        self.recipients = recipients
        self.arrival = arrival
        self.size = size
        self.uid = uid
    }

    /// Lower-case domains of the recipients still pending, each once, in order.
    public var pendingDomains: [String] {
        var seen = Set<String>()
        return recipients.filter { $0.state == .pending }.compactMap { recipient in
            let domain = recipient.domain
            return seen.insert(domain).inserted ? domain : nil
        }
    }

    /// Appends an attempt to the bounded history, dropping the oldest beyond the limit.
    public mutating func record(_ attempt: AttemptRecord) {
        history.append(attempt)
        if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
    }
}

/// `MAJOR.MINOR`, written as a string: `"1.0"`.
public struct EnvelopeVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public var description: String { "\(major).\(minor)" }

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]),
              major >= 0, minor >= 0 else { return nil }
        self.init(major: major, minor: minor)
    }
}

/// One recipient and where it stands.
public struct Recipient: Sendable, Equatable {
    public enum State: String, Sendable, CaseIterable {
        case pending, delivered, failed
    }

    /// The address in SMTP form (A-label domain, or U-label with SMTPUTF8).
    public var address: String
    /// RFC 3461 ORCPT: the address as the submitter wrote it, when that differs.
    public var original: String?
    public var state: State = .pending
    public var attempts = 0
    public var lastResult: DeliveryResult?
    public var extra: [String: JSONValue] = [:]

    public init(address: String, original: String? = nil) {
        self.address = address
        self.original = original
    }

    /// The part after the last `@`, lower-cased, brackets of an address literal kept.
    public var domain: String {
        guard let at = address.lastIndex(of: "@") else { return "" }
        return address[address.index(after: at)...].lowercased()
    }
}

/// The outcome of one attempt for a recipient or a message, as an operator
/// needs it to answer "why is this still here".
public struct DeliveryResult: Sendable, Equatable {
    public var time: Date
    /// The SMTP reply code, when a server answered.
    public var code: Int?
    /// The RFC 3463 enhanced status code, e.g. `4.2.0`.
    public var enhanced: String?
    /// The full reply (lines joined with newlines) or the local error.
    public var text: String
    public var host: String?
    public var permanent: Bool
    public var extra: [String: JSONValue] = [:]

    public init(time: Date, code: Int? = nil, enhanced: String? = nil, text: String,
                host: String? = nil, permanent: Bool) {
        self.time = time
        self.code = code
        self.enhanced = enhanced
        self.text = text
        self.host = host
        self.permanent = permanent
    }
}

extension Envelope {
    /// An upper bound of the encoded size this envelope can reach while it is
    /// delivered: a result of the longest text for each recipient and for the
    /// message, and a full history whose every attempt lists every recipient.
    /// A drop whose bound exceeds `maxEncodedSize` is refused, so that no
    /// envelope outgrows what a reader accepts (pretty-printing included).
    public var largestSize: Int {
        DropEnvelope.largestSize(encodedSize: encoded().count, recipients: recipients.map(\.address))
    }
}

extension DeliveryResult {
    /// The longest result text kept, in octets: a reply is the remote server's
    /// to make as long as it likes, and each one lands in the envelope.
    public static let maxText = DropEnvelope.maxResultText

    /// `text` cut to at most `maxText` octets (at a character boundary), marked when cut.
    public static func bounded(_ text: String) -> String {
        guard text.utf8.count > maxText else { return text }
        var cut = ""
        for character in text {
            guard cut.utf8.count + character.utf8.count <= maxText - 4 else { break }
            cut.append(character)
        }
        return cut + " ..."
    }
}

/// One delivery attempt to one host, for the envelope's history.
public struct AttemptRecord: Sendable, Equatable {
    public var time: Date
    public var recipients: [String]
    public var host: String?
    public var ip: String?
    /// The TLS outcome in words, e.g. `TLSv1.3 verified` or `none`.
    public var tls: String?
    /// Which message this was on its SMTP connection (1: a new connection;
    /// more: a reused one), as Postfix logs `conn_use`.
    public var connectionUse: Int?
    /// The TLS policy the host was tried under (DANE, MTA-STS, none); nil
    /// when no host was (or for attempts recorded before policies existed).
    public var policy: TLSPolicy?
    public var result: DeliveryResult
    public var extra: [String: JSONValue] = [:]

    public init(time: Date, recipients: [String], host: String? = nil, ip: String? = nil,
                tls: String? = nil, result: DeliveryResult) {
        self.time = time
        self.recipients = recipients
        self.host = host
        self.ip = ip
        self.tls = tls
        self.result = result
    }
}
