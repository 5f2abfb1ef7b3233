@_exported import PosternBase
import Foundation

// PosternBase keeps time as seconds since the Unix epoch so that the drop
// program links no Foundation; everything above it speaks `Date`. These are
// the `Date` forms, one line each.

extension Timestamp {
    public static func format(_ date: Date) -> String {
        format(epochSeconds: date.timeIntervalSince1970)
    }

    /// `milliseconds` adds a fraction (`…:34.250Z`), for log lines.
    public static func format(_ date: Date, milliseconds: Bool) -> String {
        format(epochSeconds: date.timeIntervalSince1970, milliseconds: milliseconds)
    }

    /// Parses an RFC 3339 date-time (section 5.6) with any offset; `nil` if malformed.
    public static func parse(_ text: String) -> Date? {
        parseEpochSeconds(text).map(Date.init(timeIntervalSince1970:))
    }

    /// The RFC 5322 section 3.3 form for a `Date:` header, in UTC.
    public static func rfc5322(_ date: Date) -> String {
        rfc5322(epochSeconds: date.timeIntervalSince1970)
    }
}

extension QueueID {
    /// The creation time encoded in the ID.
    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

extension QueueIDGenerator {
    /// A generator reading `now` (tests: a fixed clock).
    public convenience init(now: @escaping @Sendable () -> Date) {
        self.init(clock: { now().timeIntervalSince1970 })
    }
}

extension HeaderCompletion {
    public init(sender: MailboxAddress?, fullName: String?, hostname: String, date: Date, queueID: QueueID) {
        self.init(sender: sender, fullName: fullName, hostname: hostname, time: date.timeIntervalSince1970, queueID: queueID)
    }
}
