/// Finds what would crash the TOML parser, before it sees it.
///
/// toml++ 3, inside TOMLKit 0.6, trusts its callers in a few places and checks
/// that trust with assertions (`TOML_ASSERT_ASSUME`); SwiftPM builds C++
/// dependencies without `NDEBUG`, so input that breaks one aborts `postern`
/// with SIGABRT instead of naming the line. tools/fuzz.sh's configuration
/// target found two such places, and this check refuses their input first:
///
/// - A table header (`[name]`, `[[name]]`) is read by calling the key reader
///   without checking that a key starts there (`parse_key`): `[!]`, `[é]`, a
///   lone `[` on a line.
/// - An array element is read by calling the value reader without checking that
///   a value starts there (`parse_array` calls `parse_value`, which asserts
///   `!is_value_terminator`): `[}]`, `[1, }]`, and an array element that begins
///   with U+0085, U+2028 or U+2029, which toml++ counts as white space but skips
///   nowhere. TOML 1.0 allows those three only inside strings and comments, so
///   they are refused anywhere else.
///
/// It reads the text as TOML 1.0 does only as far as needed: strings (basic,
/// literal, multi-line) and comments are stepped over, and arrays and inline
/// tables are followed on a stack, so that an array of arrays or a multi-line
/// string whose lines start with `[` passes.
enum TOMLTrapCheck {
    /// The first trap found: its 1-based line and what is wrong, in the words
    /// of a TOML syntax error.
    struct Trap: Equatable {
        let line: Int
        let problem: String
    }

    static let headerProblem = "expected a table name after \"[\" or \"[[\""
    static let arrayProblem = "expected a value or \"]\" in an array, saw \"}\""
    static let lineSeparatorProblem = "U+0085, U+2028 and U+2029 are neither white space nor line breaks in TOML"

    /// The first place in `text` that toml++ would fail an assertion on, or nil.
    static func firstTrap(in text: String) -> Trap? {
        let bytes = Array(text.utf8)
        // A byte-order mark is not part of the first line's text for toml++ either.
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var open: [UInt8] = []  // the arrays ("[") and inline tables ("{") being read, innermost last
        var awaitingElement = false  // in an array, right after "[" or ","
        var lineStart = true
        var inHeader = false
        func at(_ offset: Int) -> UInt8? { offset < bytes.count ? bytes[offset] : nil }
        while index < bytes.count {
            let byte = bytes[index]
            var element = true  // this byte begins or continues something other than white space
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                lineStart = true
                element = false
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                element = false
            case UInt8(ascii: "#"):
                while let next = at(index + 1), next != UInt8(ascii: "\n") { index += 1 }
                element = false
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                lineStart = false
                awaitingElement = false
                index = skipString(bytes, from: index, line: &line)
                continue
            case 0xC2 where at(index + 1) == 0x85,
                 0xE2 where at(index + 1) == 0x80 && (at(index + 2) == 0xA8 || at(index + 2) == 0xA9):
                return Trap(line: line, problem: lineSeparatorProblem)
            case UInt8(ascii: "[") where open.isEmpty && lineStart && !inHeader:
                lineStart = false
                inHeader = true
                var next = index + 1
                let array = at(next) == UInt8(ascii: "[")
                if array { next += 1 }
                let name = next
                while at(next) == UInt8(ascii: " ") || at(next) == UInt8(ascii: "\t") { next += 1 }
                // `[ [` toml++ refuses itself ("brackets must be contiguous"); `[[ [` it would not.
                let spacedBracket = !array && next > name && at(next) == UInt8(ascii: "[")
                guard let first = at(next), isKeyStart(first) || spacedBracket else {
                    return Trap(line: line, problem: headerProblem)
                }
                index = next
                continue
            case UInt8(ascii: "[") where !inHeader, UInt8(ascii: "{"):
                lineStart = false
                open.append(byte)
                awaitingElement = byte == UInt8(ascii: "[")
                index += 1
                continue
            case UInt8(ascii: ",") where open.last == UInt8(ascii: "["):
                awaitingElement = true
                index += 1
                continue
            case UInt8(ascii: "]") where inHeader:
                inHeader = false
                if at(index + 1) == UInt8(ascii: "]") { index += 1 }
            case UInt8(ascii: "}") where awaitingElement && open.last == UInt8(ascii: "["):
                return Trap(line: line, problem: arrayProblem)
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if !open.isEmpty { open.removeLast() }
            default:
                break
            }
            if element {
                lineStart = false
                awaitingElement = false
            }
            index += 1
        }
        return nil
    }

    /// A bare-key character (TOML 1.0: A-Z a-z 0-9 _ -), a quote, or `]`.
    static func isKeyStart(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "]"):
            return true
        default:
            return false
        }
    }

    /// The index after the string opening at `start`: a basic string ends at an
    /// unescaped quote, a literal one at the next quote, a one-line string also
    /// at the end of the line; a multi-line one (three quotes) at three quotes.
    static func skipString(_ bytes: [UInt8], from start: Int, line: inout Int) -> Int {
        let quote = bytes[start]
        let escapes = quote == UInt8(ascii: "\"")
        let multiLine = bytes.count - start >= 3 && bytes[start + 1] == quote && bytes[start + 2] == quote
        var index = start + (multiLine ? 3 : 1)
        while index < bytes.count {
            let byte = bytes[index]
            if escapes && byte == UInt8(ascii: "\\") {
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { line += 1 }
                index += 2
                continue
            }
            if byte == UInt8(ascii: "\n") {
                guard multiLine else { return index }
                line += 1
            } else if byte == quote {
                guard multiLine else { return index + 1 }
                if bytes.count - index >= 3, bytes[index + 1] == quote, bytes[index + 2] == quote { return index + 3 }
            }
            index += 1
        }
        return index
    }
}
