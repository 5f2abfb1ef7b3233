import PosternBase

/// JSON text to `JSONValue` and back (RFC 8259), by hand.
///
/// Foundation's `JSONDecoder` reaches an untyped value only through a chain of
/// failing `try?` decodes per node, which made reading an envelope cost half a
/// millisecond; the start-up scan reads every envelope in the spool. This
/// parser reads bytes once, and is strict where an envelope comes from another
/// user: nesting is bounded, control characters in strings, duplicate keys,
/// lone surrogates and trailing bytes are refused.
package enum JSONText {
    package struct Malformed: Error, CustomStringConvertible {
        package let offset: Int
        package let reason: String
        package var description: String { "\(reason) at byte \(offset)" }
    }

    /// Far deeper than any envelope; bounds the recursion.
    static let maxDepth = 64

    package static func parse(_ bytes: some Collection<UInt8>) throws(Malformed) -> JSONValue {
        var parser = Parser(bytes: Array(bytes))
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == parser.bytes.count else { throw parser.fail("trailing bytes after the JSON value") }
        return value
    }

    /// The parser; also a cursor over an object's members (JSONText+Cursor).
    package struct Parser {
        let bytes: [UInt8]
        var index = 0

        package init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        package func fail(_ reason: String) -> Malformed { Malformed(offset: index, reason: reason) }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func literal(_ word: StaticString, _ value: JSONValue) throws(Malformed) -> JSONValue {
            let count = word.utf8CodeUnitCount
            guard bytes.count - index >= count else { throw fail("unexpected byte") }
            for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { throw fail("unexpected byte") }
            index += count
            return value
        }

        mutating func value(depth: Int) throws(Malformed) -> JSONValue {
            guard depth < JSONText.maxDepth else { throw fail("nested deeper than \(JSONText.maxDepth)") }
            guard index < bytes.count else { throw fail("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default: return try number()
            }
        }

        mutating func object(depth: Int) throws(Malformed) -> JSONValue {
            var object: [String: JSONValue] = [:]
            try members(depth: depth) { parser, key throws(Malformed) in
                guard object.updateValue(try parser.value(depth: depth + 1), forKey: key) == nil else {
                    throw parser.fail("duplicate member \"\(key)\"")
                }
            }
            return .object(object)
        }

        mutating func array(depth: Int) throws(Malformed) -> JSONValue {
            var array: [JSONValue] = []
            try elements(depth: depth) { parser throws(Malformed) in array.append(try parser.value(depth: depth + 1)) }
            return .array(array)
        }

        /// A string (RFC 8259 7): escapes decoded, raw control characters and
        /// invalid UTF-8 refused.
        package mutating func string() throws(Malformed) -> String {
            index += 1
            // Most strings have no escape: one pass to the closing quote, one copy.
            var end = index
            while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 {
                end += 1
            }
            if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
                let text = bytes.withUnsafeBufferPointer { buffer -> String? in
                    let slice = UnsafeBufferPointer(rebasing: buffer[index..<end])
                    // ASCII needs no validation, and most envelope strings are ASCII.
                    return slice.allSatisfy({ $0 < 0x80 }) ? String(decoding: slice, as: UTF8.self)
                        : String(validating: slice, as: UTF8.self)
                }
                guard let text else { throw fail("string is not UTF-8") }
                index = end + 1
                return text
            }
            var out: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: out, as: UTF8.self) else { throw fail("string is not UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { throw fail("unterminated escape") }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"): out.append(contentsOf: try unicodeEscape())
                    default: throw fail("unknown escape")
                    }
                case 0..<0x20:
                    throw fail("control character in a string")
                default:
                    out.append(byte)
                }
            }
        }

        /// After `\u`: four hex digits, a surrogate pair as two escapes, as UTF-8.
        mutating func unicodeEscape() throws(Malformed) -> [UInt8] {
            var scalar = try hex4()
            if (0xD800...0xDBFF).contains(scalar) {
                guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw fail("lone surrogate")
                }
                index += 2
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw fail("lone surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw fail("invalid code point") }
            return Array(String(Character(unicode)).utf8)
        }

        mutating func hex4() throws(Malformed) -> UInt32 {
            guard bytes.count - index >= 4 else { throw fail("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("bad hex digit")
                }
                value = value << 4 | UInt32(digit)
                index += 1
            }
            return value
        }

        /// A number (RFC 8259 6): an integer when it has no fraction or exponent
        /// and fits 64 bits, a double otherwise.
        mutating func number() throws(Malformed) -> JSONValue {
            let start = index
            func digits() -> Int {
                let first = index
                while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
                return index - first
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            let integerStart = index
            let count = digits()
            guard count > 0 else { throw fail("unexpected byte") }
            guard count == 1 || bytes[integerStart] != UInt8(ascii: "0") else { throw fail("leading zero") }
            var isInteger = true
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard digits() > 0 else { throw fail("digits expected after '.'") }
                isInteger = false
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
                index += 1
                if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
                guard digits() > 0 else { throw fail("digits expected in the exponent") }
                isInteger = false
            }
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            if isInteger, let integer = Int64(text) { return .integer(integer) }
            guard let double = Double(text), double.isFinite else { throw fail("number out of range") }
            return .number(double)
        }
    }

    // MARK: - Writing

    /// Pretty-printed (two spaces, `"key": value`), keys sorted, as `jq` prints.
    package static func write(_ value: JSONValue, pretty: Bool) -> String {
        String(decoding: bytes(value, pretty: pretty), as: UTF8.self)
    }

    /// The same as UTF-8 bytes, written straight into an array: the daemon
    /// encodes an envelope at every attempt, and building a `String` piece
    /// by piece cost twice as much.
    package static func bytes(_ value: JSONValue, pretty: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        write(value, pretty: pretty, indent: 0, into: &out)
        return out
    }

    private static func write(_ value: JSONValue, pretty: Bool, indent: Int, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let flag): out.append(contentsOf: (flag ? "true" : "false").utf8)
        case .integer(let number): out.append(contentsOf: String(number).utf8)
        case .number(let number) where !number.isFinite: out.append(contentsOf: "null".utf8)   // JSON has no infinities
        case .number(let number):
            // A whole double keeps a fraction, so it reads back as a number, not an integer.
            out.append(contentsOf: (number == number.rounded() && abs(number) < 1e15 ? "\(Int64(number)).0" : "\(number)").utf8)
        case .string(let text): writeString(text, into: &out)
        case .array(let elements):
            guard !elements.isEmpty else { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 1, &out) }
                write(element, pretty: pretty, indent: indent + 1, into: &out)
            }
            if pretty { newline(indent, &out) }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !members.isEmpty else { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (position, member) in members.sorted(by: { $0.key < $1.key }).enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                if pretty { newline(indent + 1, &out) }
                writeString(member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if pretty { out.append(UInt8(ascii: " ")) }
                write(member.value, pretty: pretty, indent: indent + 1, into: &out)
            }
            if pretty { newline(indent, &out) }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func newline(_ indent: Int, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * indent))
    }

    /// Quotes and escapes (RFC 8259 7): everything but `"`, `\` and control
    /// characters as UTF-8, `/` unescaped. Printable ASCII, most of what an
    /// envelope holds, is copied as it is; anything else is left to
    /// `QuotedString`, which knows the control characters beyond ASCII.
    private static func writeString(_ text: String, into out: inout [UInt8]) {
        var text = text
        let copied = text.withUTF8 { bytes -> Bool in
            guard bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else {
                return false
            }
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: bytes)
            out.append(UInt8(ascii: "\""))
            return true
        }
        if !copied { out.append(contentsOf: QuotedString.quoted(text).utf8) }
    }
}
