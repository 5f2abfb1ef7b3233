/// Finds a table header that would crash the TOML parser, before it sees it.
///
/// toml++ 3, inside TOMLKit 0.6, reads a table header (`[name]`, `[[name]]`)
/// by calling its key reader without checking that a key starts there; the key
/// reader asserts it (`parse_key`, `TOML_ASSERT_ASSUME`), and SwiftPM builds C++
/// dependencies without `NDEBUG`, so `[!]`, `[é]` or a lone `[` on a line
/// aborted `postern` with SIGABRT instead of naming the line (found by
/// tools/fuzz.sh's configuration target). This check refuses such a header with
/// a syntax error first.
///
/// It reads the text as TOML 1.0 does only as far as needed to tell a header
/// from a `[` inside a value: strings (basic, literal, multi-line), comments,
/// and the nesting of arrays and inline tables are stepped over, so that an
/// array of arrays or a multi-line string whose lines start with `[` passes.
enum TableHeaderCheck {
    /// The 1-based line of the first table header whose `[` or `[[` is not
    /// followed (after spaces and tabs) by a key: a bare-key character, a
    /// quote, or the `]` toml++ reports itself. nil when every header is fine.
    static func firstBadHeader(in text: String) -> Int? {
        let bytes = Array(text.utf8)
        // A byte-order mark is not part of the first line's text for toml++ either.
        var index = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var depth = 0
        var lineStart = true
        var inHeader = false
        func at(_ offset: Int) -> UInt8? { offset < bytes.count ? bytes[offset] : nil }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                lineStart = true
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: "#"):
                while let next = at(index + 1), next != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                lineStart = false
                index = skipString(bytes, from: index, line: &line)
                continue
            case UInt8(ascii: "[") where depth == 0 && lineStart && !inHeader:
                lineStart = false
                inHeader = true
                var next = index + 1
                let array = at(next) == UInt8(ascii: "[")
                if array { next += 1 }
                let name = next
                while at(next) == UInt8(ascii: " ") || at(next) == UInt8(ascii: "\t") { next += 1 }
                // `[ [` toml++ refuses itself ("brackets must be contiguous"); `[[ [` it would not.
                let spacedBracket = !array && next > name && at(next) == UInt8(ascii: "[")
                guard let first = at(next), isKeyStart(first) || spacedBracket else { return line }
                index = next
                continue
            case UInt8(ascii: "[") where !inHeader, UInt8(ascii: "{"):
                lineStart = false
                depth += 1
            case UInt8(ascii: "]") where inHeader:
                inHeader = false
                if at(index + 1) == UInt8(ascii: "]") { index += 1 }
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth = max(0, depth - 1)
            default:
                lineStart = false
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
