import Foundation

/// Any JSON value, kept exactly (integers stay integers, `true` stays a boolean).
///
/// The envelope is decoded through this type rather than straight into `Codable`
/// structs for two reasons: keys written by a newer minor version must survive a
/// rewrite by this version untouched, and a bad envelope deserves an error that
/// names the field (`recipients[2].address: expected a string`), which
/// `DecodingError` does not give in words an operator can act on.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// Pretty-printed with sorted keys and a final newline: stable, diffable, `jq`-friendly.
    public func encoded() -> Data {
        Data((JSONText.write(self, pretty: true) + "\n").utf8)
    }

    /// One line of compact JSON with sorted keys, for JSON Lines output.
    public func encodedLine() -> String {
        JSONText.write(self, pretty: false)
    }

    public static func decode(_ data: Data) throws -> JSONValue {
        try JSONText.parse(data)
    }

    /// The name of the JSON type, for error messages.
    var typeName: String {
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
