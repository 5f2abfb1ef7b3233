/// One header field as it was written: its name and its raw lines (the first
/// line and any folded continuation lines), without line terminators.
public struct HeaderField: Sendable, Equatable {
    public let name: String
    public var lines: [[UInt8]]

    public init(name: String, lines: [[UInt8]]) {
        self.name = name
        self.lines = lines
    }

    /// Builds a field from a name and an unfolded value: `Name: value`.
    public init(name: String, value: String) {
        self.init(name: name, lines: [Array("\(name): \(value)".utf8)])
    }

    /// The unfolded value (RFC 5322 2.2.3): continuation lines joined, the
    /// leading white space after the colon removed. Non-UTF-8 bytes are replaced.
    public var value: String {
        var bytes = lines[0]
        bytes.removeFirst(min(bytes.count, Array(name.utf8).count + 1))
        for line in lines.dropFirst() { bytes.append(contentsOf: line) }
        let text = String(decoding: bytes, as: UTF8.self)
        return String(text.drop(while: { $0 == " " || $0 == "\t" }))
    }
}

/// The header section of a message (RFC 5322 2.2), read line by line.
///
/// It is bounded (`maxSize` octets, `maxFields` fields) because it is the one part
/// of a message held in memory: the body is streamed. Lines arrive from
/// `LineSplitter`, already split and free of terminators.
public struct HeaderSection: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        case tooLarge(limit: Int)
    }

    public static let maxSize = 1 << 20
    public static let maxFields = 10_000

    public private(set) var fields: [HeaderField] = []
    private var size = 0
    private var sawFirstLine = false

    public init() {}

    /// What a line turned out to be.
    public enum LineKind: Equatable, Sendable {
        /// Part of the header section.
        case header
        /// The empty line that ends the header section.
        case separator
        /// Not a header line: the header section ended without an empty line,
        /// and this line is the first line of the body.
        case body
    }

    /// Takes the next line of the message while the header section lasts.
    public mutating func add(line: ArraySlice<UInt8>) throws -> LineKind {
        defer { sawFirstLine = true }
        if line.isEmpty { return .separator }
        // An mbox "From " envelope line before the first header is not part of
        // the message (sendmail and Postfix drop it too).
        if !sawFirstLine, line.starts(with: Array("From ".utf8)) { return .header }
        size += line.count + 2
        guard size <= Self.maxSize, fields.count < Self.maxFields else {
            throw Failure.tooLarge(limit: Self.maxSize)
        }
        if line.first == 0x20 || line.first == 0x09 {
            guard !fields.isEmpty else { return .body }
            fields[fields.count - 1].lines.append(Array(line))
            return .header
        }
        guard let name = Self.fieldName(of: line) else { return .body }
        fields.append(HeaderField(name: name, lines: [Array(line)]))
        return .header
    }

    /// RFC 5322 2.2: a field name is one or more printable ASCII characters other
    /// than the colon, followed by a colon.
    static func fieldName(of line: ArraySlice<UInt8>) -> String? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return nil }
        let name = line[line.startIndex..<colon]
        guard name.allSatisfy({ $0 >= 33 && $0 <= 126 }) else { return nil }
        return String(decoding: name, as: UTF8.self)
    }

    public func contains(_ name: String) -> Bool {
        fields.contains { $0.name.lowercased() == name.lowercased() }
    }

    public func values(of name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    public mutating func removeAll(named name: String) {
        fields.removeAll { $0.name.lowercased() == name.lowercased() }
    }

    public mutating func append(_ field: HeaderField) {
        fields.append(field)
    }

    /// The header section as stored: every line ending in CRLF, then the empty line.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(size + 64)
        for field in fields {
            for line in field.lines {
                out.append(contentsOf: line)
                out.append(contentsOf: [0x0D, 0x0A])
            }
        }
        out.append(contentsOf: [0x0D, 0x0A])
        return out
    }
}
