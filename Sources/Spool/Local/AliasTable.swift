import PosternCore

/// The aliases of this machine's own users: an `/etc/aliases`-style text
/// (aliases(5) of sendmail and Postfix), parsed strictly.
///
/// A logical line is `name: target, target, ...`; a line that starts with
/// white space continues the one before; blank lines and lines whose first
/// non-blank character is `#` are comments. Names are matched without regard
/// to case, as Postfix and sendmail match them (RFC 5321 2.4 leaves the case of
/// a local part to the host that owns it, and 4.5.1 requires `Postmaster` in
/// any case; this host says "any case" for every name). A
/// target is a mailbox (`admin@example.net`), or a local name (`root`) that is
/// itself looked up again.
///
/// A null client runs no programs and writes no files for a sender it does not
/// know, so `:include:`, `|command` and `/file` targets are skipped with a
/// problem reported, never run or opened. Every other target passes
/// `MailboxAddress(parsing:)`, which refuses CR, LF and every control
/// character: an alias can never put a line break into an SMTP command or the
/// envelope. A line that is wrong is left out whole, with its line number in
/// the problem, and the rest of the file applies: a typo in one alias must not
/// stop mail to all the others.
public struct AliasTable: Sendable, Equatable {
    /// What a name resolves to: a mailbox, or another local name.
    public enum Target: Sendable, Equatable {
        case address(MailboxAddress)
        case local(String)
    }

    /// One alias: its targets in file order, and where it was defined.
    public struct Entry: Sendable, Equatable {
        public var targets: [Target]
        public var line: Int
    }

    /// Something wrong with one line, for the log: `source, line N: why`.
    public struct Problem: Sendable, Equatable, CustomStringConvertible {
        public var source: String
        public var line: Int?
        public var message: String

        public var description: String {
            (line.map { "\(source), line \($0)" } ?? source) + ": " + message
        }
    }

    /// Entries by lower-cased name.
    public private(set) var entries: [String: Entry] = [:]

    public init() {}

    /// The alias of `name`, whatever its case.
    public subscript(name: String) -> Entry? { entries[name.lowercased()] }

    public var isEmpty: Bool { entries.isEmpty }

    /// Parses `text`; `source` names it in problems. The table holds every
    /// line that is right; the problems say what was left out and why.
    public static func parse(_ text: String, source: String) -> (table: AliasTable, problems: [Problem]) {
        var table = AliasTable()
        var problems: [Problem] = []
        var logical: (text: String, line: Int)?
        func finish() {
            guard let current = logical else { return }
            logical = nil
            table.add(current.text, line: current.line, source: source, problems: &problems)
        }
        // Split at LF octets: a "\r\n" is one Swift Character.
        let lines = Array(text.utf8).split(separator: 0x0A, omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            let line = String(decoding: raw.last == 0x0D ? raw.dropLast() : raw, as: UTF8.self)
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " || line.first == "\t" {
                guard logical != nil else {
                    problems.append(Problem(source: source, line: number, message: "a continuation line with no alias before it"))
                    continue
                }
                logical!.text += " " + trimmed
            } else {
                finish()
                logical = (line, number)
            }
        }
        finish()
        return (table, problems)
    }

    /// Adds one logical line, or reports why it cannot be added.
    private mutating func add(_ text: String, line: Int, source: String, problems: inout [Problem]) {
        func problem(_ message: String) { problems.append(Problem(source: source, line: line, message: message)) }
        if let bad = text.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\t" || (0x7F...0x9F).contains($0.value) }) {
            return problem("a control character (U+\(String(bad.value, radix: 16, uppercase: true))); the line is left out")
        }
        guard let colon = Self.unquotedColon(in: text) else {
            return problem("expected \"name: target, ...\"; the line is left out")
        }
        let name = String(text[..<colon]).trimmingWhitespace()
        guard Self.isLocalName(name) else {
            return problem("\(AliasText.quoted(name)) is not a local name (RFC 5321 4.1.2 local part); the line is left out")
        }
        let key = name.lowercased()
        if let earlier = entries[key] {
            return problem("\(AliasText.quoted(name)) is already defined on line \(earlier.line); this one is left out")
        }
        var targets: [Target] = []
        for item in Self.split(String(text[text.index(after: colon)...])) {
            switch Self.target(item) {
            case .success(let target): targets.append(target)
            case .failure(let why): problem("\(name): \(why)")
            }
        }
        guard !targets.isEmpty else { return problem("\(name): no target that can be used; the alias is left out") }
        entries[key] = Entry(targets: targets, line: line)
    }

    /// One target, or why it is skipped.
    static func target(_ text: String) -> Result<Target, TargetProblem> {
        let lower = text.lowercased()
        if lower.hasPrefix(":include:") {
            return .failure(TargetProblem("\(AliasText.quoted(text)): :include: lists are not supported; skipped"))
        }
        if text.hasPrefix("|") || text.hasPrefix("\"|") {
            return .failure(TargetProblem("\(AliasText.quoted(text)): commands are never run; skipped"))
        }
        if text.hasPrefix("/") || text.hasPrefix("\"/") {
            return .failure(TargetProblem("\(AliasText.quoted(text)): delivery to files is not supported; skipped"))
        }
        do {
            // The address parser refuses control characters, so no alias can inject CR or LF.
            let address = try MailboxAddress(parsing: text)
            return .success(.address(address))
        } catch {
            guard case .missingAt = error else { return .failure(TargetProblem("\(error)")) }
        }
        guard isLocalName(text) else {
            return .failure(TargetProblem("\(AliasText.quoted(text)) is neither a mail address nor a local name; skipped"))
        }
        return .success(.local(text))
    }

    struct TargetProblem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A local part that an address may have (a Dot-string or a
    /// Quoted-string, RFC 5321 4.1.2), checked by the address parser itself.
    static func isLocalName(_ name: String) -> Bool {
        !name.isEmpty && !name.contains("@") && (try? MailboxAddress(parsing: name + "@localhost")) != nil
    }

    /// The first `:` outside double quotes.
    static func unquotedColon(in text: String) -> String.Index? {
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if character == "\\", quoted {
                index = text.index(after: index)
                if index < text.endIndex { index = text.index(after: index) }
                continue
            }
            if character == "\"" { quoted.toggle() }
            if character == ":", !quoted { return index }
            index = text.index(after: index)
        }
        return nil
    }

    /// The targets of `text`, split at commas outside double quotes, trimmed;
    /// empty items (`a,,b`, a trailing comma) are none.
    static func split(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for character in text {
            if escaped {
                escaped = false
            } else if character == "\\", quoted {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if character == ",", !quoted {
                items.append(current)
                current = ""
                continue
            }
            current.append(character)
        }
        items.append(current)
        return items.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }
}

/// Untrusted text of the aliases file, quoted for a one-line log message.
enum AliasText {
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(200) {
            switch scalar {
            case "\"", "\\": out += "\\" + String(scalar)
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value):
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
