/// An RFC 3463 enhanced status code: `class.subject.detail`, e.g. `5.1.1`.
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    public let codeClass: Int
    public let subject: Int
    public let detail: Int

    public init(codeClass: Int, subject: Int, detail: Int) {
        self.codeClass = codeClass
        self.subject = subject
        self.detail = detail
    }

    /// Parses `2.1.5`; RFC 3463 2: class 2, 4 or 5, subject and detail 0 to 999.
    public init?(_ text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let first = Int(parts[0]), [2, 4, 5].contains(first), parts[0].count == 1,
              let second = Int(parts[1]), let third = Int(parts[2]) else { return nil }
        self.init(codeClass: first, subject: second, detail: third)
    }

    public var description: String { "\(codeClass).\(subject).\(detail)" }
}

/// A complete SMTP reply (RFC 5321 4.2): a three-digit code and one or more lines.
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    /// The text of each line after the code and separator.
    public let lines: [String]
    /// The enhanced status code, when the server announced ENHANCEDSTATUSCODES
    /// and the first line carries one whose class agrees with the reply code.
    public let enhanced: EnhancedStatusCode?

    public init(code: Int, lines: [String], enhanced: EnhancedStatusCode? = nil) {
        self.code = code
        self.lines = lines
        self.enhanced = enhanced
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isTemporary: Bool { (400..<500).contains(code) }
    public var isPermanent: Bool { code >= 500 }

    /// The reply re-read for its enhanced code (RFC 2034 3), taken only when its
    /// class matches the reply code's first digit: a `250 5.0.0` is not believed.
    func withEnhancedCode() -> SMTPReply {
        guard let first = lines.first, let token = first.split(separator: " ", maxSplits: 1).first,
              let enhanced = EnhancedStatusCode(token), enhanced.codeClass == code / 100 else { return self }
        return SMTPReply(code: code, lines: lines, enhanced: enhanced)
    }

    /// The whole reply as it came, lines joined with newlines: `250-a\n250 b`.
    public var text: String {
        lines.enumerated().map { index, line in "\(code)\(index == lines.count - 1 ? " " : "-")\(line)" }
            .joined(separator: "\n")
    }

    public var description: String { text }
}
