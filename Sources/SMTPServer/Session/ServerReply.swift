/// One reply of the SMTP server (RFC 5321 4.2): a code, an enhanced status
/// code (RFC 3463, announced by ENHANCEDSTATUSCODES, RFC 2034) and text lines.
public struct ServerReply: Sendable, Equatable {
    public var code: Int
    public var enhanced: String?
    public var lines: [String]

    public init(_ code: Int, _ enhanced: String?, _ lines: String...) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    public init(_ code: Int, _ enhanced: String?, lines: [String]) {
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
    }

    /// A 4xx or 5xx reply: counted against `smtp.max_errors`.
    public var isError: Bool { code >= 400 }

    /// The reply on the wire: `250-first` continuation lines, `250 last`, CRLF each.
    public var wire: [UInt8] {
        var out: [UInt8] = []
        for (index, line) in lines.enumerated() {
            let separator = index == lines.count - 1 ? " " : "-"
            // The enhanced code leads each line of a reply (RFC 2034 4); EHLO's has none.
            let text = enhanced.map { $0 + " " + line } ?? line
            out += Array("\(code)\(separator)\(text)\r\n".utf8)
        }
        return out
    }
}
