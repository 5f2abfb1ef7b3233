import Foundation
import PosternCore
import TOMLKit

/// A TOML value as the key table sees it, copied out of TOMLKit's node so that
/// validation is plain, `Sendable` Swift and the same for the file and for `-o`.
enum Scalar: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// An array of strings (`local.domains`); arrays of anything else are `other`.
    case strings([String])
    /// A table, array, date or time: never a valid value of any key, kept only
    /// to be named in the error.
    case other(String)

    init(_ value: any TOMLValueConvertible) {
        switch value.type {
        case .string: self = value.string.map { .string($0) } ?? .other("a string")
        case .int: self = value.int.map { .integer($0) } ?? .other("an integer")
        case .double: self = value.double.map { .float($0) } ?? .other("a float")
        case .bool: self = value.bool.map { .boolean($0) } ?? .other("a boolean")
        case .table: self = .other("a table")
        case .array:
            let items = value.array.map { Array($0) } ?? []
            let texts = items.compactMap { $0.type == .string ? $0.string : nil }
            self = texts.count == items.count ? .strings(texts) : .other("an array")
        case .date, .time, .dateTime: self = .other("\(value.type) \(value.debugDescription)")
        }
    }

    /// The value for an error message: `integer 10`, `string "10"`, `a table`.
    var described: String {
        switch self {
        case .string(let text): return "string \(TOMLText.quoted(text))"
        case .integer(let number): return "integer \(number)"
        case .float(let number): return "float \(TOMLText.float(number))"
        case .boolean(let flag): return "boolean \(flag)"
        case .strings(let texts): return "an array \(Self.arrayText(texts))"
        case .other(let what): return what
        }
    }

    /// `["a", "b"]`: an array of strings as TOML source text.
    static func arrayText(_ texts: [String]) -> String {
        "[" + texts.map(TOMLText.quoted).joined(separator: ", ") + "]"
    }

    /// The value as TOML source text, for `rendered()` and the example file.
    var tomlText: String {
        switch self {
        case .string(let text): return TOMLText.quoted(text)
        case .integer(let number): return String(number)
        case .float(let number): return TOMLText.float(number)
        case .boolean(let flag): return String(flag)
        case .strings(let texts): return Self.arrayText(texts)
        case .other(let what): return "# \(what)"
        }
    }
}

/// What is wrong with one value, in words; the caller adds where it was.
struct ValueProblem: Error, Sendable {
    let message: String

    init(_ message: String) {
        self.message = message
    }

    static func wrongType(expected: String, got value: Scalar) -> ValueProblem {
        ValueProblem("expected \(expected), got \(value.described)")
    }
}

/// One configuration key: everything parsing, overriding, rendering and
/// documenting need to know about it.
struct KeyDefinition: Sendable {
    /// The dotted name, `queue.backoff_base`; the part before the dot is its table.
    let name: String
    /// The type and range in a few words, for the example file: `integer >= 1`.
    let summary: String
    /// The default as a TOML value, or `nil` when it is not fixed (`hostname`).
    let defaultValue: Scalar?
    /// The default in words when `defaultValue` is `nil`.
    let defaultNote: String?
    /// What the example file shows (commented out) when there is no fixed default.
    let exampleValue: Scalar?
    /// One line on what the key does: the comment above it in `rendered()`.
    let doc: String
    /// Further lines for the example file.
    let details: [String]
    /// Validates `value` and stores it in the configuration.
    let store: @Sendable (Scalar, inout Configuration) throws(ValueProblem) -> Void
    /// The key's value in a configuration, for `rendered()`.
    let current: @Sendable (Configuration) -> Scalar

    /// The table the key lives in (`queue`), or `nil` for a top-level key.
    var table: String? {
        guard let dot = name.firstIndex(of: ".") else { return nil }
        return String(name[..<dot])
    }

    /// The name within its table (`backoff_base`).
    var leaf: String {
        guard let dot = name.firstIndex(of: ".") else { return name }
        return String(name[name.index(after: dot)...])
    }

    /// The general form every kind of key below is built from: `decode` turns
    /// a TOML value into the Swift value (or says why not), `encode` the reverse.
    static func make<Value>(
        _ name: String, summary: String, default defaultValue: Scalar?,
        defaultNote: String? = nil, example: Scalar? = nil,
        _ path: WritableKeyPath<Configuration, Value> & Sendable,
        decode: @escaping @Sendable (Scalar) throws(ValueProblem) -> Value,
        encode: @escaping @Sendable (Value) -> Scalar,
        doc: String, details: [String]
    ) -> KeyDefinition {
        KeyDefinition(
            name: name, summary: summary, defaultValue: defaultValue, defaultNote: defaultNote,
            exampleValue: example, doc: doc, details: details,
            store: { (value: Scalar, configuration: inout Configuration) throws(ValueProblem) in
                configuration[keyPath: path] = try decode(value)
            },
            current: { configuration in encode(configuration[keyPath: path]) })
    }

    /// A boolean key.
    static func boolean(_ name: String, default value: Bool,
                        _ path: WritableKeyPath<Configuration, Bool> & Sendable,
                        doc: String, details: [String] = []) -> KeyDefinition {
        make(name, summary: "true or false", default: .boolean(value), path,
             decode: { (scalar: Scalar) throws(ValueProblem) -> Bool in
                 guard case .boolean(let flag) = scalar else { throw .wrongType(expected: "true or false", got: scalar) }
                 return flag
             },
             encode: { .boolean($0) }, doc: doc, details: details)
    }

    /// An integer key with a lower bound.
    static func integer(_ name: String, default value: Int, minimum: Int, maximum: Int = Int.max,
                        _ path: WritableKeyPath<Configuration, Int> & Sendable,
                        doc: String, details: [String] = []) -> KeyDefinition {
        make(name, summary: maximum == Int.max ? "integer >= \(minimum)" : "integer from \(minimum) to \(maximum)",
             default: .integer(value), path,
             decode: { (scalar: Scalar) throws(ValueProblem) -> Int in
                 guard case .integer(let number) = scalar else {
                     throw .wrongType(expected: "an integer", got: scalar)
                 }
                 guard number >= minimum else { throw ValueProblem("must be at least \(minimum), got \(number)") }
                 guard number <= maximum else { throw ValueProblem("must be at most \(maximum), got \(number)") }
                 return number
             },
             encode: { .integer($0) }, doc: doc, details: details)
    }

    /// A number key (a TOML float, or an integer for convenience) with a lower bound.
    static func number(_ name: String, default value: Double, minimum: Double,
                       _ path: WritableKeyPath<Configuration, Double> & Sendable,
                       doc: String, details: [String] = []) -> KeyDefinition {
        let bound = TOMLText.float(minimum)
        return make(name, summary: "number >= \(bound)", default: .float(value), path,
                    decode: { (scalar: Scalar) throws(ValueProblem) -> Double in
                        let number: Double
                        switch scalar {
                        case .float(let float): number = float
                        case .integer(let integer): number = Double(integer)
                        default: throw .wrongType(expected: "a number", got: scalar)
                        }
                        guard number.isFinite, number >= minimum else {
                            throw ValueProblem("must be a number of at least \(bound), got \(TOMLText.float(number))")
                        }
                        return number
                    },
                    encode: { .float($0) }, doc: doc, details: details)
    }

    /// The longest duration any key accepts: ten years is already absurd for
    /// a mail queue, and a bound keeps the arithmetic on it (and rendering it
    /// back in milliseconds) far from overflow.
    static let longestDuration: TimeInterval = 3650 * 86400

    /// A duration key, written as a string such as "7m30s" (`DurationText`).
    /// A bare number is refused, as everywhere in Postern: seconds or minutes
    /// must never be a guess.
    static func duration(_ name: String, default text: String, positive: Bool,
                         _ path: WritableKeyPath<Configuration, TimeInterval> & Sendable,
                         doc: String, details: [String] = []) -> KeyDefinition {
        make(name, summary: positive ? "duration > 0s" : "duration >= 0s", default: .string(text), path,
             decode: { (scalar: Scalar) throws(ValueProblem) -> TimeInterval in
                 guard case .string(let text) = scalar else {
                     throw .wrongType(expected: "a duration string such as \"7m30s\"", got: scalar)
                 }
                 guard let seconds = DurationText.parse(text) else {
                     throw ValueProblem("\(TOMLText.quoted(text)) is not a duration (e.g. 90s, 7m30s, 2h)")
                 }
                 if positive, seconds <= 0 { throw ValueProblem("must be longer than 0s, got \(TOMLText.quoted(text))") }
                 guard seconds <= longestDuration else {
                     throw ValueProblem("must be at most \(DurationSpelling.text(longestDuration)), got \(TOMLText.quoted(text))")
                 }
                 return seconds
             },
             encode: { .string(DurationSpelling.text($0)) }, doc: doc, details: details)
    }

    /// A key whose value is one of an enumeration's raw values.
    static func choice<Choice: RawRepresentable<String> & CaseIterable & Sendable>(
        _ name: String, default value: Choice,
        _ path: WritableKeyPath<Configuration, Choice> & Sendable,
        doc: String, details: [String] = []
    ) -> KeyDefinition {
        let names = Choice.allCases.map { TOMLText.quoted($0.rawValue) }.joined(separator: ", ")
        return make(name, summary: "one of \(names)", default: .string(value.rawValue), path,
                    decode: { (scalar: Scalar) throws(ValueProblem) -> Choice in
                        guard case .string(let text) = scalar else {
                            throw .wrongType(expected: "one of \(names)", got: scalar)
                        }
                        guard let choice = Choice(rawValue: text) else {
                            throw ValueProblem("\(TOMLText.quoted(text)) is not one of \(names)")
                        }
                        return choice
                    },
                    encode: { .string($0.rawValue) }, doc: doc, details: details)
    }

    /// A string key whose value `parse` checks and converts.
    static func text<Value>(
        _ name: String, summary: String, default defaultValue: Scalar?,
        defaultNote: String? = nil, example: Scalar? = nil,
        _ path: WritableKeyPath<Configuration, Value> & Sendable,
        parse: @escaping @Sendable (String) throws(ValueProblem) -> Value,
        encode: @escaping @Sendable (Value) -> String,
        doc: String, details: [String] = []
    ) -> KeyDefinition {
        make(name, summary: summary, default: defaultValue, defaultNote: defaultNote, example: example, path,
             decode: { (scalar: Scalar) throws(ValueProblem) -> Value in
                 guard case .string(let text) = scalar else { throw .wrongType(expected: "a string", got: scalar) }
                 return try parse(text)
             },
             encode: { .string(encode($0)) }, doc: doc, details: details)
    }
}
