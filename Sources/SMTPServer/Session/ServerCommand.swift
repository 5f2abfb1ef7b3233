import PosternBase

/// A command line split into its verb and argument (RFC 5321 4.1.1): the verb
/// upper-cased, the argument as written after one space.
struct ServerCommand: Equatable {
    var verb: String
    var argument: String

    init(line: ArraySlice<UInt8>) {
        let space = line.firstIndex(of: UInt8(ascii: " ")) ?? line.endIndex
        verb = String(decoding: line[..<space], as: UTF8.self).uppercased()
        argument = space < line.endIndex ? String(decoding: line[(space + 1)...], as: UTF8.self) : ""
    }

    /// `FROM:<path> params` or `TO:<path> params`: the path between the angle
    /// brackets and the ESMTP parameters after it (RFC 5321 4.1.2), each
    /// `KEYWORD[=value]` with its keyword upper-cased. A space after the
    /// colon is tolerated, as most servers do (RFC 5321 4.1.1.2 has none).
    /// nil when the syntax is wrong.
    static func path(_ argument: String, prefix: String) -> (path: String, parameters: [(String, String?)])? {
        guard argument.uppercased().hasPrefix(prefix) else { return nil }
        var rest = argument.dropFirst(prefix.count)
        while rest.first == " " { rest = rest.dropFirst() }
        guard rest.first == "<", let close = closingBracket(of: rest) else { return nil }
        var path = String(rest[rest.index(after: rest.startIndex)..<close])
        // RFC 5321 4.1.1.3 and appendix C: a source route "@a,@b:" is accepted and ignored.
        if path.hasPrefix("@"), let colon = path.firstIndex(of: ":") {
            path = String(path[path.index(after: colon)...])
        }
        var parameters: [(String, String?)] = []
        for word in rest[rest.index(after: close)...].split(separator: " ") {
            if let equals = word.firstIndex(of: "=") {
                parameters.append((word[..<equals].uppercased(), String(word[word.index(after: equals)...])))
            } else {
                parameters.append((word.uppercased(), nil))
            }
        }
        return (path, parameters)
    }

    /// The `>` that closes the path, skipping quoted strings in the local part.
    private static func closingBracket(of text: Substring) -> Substring.Index? {
        var quoted = false
        var escaped = false
        for index in text.indices.dropFirst() {
            let character = text[index]
            if escaped { escaped = false; continue }
            if character == "\\" { escaped = true; continue }
            if character == "\"" { quoted.toggle(); continue }
            if character == ">" && !quoted { return index }
        }
        return nil
    }
}
