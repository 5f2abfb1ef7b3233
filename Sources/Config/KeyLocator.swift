import Foundation

/// The line on which each key of a TOML document was written, for error messages.
///
/// toml++ records a source position for every node, but TOMLKit 0.6.0 does not
/// expose it: only `TOMLParseError` carries a line and column. So the lines of
/// keys are found by scanning the file text here, tracking the current
/// `[table]` header the way TOML does. The scan runs only on text toml++ has
/// already accepted, so it can rely on the document being valid TOML and needs
/// to understand only what affects where keys are: comments, table headers,
/// `key = value` lines (bare, quoted and dotted keys) and multi-line strings,
/// whose contents could otherwise look like keys.
///
/// A key inside an inline table (`queue = { jitter = "1s" }`) is not recorded
/// itself; `line(of:)` falls back to the line of its enclosing table, which is
/// exact, since TOML 1.0 inline tables are written on one line.
struct KeyLocator {
    /// Dotted path (as joined by `ConfigurationParser`) to its first line.
    private var lines: [String: Int] = [:]

    init(text: String) {
        var table: [String] = []
        var openString: Substring?  // the closing delimiter of a multi-line string we are inside
        var arrayCounts: [String: Int] = [:]  // `[[routes]]` headers seen so far, by path
        // "\r\n" is one Character in Swift, so it must be named as a separator too.
        let textLines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (index, textLine) in textLines.enumerated() {
            let number = index + 1
            if let delimiter = openString {
                // After the closing delimiter only `,`, `]` or a comment can follow.
                if textLine.range(of: delimiter) != nil { openString = nil }
                continue
            }
            let line = textLine.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("[") {
                let isArray = line.hasPrefix("[[")
                var rest = line.dropFirst(isArray ? 2 : 1)
                guard var path = Self.keyPath(&rest) else { continue }
                if isArray {
                    // Each `[[routes]]` starts element N, recorded as `routes[N]`.
                    let joined = path.joined(separator: ".")
                    let index = arrayCounts[joined, default: 0]
                    arrayCounts[joined] = index + 1
                    path[path.count - 1] += "[\(index)]"
                }
                table = path
                record(path, line: number)
                continue
            }
            var rest = line
            guard let path = Self.keyPath(&rest), rest.first == "=" else { continue }
            record(table + path, line: number)
            let value = rest.dropFirst().drop(while: { $0 == " " || $0 == "\t" })
            for delimiter in ["\"\"\"", "'''"] where value.hasPrefix(delimiter) {
                if value.dropFirst(3).range(of: delimiter) == nil { openString = Substring(delimiter) }
            }
        }
    }

    /// The line of `path`, or of the nearest enclosing table or key that was
    /// written out; `nil` if none was (a key that only an override set).
    func line(of path: String) -> Int? {
        var parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        while !parts.isEmpty {
            if let line = lines[parts.joined(separator: ".")] { return line }
            parts.removeLast()
        }
        return nil
    }

    /// Records `path` and each of its prefixes (a dotted key defines its
    /// tables), keeping the first line each was seen on.
    private mutating func record(_ path: [String], line: Int) {
        for end in path.indices {
            let prefix = path[...end].joined(separator: ".")
            if lines[prefix] == nil { lines[prefix] = line }
        }
    }

    /// Reads a key (`a`, `"a b"`, `'a'`, `a . "b"`) from the start of `text`,
    /// leaving `text` after it and any following blanks; `nil` if `text` does
    /// not start with a key.
    private static func keyPath(_ text: inout Substring) -> [String]? {
        var parts: [String] = []
        while true {
            text = text.drop(while: { $0 == " " || $0 == "\t" })
            guard let first = text.first else { return nil }
            if first == "\"" || first == "'" {
                guard let part = quotedKey(&text, quote: first) else { return nil }
                parts.append(part)
            } else {
                let bare = text.prefix(while: { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
                guard !bare.isEmpty else { return nil }
                parts.append(String(bare))
                text = text.dropFirst(bare.count)
            }
            text = text.drop(while: { $0 == " " || $0 == "\t" })
            guard text.first == "." else { return parts }
            text = text.dropFirst()
        }
    }

    /// A quoted key's text; escapes in a basic-string key are kept as written,
    /// since no Postern key needs one (such a key is unknown either way).
    private static func quotedKey(_ text: inout Substring, quote: Character) -> String? {
        var part = ""
        var index = text.index(after: text.startIndex)
        while index < text.endIndex {
            let character = text[index]
            if character == quote {
                text = text[text.index(after: index)...]
                return part
            }
            if quote == "\"", character == "\\" {
                index = text.index(after: index)
                guard index < text.endIndex else { return nil }
                part.append(text[index])
            } else {
                part.append(character)
            }
            index = text.index(after: index)
        }
        return nil
    }
}
