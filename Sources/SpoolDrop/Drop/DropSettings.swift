import Glibc
import PosternBase

/// What the drop takes from the configuration file: `hostname`,
/// `drop.max_message_size` and `drop.max_recipients`, read from
/// `/etc/postern/postern.toml` without a TOML library.
///
/// The drop program is installed set-group-ID and must stay small (no
/// Foundation, no C++ TOML parser), so it reads the three keys it needs with
/// the TOML 1.0 rules that can reach them: tables, dotted and quoted keys,
/// basic and literal strings, integers with underscores, comments. Everything
/// else (arrays, multi-line strings, inline tables, `[[routes]]`) is stepped
/// over, brackets and quotes included, so that a line inside a multi-line
/// string is never taken for a key. The daemon and `postern config check`
/// parse the whole file with a full TOML parser; a test holds the two readers
/// to the same answers.
public struct DropSettings: Sendable, Equatable {
    public var hostname: String?
    public var maxMessageSize = 64 << 20
    public var maxRecipients = Submission.defaultMaxRecipients

    public init() {}

    /// A value that is there but wrong: the drop refuses to guess (exit 78).
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `path`; a missing file means the defaults. With `trustedOnly`
    /// (a set-group-ID drop), a file that root does not own, or that others
    /// may write, is refused: its settings would be the caller's to choose.
    public static func load(path: String, trustedOnly: Bool) throws(Invalid) -> DropSettings {
        let opened: (fd: Int32, status: stat)
        do {
            opened = try RegularFile.open(path, singleLink: false)
        } catch {
            if error.code == ENOENT { return DropSettings() }
            throw Invalid(description: "\(path): \(error)")
        }
        defer { close(opened.fd) }
        if trustedOnly, opened.status.st_uid != 0 || opened.status.st_mode & 0o022 != 0 {
            throw Invalid(description: "\(path): not owned by root, or writable by others; a set-group-ID drop does not read it")
        }
        guard opened.status.st_size <= 1 << 20 else { throw Invalid(description: "\(path): larger than 1 MiB") }
        let bytes: [UInt8]
        do {
            bytes = try RegularFile.read(opened.fd, upTo: Int(opened.status.st_size))
        } catch {
            throw Invalid(description: "\(path): \(error)")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), source: path)
    }

    /// The settings `text` gives, `source` naming it in errors.
    public static func parse(_ text: String, source: String) throws(Invalid) -> DropSettings {
        var settings = DropSettings()
        var reader = TOMLLines(text)
        var table: [String] = []
        while let line = reader.next() {
            var cursor = TOMLCursor(line.text)
            cursor.skipSpace()
            guard let first = cursor.peek, first != UInt8(ascii: "#") else { continue }
            if first == UInt8(ascii: "[") {
                // [table] or [[array of tables]]: only plain tables hold our keys.
                let isArray = cursor.starts(with: "[[")
                cursor.advance(isArray ? 2 : 1)
                let name = cursor.key()
                table = isArray ? ["[["] : (name ?? ["?"])
                continue
            }
            guard let key = cursor.key(), cursor.consume("=") else { continue }
            // Compared as a list: a quoted key "drop.max_recipients" is one key, not a path.
            let parts = table + key
            let path = parts.joined(separator: ".")
            let value = cursor.value(continuing: &reader)
            func fail(_ why: String) -> Invalid {
                Invalid(description: "\(source), line \(line.number): \(path): \(why)")
            }
            switch parts {
            case ["hostname"]:
                guard case .string(let name)? = value, !name.isEmpty,
                      name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                    throw fail("expected a host name in quotes")
                }
                settings.hostname = name
            case ["drop", "max_message_size"], ["drop", "max_recipients"]:
                guard case .integer(let number)? = value, number >= 1 else { throw fail("expected an integer of at least 1") }
                if parts[1] == "max_message_size" { settings.maxMessageSize = number } else { settings.maxRecipients = number }
            case ["drop"]:
                throw fail("write [drop] as a table or with dotted keys: the drop program does not read inline tables")
            default:
                continue
            }
        }
        return settings
    }
}

/// The lines of a TOML text, numbered: split at LF octets (a `"\r\n"` is one
/// Swift Character, so splitting the String would not), CR before LF and a
/// leading byte-order mark dropped.
struct TOMLLines {
    private var lines: [ArraySlice<UInt8>]
    private var index = 0

    init(_ text: String) {
        var bytes = Array(text.utf8)[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
    }

    mutating func next() -> (text: ArraySlice<UInt8>, number: Int)? {
        guard index < lines.count else { return nil }
        index += 1
        return (lines[index - 1], index)
    }
}

/// A position in one line of TOML, with the few readers the drop needs.
struct TOMLCursor {
    enum Value: Equatable {
        case string(String)
        case integer(Int)
        /// Anything else: stepped over.
        case other
    }

    private var bytes: [UInt8]
    private var index = 0

    init(_ line: ArraySlice<UInt8>) {
        bytes = Array(line)
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }
    mutating func advance(_ count: Int = 1) { index = min(bytes.count, index + count) }
    func starts(with text: String) -> Bool { bytes[index...].starts(with: text.utf8) }

    mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0D { advance() }
    }

    mutating func consume(_ text: String) -> Bool {
        skipSpace()
        guard starts(with: text) else { return false }
        advance(text.utf8.count)
        return true
    }

    /// A key: bare, quoted or dotted (TOML 1.0, "Keys"); nil if none.
    mutating func key() -> [String]? {
        var parts: [String] = []
        repeat {
            skipSpace()
            if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") {
                guard let part = quoted() else { return nil }
                parts.append(part)
            } else {
                let start = index
                while let byte = peek, byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                    || (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) { advance() }
                guard index > start else { return nil }
                parts.append(String(decoding: bytes[start..<index], as: UTF8.self))
            }
            skipSpace()
        } while consume(".")
        return parts
    }

    /// A basic ("…", with escapes) or literal ('…') string on this line.
    mutating func quoted() -> String? {
        guard let quote = peek else { return nil }
        advance()
        var out: [UInt8] = []
        while let byte = peek {
            advance()
            if byte == quote { return String(decoding: out, as: UTF8.self) }
            if byte == UInt8(ascii: "\\") && quote == UInt8(ascii: "\"") {
                guard let escaped = peek else { return nil }
                advance()
                switch escaped {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "e"): out.append(0x1B)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(escaped)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    // TOML 1.0: \uXXXX and \UXXXXXXXX, a Unicode scalar value.
                    let digits = escaped == UInt8(ascii: "u") ? 4 : 8
                    guard bytes.count - index >= digits,
                          let value = UInt32(String(decoding: bytes[index..<index + digits], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(value) else { return nil }
                    advance(digits)
                    out += Array(String(Character(scalar)).utf8)
                default:
                    return nil
                }
            } else {
                out.append(byte)
            }
        }
        return nil
    }

    /// The value after `=`. Strings and integers are read; arrays, inline
    /// tables and multi-line strings are stepped over to their end, taking
    /// further lines from `lines` when they span them.
    mutating func value(continuing lines: inout TOMLLines) -> Value? {
        skipSpace()
        for delimiter in ["\"\"\"", "'''"] where starts(with: delimiter) {
            advance(3)
            var rest = self
            while !rest.closes(delimiter), let next = lines.next() { rest = TOMLCursor(next.text) }
            return .other
        }
        switch peek {
        case UInt8(ascii: "\"")?, UInt8(ascii: "'")?:
            return quoted().map(Value.string)
        case UInt8(ascii: "[")?, UInt8(ascii: "{")?:
            var depth = 0
            var line = self
            while true {
                depth += line.bracketBalance()
                guard depth > 0, let next = lines.next() else { return .other }
                line = TOMLCursor(next.text)
            }
        default:
            let start = index
            while let byte = peek, byte != UInt8(ascii: "#"), byte != 0x20, byte != 0x09, byte != 0x0D { advance() }
            let text = String(decoding: bytes[start..<index], as: UTF8.self).replacingUnderscores()
            return Int(text).map(Value.integer) ?? .other
        }
    }

    /// Whether the rest of the line holds the end of a multi-line string:
    /// `delimiter` not escaped by a backslash (basic strings only; a literal
    /// string has no escapes).
    private func closes(_ delimiter: String) -> Bool {
        let basic = delimiter.first == "\""
        var position = index
        while position < bytes.count {
            if basic && bytes[position] == UInt8(ascii: "\\") {
                position += 2
                continue
            }
            if bytes[position...].starts(with: delimiter.utf8) { return true }
            position += 1
        }
        return false
    }

    /// Opening minus closing brackets and braces outside strings and comments.
    private mutating func bracketBalance() -> Int {
        var balance = 0
        while let byte = peek {
            switch byte {
            case UInt8(ascii: "["), UInt8(ascii: "{"): balance += 1; advance()
            case UInt8(ascii: "]"), UInt8(ascii: "}"): balance -= 1; advance()
            case UInt8(ascii: "\""), UInt8(ascii: "'"): _ = quoted()
            case UInt8(ascii: "#"): return balance
            default: advance()
            }
        }
        return balance
    }
}

extension String {
    /// TOML allows `_` between digits (`67_108_864`).
    fileprivate func replacingUnderscores() -> String {
        String(unicodeScalars.filter { $0 != "_" }.map(Character.init))
    }
}
