import Foundation
import PosternCore
import TOMLKit

/// Reads the `[transports.NAME]` tables and the `[[routes]]` array, as strictly
/// as the key table: each kind accepts its own keys only, so a `port` under a
/// `maildir` transport is an error rather than a silent no-op.
///
/// Transports and routes have names chosen by the admin and repeat, so they
/// do not fit the flat key table; they are set in the file only, never by `-o`.
struct TransportParser {
    /// A problem at a dotted path (`transports.smarthost.port`, `routes[1].transport`).
    typealias Problem = (path: String, key: String, message: String)

    private(set) var transports: [TransportDefinition] = []
    private(set) var routes: [Route] = []
    private(set) var problems: [Problem] = []

    /// The keys each kind accepts besides `kind`.
    static let keys: [TransportKind: [String]] = [
        .direct: ["family", "bind_ipv4", "bind_ipv6", "ehlo_name"],
        .relay: ["host", "tls", "credentials", "ca_file", "ehlo_name"],
        .submission: ["host", "credentials", "ca_file", "ehlo_name"],
        .submissions: ["host", "credentials", "ca_file", "ehlo_name"],
        .socks5: ["proxy", "family", "ehlo_name"],
        .maildir: ["path"],
        .fail: ["code", "enhanced", "text"],
    ]

    static let routeKeys = ["sender_domains", "recipient_domains", "min_attempts", "transport"]

    /// Names the daemon defines itself.
    static let builtIn = ["direct"]

    mutating func parse(transports table: TOMLTable) {
        for (name, value) in table {
            let path = "transports.\(name)"
            guard Self.isValidName(name) else {
                problems.append((path, path, "a transport name is 1 to 64 of a-z, 0-9, - and _"))
                continue
            }
            guard !Self.builtIn.contains(name) else {
                problems.append((path, path, "\"\(name)\" is built in (configure it in [direct]); name your own transport differently"))
                continue
            }
            guard let body = value.table else {
                problems.append((path, path, "expected a table ([\(path)]), got \(Scalar(value).described)"))
                continue
            }
            if let definition = transport(name, body, path: path) { transports.append(definition) }
        }
    }

    mutating func parse(routes value: any TOMLValueConvertible) {
        guard let array = value.array else {
            problems.append(("routes", "routes", "expected an array of tables ([[routes]]), got \(Scalar(value).described)"))
            return
        }
        for (index, element) in array.enumerated() {
            let path = "routes[\(index)]"
            guard let body = element.table else {
                problems.append((path, path, "expected a table ([[routes]]), got \(Scalar(element).described)"))
                continue
            }
            if let route = route(body, path: path) { routes.append(route) }
        }
    }

    // MARK: - One transport

    private mutating func transport(_ name: String, _ body: TOMLTable, path: String) -> TransportDefinition? {
        let kinds = TransportKind.allCases.map { TOMLText.quoted($0.rawValue) }.joined(separator: ", ")
        guard let kindValue = body["kind"] else {
            problems.append((path, path, "needs kind = one of \(kinds)"))
            return nil
        }
        guard let kindText = kindValue.string, let kind = TransportKind(rawValue: kindText) else {
            problems.append(("\(path).kind", "\(path).kind", "expected one of \(kinds), got \(Scalar(kindValue).described)"))
            return nil
        }
        var definition = TransportDefinition(name: name, kind: kind)
        let allowed = Self.keys[kind] ?? []
        for (key, value) in body where key != "kind" {
            let keyPath = "\(path).\(key)"
            guard allowed.contains(key) else {
                problems.append((keyPath, keyPath, "not a key of a \(kind.rawValue) transport; its keys are kind, " + allowed.joined(separator: ", ")))
                continue
            }
            do throws(ValueProblem) {
                try store(key, Scalar(value), into: &definition)
            } catch {
                problems.append((keyPath, keyPath, error.message))
            }
        }
        let required: [String] = switch kind {
        case .relay: ["host"]
        case .submission, .submissions: ["host", "credentials"]
        case .socks5: ["proxy"]
        case .maildir: ["path"]
        case .fail: ["code"]
        case .direct: []
        }
        let missing = required.filter { body[$0] == nil }
        guard missing.isEmpty else {
            problems.append((path, path, "a \(kind.rawValue) transport needs " + missing.joined(separator: " and ")))
            return nil
        }
        if kind == .fail {
            if let enhanced = definition.enhanced, enhanced.first != String(definition.code).first {
                problems.append(("\(path).enhanced", "\(path).enhanced", "the class of \(enhanced) does not match the code \(definition.code)"))
            }
            if definition.text.isEmpty { definition.text = "delivery to this destination is not permitted by the configuration" }
        }
        return definition
    }

    private func store(_ key: String, _ value: Scalar, into definition: inout TransportDefinition) throws(ValueProblem) {
        func string() throws(ValueProblem) -> String {
            guard case .string(let text) = value else { throw .wrongType(expected: "a string", got: value) }
            return text
        }
        switch key {
        case "host":
            let text = try string()
            var server = try RelayAddress.parse(text)
            // RelayAddress reads a missing port as 25; submission ports differ.
            let explicitPort = text.hasPrefix("[") ? text.contains("]:") : text.contains(":")
            if !explicitPort { server.port = definition.kind.defaultPort }
            definition.server = server
        case "proxy":
            let text = try string()
            let explicitPort = text.hasPrefix("[") ? text.contains("]:") : text.contains(":")
            guard explicitPort else { throw ValueProblem("\(TOMLText.quoted(text)) needs a port, e.g. \"127.0.0.1:1080\"") }
            definition.proxy = try RelayAddress.parse(text)
        case "tls":
            let text = try string()
            guard let mode = TLSMode(rawValue: text) else {
                let names = TLSMode.allCases.map { TOMLText.quoted($0.rawValue) }.joined(separator: ", ")
                throw ValueProblem("\(TOMLText.quoted(text)) is not one of \(names)")
            }
            definition.tls = mode
        case "credentials", "path", "ca_file":
            let text = try string()
            guard text.hasPrefix("/") else { throw ValueProblem("\(TOMLText.quoted(text)) is not an absolute path") }
            switch key {
            case "path": definition.path = text
            case "ca_file": definition.caFile = text
            default: definition.credentials = text
            }
        case "family":
            let text = try string()
            guard let family = AddressFamily(rawValue: text) else {
                throw ValueProblem("\(TOMLText.quoted(text)) is not one of \"any\", \"ipv4\", \"ipv6\"")
            }
            definition.family = family
        case "bind_ipv4", "bind_ipv6":
            let text = try string()
            let isV6 = key == "bind_ipv6"
            guard IPText.isAddress(text, v6: isV6) else {
                throw ValueProblem("\(TOMLText.quoted(text)) is not an \(isV6 ? "IPv6" : "IPv4") address")
            }
            if isV6 { definition.bindIPv6 = text } else { definition.bindIPv4 = text }
        case "ehlo_name":
            let text = try string()
            try HostName.check(text)
            definition.ehloName = text
        case "code":
            guard case .integer(let code) = value else { throw .wrongType(expected: "an integer", got: value) }
            guard (400...599).contains(code) else { throw ValueProblem("must be an SMTP code from 400 to 599, got \(code)") }
            definition.code = code
        case "enhanced":
            let text = try string()
            guard let code = EnhancedCodeText(text) else {
                throw ValueProblem("\(TOMLText.quoted(text)) is not an enhanced status code such as \"5.7.1\" (RFC 3463)")
            }
            definition.enhanced = code.text
        case "text":
            let text = try string()
            guard !text.isEmpty, text.count <= 400, text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw ValueProblem("must be one line of 1 to 400 printable characters")
            }
            definition.text = text
        default:
            throw ValueProblem("unknown key")
        }
    }

    // MARK: - One route

    private mutating func route(_ body: TOMLTable, path: String) -> Route? {
        guard let transportValue = body["transport"] else {
            problems.append((path, path, "a route needs transport = \"NAME\""))
            return nil
        }
        guard let transport = transportValue.string else {
            problems.append(("\(path).transport", "\(path).transport", "expected a string, got \(Scalar(transportValue).described)"))
            return nil
        }
        var route = Route(transport: transport)
        for (key, value) in body where key != "transport" {
            let keyPath = "\(path).\(key)"
            do throws(ValueProblem) {
                switch key {
                case "sender_domains": route.senderDomains = try Self.domains(value)
                case "recipient_domains": route.recipientDomains = try Self.domains(value)
                case "min_attempts":
                    guard let number = value.int, value.type == .int, number >= 0 else {
                        throw ValueProblem("expected an integer >= 0, got \(Scalar(value).described)")
                    }
                    route.minAttempts = number
                default:
                    throw ValueProblem("not a key of a route; its keys are " + Self.routeKeys.joined(separator: ", "))
                }
            } catch {
                problems.append((keyPath, keyPath, error.message))
            }
        }
        return route
    }

    /// An array of domains, each `example.com` or `.example.com`, to A-labels.
    static func domains(_ value: any TOMLValueConvertible) throws(ValueProblem) -> [DomainPattern] {
        guard let array = value.array else {
            throw ValueProblem("expected an array of domains such as [\"example.com\", \".example.net\"], got \(Scalar(value).described)")
        }
        var patterns: [DomainPattern] = []
        for element in array {
            guard let text = element.string else { throw ValueProblem("expected domain strings, got \(Scalar(element).described)") }
            let subdomains = text.hasPrefix(".")
            let name = subdomains ? String(text.dropFirst()) : text
            let ascii: String
            do {
                ascii = try IDNA.toASCII(name).lowercased()
                try HostName.check(ascii)
            } catch {
                throw ValueProblem("\(TOMLText.quoted(text)) is not a domain")
            }
            patterns.append(DomainPattern(domain: ascii, subdomains: subdomains))
        }
        return patterns
    }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

/// An enhanced status code, `class.subject.detail` (RFC 3463 2): class 4 or 5 here.
struct EnhancedCodeText {
    let text: String

    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "4" || parts[0] == "5",
              parts[1...].allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        self.text = text
    }
}

/// IP address syntax, through inet_pton.
enum IPText {
    static func isAddress(_ text: String, v6: Bool) -> Bool {
        if v6 {
            var address = in6_addr()
            return inet_pton(AF_INET6, text, &address) == 1
        }
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }
}
