/// libFuzzer's input as a source of plain values, for targets that need more
/// than one (a DSN report's fields, chunk sizes for a stream).
///
/// Like LLVM's `FuzzedDataProvider`, it never fails: past the end every value is
/// zero or empty, so that every input is a valid run. Strings are taken up to a
/// NUL byte or a length, so that seeds stay readable text.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var index = 0

    public init(_ data: UnsafePointer<UInt8>?, _ count: Int) {
        bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    }

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isAtEnd: Bool { index >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A value in `range`, from one or two bytes.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = range.upperBound - range.lowerBound
        let raw = span < 256 ? Int(byte()) : Int(byte()) << 8 | Int(byte())
        return range.lowerBound + raw % (span + 1)
    }

    /// The bytes up to the next NUL (not included) or the end.
    public mutating func field() -> [UInt8] {
        let start = index
        while index < bytes.count, bytes[index] != 0 { index += 1 }
        defer { if index < bytes.count { index += 1 } }
        return Array(bytes[start..<index])
    }

    /// `field()` as text; bytes that are not UTF-8 become U+FFFD.
    public mutating func string() -> String {
        String(decoding: field(), as: UTF8.self)
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] {
        defer { index = bytes.count }
        return Array(bytes[min(index, bytes.count)...])
    }
}
