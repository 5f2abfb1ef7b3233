/// What a server announced in its EHLO reply (RFC 5321 4.1.1.1), parsed.
public struct Extensions: Sendable, Equatable {
    /// Every keyword, upper-cased, with its parameters as sent.
    public private(set) var keywords: [String: [String]] = [:]

    public init() {}

    /// Parses the lines of a 250 EHLO reply; the first line is the greeting.
    public init(ehloReply: SMTPReply) {
        for line in ehloReply.lines.dropFirst() {
            let words = line.split(separator: " ").map(String.init)
            guard let keyword = words.first?.uppercased(), !keyword.isEmpty else { continue }
            keywords[keyword] = Array(words.dropFirst())
        }
    }

    public func has(_ keyword: String) -> Bool { keywords[keyword] != nil }

    public var pipelining: Bool { has("PIPELINING") }
    public var startTLS: Bool { has("STARTTLS") }
    public var eightBitMIME: Bool { has("8BITMIME") }
    public var smtputf8: Bool { has("SMTPUTF8") }
    public var enhancedStatusCodes: Bool { has("ENHANCEDSTATUSCODES") }
    public var requireTLS: Bool { has("REQUIRETLS") }
    /// RFC 3461: the server takes NOTIFY, RET, ENVID and ORCPT.
    public var dsn: Bool { has("DSN") }

    /// RFC 1870: `SIZE n`; nil when absent, nil also for `SIZE` or `SIZE 0` (no fixed limit).
    public var sizeLimit: Int? {
        guard let value = keywords["SIZE"]?.first.flatMap({ Int($0) }), value > 0 else { return nil }
        return value
    }

    /// The SASL mechanisms of `AUTH`, upper-cased (RFC 4954 3).
    public var authMechanisms: [String] { (keywords["AUTH"] ?? []).map { $0.uppercased() } }

    /// RFC 9422 LIMITS `RCPTMAX=n`: recipients per transaction.
    public var recipientLimit: Int? { limit("RCPTMAX") }

    private func limit(_ name: String) -> Int? {
        for parameter in keywords["LIMITS"] ?? [] {
            let pair = parameter.split(separator: "=", maxSplits: 1)
            if pair.count == 2, pair[0].uppercased() == name, let value = Int(pair[1]), value > 0 { return value }
        }
        return nil
    }
}
