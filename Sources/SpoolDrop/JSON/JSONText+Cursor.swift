import PosternBase

/// The parser as a cursor, for readers that want a few members of a large
/// object without building it (`EnvelopeSummary` for listings): `members`
/// walks an object and the caller takes or skips each value.
extension JSONText.Parser {
    /// Whether the value at the cursor is `null`.
    package mutating func nextIsNull() -> Bool {
        skipSpace()
        return index < bytes.count && bytes[index] == UInt8(ascii: "n")
    }

    /// Walks the object at the cursor: `body` gets each member's name
    /// and must consume its value (`value`, `string`, `skip`...).
    package mutating func members(depth: Int = 0, _ body: (inout Self, String) throws(JSONText.Malformed) -> Void) throws(JSONText.Malformed) {
        skipSpace()
        guard depth < JSONText.maxDepth else { throw fail("nested deeper than \(JSONText.maxDepth)") }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { throw fail("expected an object") }
        index += 1
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
            let key = try string()
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            index += 1
            skipSpace()
            try body(&self, key)
            skipSpace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
            index += 1
            return
        }
    }

    /// Walks the array at the cursor: `body` consumes each element.
    package mutating func elements(depth: Int = 0, _ body: (inout Self) throws(JSONText.Malformed) -> Void) throws(JSONText.Malformed) {
        skipSpace()
        guard depth < JSONText.maxDepth else { throw fail("nested deeper than \(JSONText.maxDepth)") }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "[") else { throw fail("expected an array") }
        index += 1
        skipSpace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            skipSpace()
            try body(&self)
            skipSpace()
            guard index < bytes.count else { throw fail("unexpected end") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
            index += 1
            return
        }
    }

    /// The value at the cursor, whatever it is.
    package mutating func value() throws(JSONText.Malformed) -> JSONValue {
        skipSpace()
        return try value(depth: 1)
    }

    /// The string at the cursor, or nil for `null`.
    package mutating func optionalString() throws(JSONText.Malformed) -> String? {
        skipSpace()
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "n"): _ = try literal("null", .null); return nil
        default: throw fail("expected a string")
        }
    }

    /// Calls `body` with the bytes of the string at the cursor (decoded
    /// when it has escapes), without making a `String` of a plain one;
    /// nil for `null`.
    package mutating func withOptionalString<T>(_ body: (UnsafeBufferPointer<UInt8>) -> T) throws(JSONText.Malformed) -> T? {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
            guard try optionalString() == nil else { throw fail("expected a string") }
            return nil
        }
        var end = index + 1
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20, bytes[end] < 0x80 {
            end += 1
        }
        if end < bytes.count, bytes[end] == UInt8(ascii: "\"") {
            let start = index + 1
            index = end + 1
            return bytes.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[start..<end])) }
        }
        var text = try string()
        return text.withUTF8(body)
    }

    /// The integer at the cursor, or nil for `null`.
    package mutating func optionalInteger() throws(JSONText.Malformed) -> Int64? {
        skipSpace()
        // The common case, a few digits and a delimiter, without the text of a number.
        var end = index
        var value: Int64 = 0
        while end < bytes.count, end - index < 18, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[end]) {
            value = value * 10 + Int64(bytes[end] - UInt8(ascii: "0"))
            end += 1
        }
        if end > index, end < bytes.count, end - index == 1 || bytes[index] != UInt8(ascii: "0") {
            switch bytes[end] {
            case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D:
                index = end
                return value
            default: break
            }
        }
        switch try self.value(depth: 1) {
        case .integer(let value): return value
        case .null: return nil
        default: throw fail("expected an integer")
        }
    }

    /// The boolean at the cursor.
    package mutating func bool() throws(JSONText.Malformed) -> Bool {
        skipSpace()
        guard case .bool(let value) = try value(depth: 1) else { throw fail("expected true or false") }
        return value
    }

    /// Passes over the value at the cursor without building it: strings
    /// are scanned to their closing quote and brackets matched, within
    /// the depth bound, but the grammar inside is not checked (a reader
    /// of a few members, such as a listing, does not need what it skips).
    package mutating func skip() throws(JSONText.Malformed) {
        skipSpace()
        var depth = 0
        repeat {
            guard index < bytes.count else { throw fail("unexpected end") }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    index += bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < bytes.count else { throw fail("unterminated string") }
                index += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                guard depth < JSONText.maxDepth else { throw fail("nested deeper than \(JSONText.maxDepth)") }
                index += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard depth > 0 else { throw fail("unexpected byte") }
                depth -= 1
                index += 1
            case UInt8(ascii: ","), UInt8(ascii: ":"), 0x20, 0x09, 0x0A, 0x0D:
                guard depth > 0 else { throw fail("unexpected byte") }
                index += 1
            default:
                // A number or a literal: to the next delimiter.
                let start = index
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: ":"), 0x20, 0x09, 0x0A, 0x0D: break
                    default: index += 1; continue
                    }
                    break
                }
                guard index > start else { throw fail("unexpected byte") }
            }
        } while depth > 0
    }

    /// After the last value: only white space may follow.
    package mutating func end() throws(JSONText.Malformed) {
        skipSpace()
        guard index == bytes.count else { throw fail("trailing bytes after the JSON value") }
    }
}
