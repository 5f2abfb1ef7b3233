import PosternCore

/// An MTA-STS policy (RFC 8461 3.2), as fetched from
/// `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`.
public struct MTASTSPolicy: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        /// MX hosts that match no pattern are not used; matching hosts need
        /// STARTTLS with a PKIX-valid certificate for their name (RFC 8461 5).
        case enforce
        /// Deliver as without a policy; failures are only reported (TLSRPT).
        case testing
        /// The domain withdrew its policy (RFC 8461 8.3).
        case none
    }

    public var mode: Mode
    /// Patterns of permitted MX hosts: a name, or `*.` and a name for any one
    /// label in front of it (RFC 8461 4.1).
    public var mx: [String]
    /// Seconds the policy may be cached (RFC 8461 3.2: at most 31557600).
    public var maxAge: Int

    public init(mode: Mode, mx: [String], maxAge: Int) {
        self.mode = mode
        self.mx = mx
        self.maxAge = maxAge
    }

    /// RFC 8461 3.3: a policy larger than 64 KiB is refused.
    public static let maxSize = 65_536
    /// RFC 8461 3.2: max_age is at most a year (31557600 seconds); larger is taken as that.
    public static let maxMaxAge = 31_557_600

    /// Whether an MX host may be used under this policy (RFC 8461 4.1): equal
    /// to a pattern, or one label followed by a `*.` pattern's suffix.
    /// Case-insensitive, a trailing dot ignored.
    public func permits(_ host: String) -> Bool {
        let name = Self.normalized(host)
        return mx.contains { pattern in
            let pattern = Self.normalized(pattern)
            if pattern.hasPrefix("*.") {
                let suffix = pattern.dropFirst(1)   // ".example.com"
                guard name.hasSuffix(suffix) else { return false }
                let label = name.dropLast(suffix.count)
                return !label.isEmpty && !label.contains(".")
            }
            return name == pattern
        }
    }

    static func normalized(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// Why a policy text was refused, naming the line.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Parses a policy strictly (RFC 8461 3.2): `key: value` lines ended by
    /// CRLF (a bare LF is accepted, as every deployed sender does); `version:
    /// STSv1`, `mode` and `max_age` exactly once; `mx` at least once unless the
    /// mode is `none`; unknown keys of the extension syntax ignored; anything
    /// else refused, so that a garbled policy is never half-applied.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> MTASTSPolicy {
        guard bytes.count <= maxSize else { throw ParseError("the policy is larger than \(maxSize) octets") }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw ParseError("the policy is not UTF-8") }
        var version: String?
        var mode: Mode?
        var maxAge: Int?
        var mx: [String] = []
        // Split on the octets: in a Swift String, CR LF is one Character.
        var lines = Self.lines(of: bytes)
        // The text ends with a line break, which leaves one empty "line".
        while lines.last?.isEmpty == true { lines.removeLast() }
        for (index, line) in lines.enumerated() {
            let number = index + 1
            guard let colon = line.firstIndex(of: ":") else { throw ParseError("line \(number): no \"key: value\"") }
            let key = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingWSP()
            guard isKey(key) else { throw ParseError("line \(number): \"\(TerminalText.safe(key))\" is not a key") }
            guard value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw ParseError("line \(number): a control character in the value")
            }
            switch key {
            case "version":
                guard version == nil else { throw ParseError("line \(number): version given twice") }
                guard value == "STSv1" else { throw ParseError("line \(number): version \"\(TerminalText.safe(value))\" is not STSv1") }
                version = value
            case "mode":
                guard mode == nil else { throw ParseError("line \(number): mode given twice") }
                guard let parsed = Mode(rawValue: value) else { throw ParseError("line \(number): mode \"\(TerminalText.safe(value))\" is not enforce, testing or none") }
                mode = parsed
            case "max_age":
                guard maxAge == nil else { throw ParseError("line \(number): max_age given twice") }
                // RFC 8461 3.2: 1*10DIGIT.
                guard (1...10).contains(value.count), value.allSatisfy(\.isASCIIDigit), let seconds = Int(value) else {
                    throw ParseError("line \(number): max_age \"\(TerminalText.safe(value))\" is not a number of seconds")
                }
                maxAge = min(seconds, maxMaxAge)
            case "mx":
                guard isPattern(value) else { throw ParseError("line \(number): mx \"\(TerminalText.safe(value))\" is not a host name pattern") }
                mx.append(normalized(value))
            default:
                break   // RFC 8461 3.2: extension fields are ignored.
            }
        }
        guard version != nil else { throw ParseError("no version field") }
        guard let mode else { throw ParseError("no mode field") }
        guard let maxAge else { throw ParseError("no max_age field") }
        guard mode == .none || !mx.isEmpty else { throw ParseError("no mx field") }
        return MTASTSPolicy(mode: mode, mx: mx, maxAge: maxAge)
    }

    /// The lines of a text, each without its LF or CR LF.
    static func lines(of bytes: some Collection<UInt8>) -> [String] {
        bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line[...], as: UTF8.self)
        }
    }

    /// RFC 8461 3.2 sts-policy-ext-name: 1*32 of ALPHA, DIGIT, "_", "-", ".".
    static func isKey(_ key: String) -> Bool {
        (1...32).contains(key.utf8.count) && key.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x5F || byte == 0x2D || byte == 0x2E
        }
    }

    /// A host name, optionally after `*.`: LDH labels of 1 to 63 octets, at least two.
    static func isPattern(_ value: String) -> Bool {
        var name = value.hasSuffix(".") ? String(value.dropLast()) : value
        if name.hasPrefix("*.") { name.removeFirst(2) }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.count >= 2 && name.utf8.count <= 253 && labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D }
        }
    }
}

private extension String {
    /// Without leading and trailing spaces and tabs (RFC 5234 WSP).
    func trimmingWSP() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

private extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
