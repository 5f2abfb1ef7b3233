import Foundation
import TOMLKit

/// Turns a file's text and `-o key=value` overrides into a validated
/// `Configuration`, strictly: an unknown key, a wrong type or a bad value is an
/// error, because a typo that is silently ignored leaves the daemon running
/// with a setting the admin believes is changed.
struct ConfigurationParser {
    private(set) var configuration: Configuration
    /// The keys the file or an override set, so that the system host name is
    /// checked only when it is actually used.
    private var setKeys: Set<String> = []
    private let defaultHostname: String

    private init(defaultHostname: String) {
        self.defaultHostname = defaultHostname
        configuration = .defaults(hostname: defaultHostname)
    }

    /// Defaults, then the file (`text`, if any), then each override in order.
    static func build(text: String?, source: String, overrides: [String],
                      defaultHostname: String) throws(ConfigurationError) -> Configuration {
        var parser = ConfigurationParser(defaultHostname: defaultHostname)
        if let text { try parser.apply(file: text, source: source) }
        for override in overrides { try parser.apply(override: override) }
        try parser.checkSystemHostname(source: source)
        try parser.completeLocal(source: source)
        try parser.checkRoutes(source: source)
        return parser.configuration
    }

    // MARK: - The file

    /// Applies every key of the file. Of several problems, the one on the
    /// earliest line is reported, as a compiler would.
    private mutating func apply(file text: String, source: String) throws(ConfigurationError) {
        let root = try Self.parseTOML(text, source: source)
        let locator = KeyLocator(text: text)
        var found = Found()
        Self.collect(root, in: nil, into: &found)
        var transportParser = TransportParser()
        if let table = found.transports { transportParser.parse(transports: table) }
        if let routes = found.routes { transportParser.parse(routes: routes) }
        // TOMLKit hands tables over sorted by name; the file's order reads better.
        configuration.transports = transportParser.transports.sorted {
            (locator.line(of: "transports.\($0.name)") ?? .max) < (locator.line(of: "transports.\($1.name)") ?? .max)
        }
        configuration.routes = transportParser.routes.enumerated().map { index, route in
            RouteDefinition(route, line: locator.line(of: "routes[\(index)]"))
        }
        var errors = (found.problems + transportParser.problems).map { problem in
            ConfigurationError(source: source, line: locator.line(of: problem.path), key: problem.key,
                               message: problem.message)
        }
        for (key, value) in found.values {
            do throws(ValueProblem) {
                try key.store(value, &configuration)
                setKeys.insert(key.name)
            } catch {
                errors.append(ConfigurationError(source: source, line: locator.line(of: key.name), key: key.name,
                                                 message: error.message))
            }
        }
        let earliest = errors.enumerated().min { left, right in
            (left.element.line ?? .max, left.offset) < (right.element.line ?? .max, right.offset)
        }
        if let earliest { throw earliest.element }
    }

    /// The document's root table, or its syntax error with line and column.
    private static func parseTOML(_ text: String, source: String) throws(ConfigurationError) -> TOMLTable {
        // TOMLKit hands the text to toml++ as a C string, which would end at a
        // NUL byte and silently ignore the rest of the file.
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].count(where: { $0 == UInt8(ascii: "\n") }) + 1
            throw ConfigurationError(source: source, line: line, message: "the file contains a NUL byte")
        }
        // A header such as `[!]` or an array such as `[}]` would abort the process inside toml++.
        if let trap = TOMLTrapCheck.firstTrap(in: text) {
            throw ConfigurationError(source: source, line: trap.line, message: "TOML syntax error: \(trap.problem)")
        }
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigurationError(source: source, line: error.source.begin.line, column: error.source.begin.column,
                                     message: "TOML syntax error: \(error.description)")
        } catch {
            throw ConfigurationError(source: source, message: "TOML parser failed: \(error)")
        }
    }

    /// What `collect` found: the known keys' values, and problems by path.
    private struct Found {
        var values: [(KeyDefinition, Scalar)] = []
        /// `path` finds the line; `key` is how the key is named in the message.
        var problems: [(path: String, key: String, message: String)] = []
        /// `[transports.NAME]` and `[[routes]]`, read by `TransportParser`.
        var transports: TOMLTable?
        var routes: (any TOMLValueConvertible)?
    }

    /// Walks the root table and the known tables below it, sorting each entry
    /// into a known key's value or a problem (unknown key or table, or a
    /// table written as something else).
    private static func collect(_ table: TOMLTable, in tableName: String?, into found: inout Found) {
        for (name, value) in table {
            let path = tableName.map { "\($0).\(name)" } ?? name
            // A quoted key with a dot ("queue.jitter" = ...) is one key, not a
            // path, so it is never a known key; it is named with its quotes.
            guard !name.contains(".") else {
                let shown = (tableName.map { "\($0)." } ?? "") + TOMLText.quoted(name)
                found.problems.append((path, shown, "unknown key; " + KeyTable.knownKeysText(in: tableName)))
                continue
            }
            if tableName == nil, name == "transports" {
                if let table = value.table {
                    found.transports = table
                } else {
                    found.problems.append((path, path, "expected tables such as [transports.smarthost], got \(Scalar(value).described)"))
                }
            } else if tableName == nil, name == "routes" {
                found.routes = value
            } else if let key = KeyTable.byName[path] {
                found.values.append((key, Scalar(value)))
            } else if tableName == nil, KeyTable.tables.contains(name) {
                if let subtable = value.table {
                    collect(subtable, in: name, into: &found)
                } else {
                    let problem = ValueProblem.wrongType(expected: "a table ([\(name)])", got: Scalar(value))
                    found.problems.append((path, path, problem.message))
                }
            } else if value.type == .table {
                found.problems.append((path, path, "unknown table [\(path)]; " + KeyTable.knownKeysText(in: tableName)))
            } else {
                found.problems.append((path, path, "unknown key; " + KeyTable.knownKeysText(in: tableName)))
            }
        }
    }

    // MARK: - Overrides

    /// Applies one `-o key=value`, validated exactly like the file.
    ///
    /// As in Postfix's `-o`, the value is whatever follows the `=`: it is read
    /// as a TOML value when it is one (`10`, `true`, `2.5`, `"text"`) and taken
    /// as a bare string otherwise (`127.0.0.1:2525`, `7m30s`, `json`). So
    /// `-o queue.max_concurrent=20` sets an integer, `-o queue.jitter=0s` a
    /// duration, and `-o queue.jitter=10` fails as it would in the file.
    private mutating func apply(override text: String) throws(ConfigurationError) {
        let source = "-o \(text)"
        guard let equals = text.firstIndex(of: "=") else {
            throw ConfigurationError(source: source, message: "expected key=value, e.g. -o queue.max_concurrent=20")
        }
        let name = text[..<equals].trimmingCharacters(in: .whitespaces)
        let raw = text[text.index(after: equals)...].trimmingCharacters(in: .whitespaces)
        guard let key = KeyTable.byName[name] else {
            throw ConfigurationError(source: source, key: name, message: Self.unknownOverrideMessage(name))
        }
        do throws(ValueProblem) {
            try key.store(Self.overrideValue(raw), &configuration)
            setKeys.insert(key.name)
        } catch {
            throw ConfigurationError(source: source, key: name, message: error.message)
        }
    }

    /// `raw` as a TOML value if it is exactly one, else as a bare string.
    static func overrideValue(_ raw: String) -> Scalar {
        // A newline would let the text define further keys in the probe below.
        guard !raw.isEmpty, !raw.contains(where: \.isNewline), !raw.utf8.contains(0) else { return .string(raw) }
        do {
            let probe = try TOMLTable(string: "v = " + raw)
            if probe.count == 1, let value = probe["v"] { return Scalar(value) }
        } catch {
            // Not TOML: a bare string, by design (see `apply(override:)`).
        }
        return .string(raw)
    }

    private static func unknownOverrideMessage(_ name: String) -> String {
        if name.isEmpty { return "expected key=value, e.g. -o queue.max_concurrent=20" }
        if name.hasPrefix("transports") || name.hasPrefix("routes") {
            return "transports and routes are set in the configuration file only"
        }
        if KeyTable.tables.contains(name), let first = KeyTable.keys(in: name).first {
            return "[\(name)] is a table; set one of its keys, e.g. -o \(first.name)=..."
        }
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2, KeyTable.tables.contains(parts[0]) {
            return "unknown key given with -o; " + KeyTable.knownKeysText(in: parts[0])
        }
        if parts.count == 2 {
            return "unknown key given with -o: there is no table [\(parts[0])]; " + KeyTable.knownKeysText(in: nil)
        }
        return "unknown key given with -o; " + KeyTable.knownKeysText(in: nil)
    }

    // MARK: - Routes

    /// Every route must name a transport that exists: a typo would otherwise
    /// send mail somewhere the admin did not mean, or nowhere.
    private func checkRoutes(source: String) throws(ConfigurationError) {
        if configuration.relay != nil, configuration.transports.contains(where: { $0.name == "relay" }) {
            throw ConfigurationError(source: source, key: "transports.relay",
                                     message: "the top-level relay key defines the transport \"relay\" already; remove one")
        }
        let names = Set(configuration.transportNames)
        for (index, route) in configuration.routes.enumerated() where !names.contains(route.route.transport) {
            throw ConfigurationError(source: source, line: route.line, key: "routes[\(index)].transport",
                                     message: "unknown transport \"\(route.route.transport)\"; defined: "
                                         + configuration.transportNames.joined(separator: ", "))
        }
    }

    // MARK: - Local domains

    /// `local.domains` defaults to the host name in effect (set or not) and
    /// `localhost`; the admin address may not be in them, or a recipient no
    /// alias resolves would be rewritten to an address that is rewritten again.
    private mutating func completeLocal(source: String) throws(ConfigurationError) {
        if !setKeys.contains("local.domains") {
            configuration.local.domains = LocalSettings.defaultDomains(hostname: configuration.hostname)
        }
        let admin = configuration.local.adminAddress
        if let at = admin.lastIndex(of: "@"), configuration.local.domains.contains(String(admin[admin.index(after: at)...])) {
            throw ConfigurationError(source: source, key: "local.admin_address",
                                     message: "\(TOMLText.quoted(admin)) is in local.domains, so mail to it would be "
                                         + "rewritten again; name an address whose domain is not local")
        }
    }

    // MARK: - The system host name

    /// `hostname` defaults to the system's host name, which may not be one
    /// SMTP accepts (an underscore, a trailing dot): then the admin must set it.
    private func checkSystemHostname(source: String) throws(ConfigurationError) {
        guard !setKeys.contains("hostname") else { return }
        do throws(ValueProblem) {
            try HostName.check(defaultHostname)
        } catch {
            throw ConfigurationError(source: source, key: "hostname",
                                     message: "not set, and the system host name is unusable: \(error.message); "
                                         + "set hostname in the configuration")
        }
    }
}
