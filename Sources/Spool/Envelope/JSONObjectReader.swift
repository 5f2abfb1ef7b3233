import Foundation
import PosternCore

/// Why an envelope could not be read, naming the field at fault. A value quoted
/// in `detail` is quoted with its control characters escaped (`QuotedString`):
/// the text goes to `corrupt/NAME/reason`, logs and terminals.
public struct EnvelopeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case notJSON
        case missingField
        case wrongType
        case badValue
        /// A major version this program does not know: never guessed at.
        case unsupportedVersion
    }

    public let kind: Kind
    /// The dotted path of the field, e.g. `recipients[1].state`; empty for the whole document.
    public let field: String
    public let detail: String

    public var description: String {
        field.isEmpty ? "envelope: \(detail)" : "envelope field \(field): \(detail)"
    }
}

/// Reads the fields of one JSON object, remembering which keys were consumed so
/// the rest can be kept (`leftovers`) and written back unchanged.
struct JSONObjectReader {
    let path: String
    private let object: [String: JSONValue]
    private var consumed: Set<String> = []

    init(_ value: JSONValue, path: String) throws(EnvelopeError) {
        guard case .object(let object) = value else {
            throw EnvelopeError(kind: .wrongType, field: path, detail: "expected an object, found \(value.typeName)")
        }
        self.object = object
        self.path = path
    }

    /// Every key of the object (for tables keyed by data, such as host names).
    var keys: [String] { object.keys.sorted() }

    /// The keys this program did not ask for, with their values.
    var leftovers: [String: JSONValue] { object.filter { !consumed.contains($0.key) } }

    private func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrongType(_ key: String, _ expected: String, _ found: JSONValue) -> EnvelopeError {
        EnvelopeError(kind: .wrongType, field: fieldPath(key), detail: "expected \(expected), found \(found.typeName)")
    }

    /// The value of `key`, or nil when absent or JSON null.
    mutating func optional(_ key: String) -> JSONValue? {
        consumed.insert(key)
        guard let value = object[key], value != .null else { return nil }
        return value
    }

    mutating func required(_ key: String) throws(EnvelopeError) -> JSONValue {
        guard let value = optional(key) else {
            throw EnvelopeError(kind: .missingField, field: fieldPath(key), detail: "missing")
        }
        return value
    }

    mutating func string(_ key: String) throws(EnvelopeError) -> String? {
        guard let value = optional(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "a string", value) }
        return text
    }

    mutating func requiredString(_ key: String) throws(EnvelopeError) -> String {
        let value = try required(key)
        guard case .string(let text) = value else { throw wrongType(key, "a string", value) }
        return text
    }

    mutating func integer(_ key: String) throws(EnvelopeError) -> Int? {
        guard let value = optional(key) else { return nil }
        guard case .integer(let number) = value, let int = Int(exactly: number) else {
            throw wrongType(key, "an integer", value)
        }
        return int
    }

    mutating func requiredInteger(_ key: String) throws(EnvelopeError) -> Int {
        _ = try required(key)
        return try integer(key)!
    }

    mutating func bool(_ key: String) throws(EnvelopeError) -> Bool? {
        guard let value = optional(key) else { return nil }
        guard case .bool(let flag) = value else { throw wrongType(key, "true or false", value) }
        return flag
    }

    mutating func date(_ key: String) throws(EnvelopeError) -> Date? {
        guard let text = try string(key) else { return nil }
        guard let date = Timestamp.parse(text) else {
            throw EnvelopeError(kind: .badValue, field: fieldPath(key),
                                detail: "\(QuotedString.quoted(text)) is not an RFC 3339 time")
        }
        return date
    }

    mutating func requiredDate(_ key: String) throws(EnvelopeError) -> Date {
        _ = try required(key)
        return try date(key)!
    }

    /// Each element of the array at `key` read with `read`; an absent key is an empty array.
    mutating func array<T>(_ key: String,
                           _ read: (JSONValue, String) throws(EnvelopeError) -> T) throws(EnvelopeError) -> [T] {
        guard let value = optional(key) else { return [] }
        guard case .array(let items) = value else { throw wrongType(key, "an array", value) }
        var result: [T] = []
        for (index, item) in items.enumerated() {
            result.append(try read(item, "\(fieldPath(key))[\(index)]"))
        }
        return result
    }

    func bad(_ key: String, _ detail: String) -> EnvelopeError {
        EnvelopeError(kind: .badValue, field: fieldPath(key), detail: detail)
    }
}

/// Builds a JSON object from typed fields over the keys that were preserved.
struct JSONObjectWriter {
    private(set) var object: [String: JSONValue]

    init(preserving leftovers: [String: JSONValue]) {
        object = leftovers
    }

    mutating func set(_ key: String, _ value: String?) { object[key] = value.map(JSONValue.string) }
    mutating func set(_ key: String, _ value: Int?) { object[key] = value.map { .integer(Int64($0)) } }
    mutating func set(_ key: String, _ value: Bool?) { object[key] = value.map(JSONValue.bool) }
    mutating func set(_ key: String, _ value: Date?) { object[key] = value.map { .string(Timestamp.format($0)) } }
    mutating func set(_ key: String, _ value: [JSONValue]) { object[key] = .array(value) }
    mutating func set(_ key: String, _ value: JSONValue?) { object[key] = value }

    var value: JSONValue { .object(object) }
}
