
/// Any JSON value, kept exactly (integers stay integers, `true` stays a boolean).
///
/// The envelope is decoded through this type (by `JSONText`) rather than into
/// `Codable` structs for two reasons: keys written by a newer minor version must survive a
/// rewrite by this version untouched, and a bad envelope deserves an error that
/// names the field (`recipients[2].address: expected a string`), which
/// `DecodingError` does not give in words an operator can act on.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Pretty-printed with sorted keys and a final newline: stable, diffable, `jq`-friendly.
    public func encodedBytes() -> [UInt8] {
        var bytes = JSONText.bytes(self, pretty: true)
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// One line of compact JSON with sorted keys, for JSON Lines output.
    public func encodedLine() -> String {
        JSONText.write(self, pretty: false)
    }

    public static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        try JSONText.parse(bytes)
    }

    /// The name of the JSON type, for error messages.
    package var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
