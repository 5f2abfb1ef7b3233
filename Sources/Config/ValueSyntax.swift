import Foundation
import PosternCore

/// Host names as SMTP needs them (RFC 1123 section 2.1, RFC 5321 section 4.1.2):
/// dot-separated labels of letters, digits and hyphens.
enum HostName {
    /// Throws why `name` is not a host name; returns when it is one.
    static func check(_ name: String) throws(ValueProblem) {
        func bad(_ reason: String) -> ValueProblem {
            ValueProblem("\(TOMLText.quoted(name)) is not a valid host name: \(reason)")
        }
        guard !name.isEmpty else { throw bad("it is empty") }
        guard name.utf8.count <= 253 else { throw bad("it is longer than 253 characters") }
        guard !name.hasSuffix(".") else { throw bad("it ends with a dot") }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw bad("it has an empty label") }
            guard label.utf8.count <= 63 else { throw bad("the label \"\(label)\" is longer than 63 characters") }
            guard label.utf8.allSatisfy(isLDH) else {
                throw bad("only letters, digits, hyphens and dots are allowed")
            }
            guard label.first != "-", label.last != "-" else {
                throw bad("the label \"\(label)\" starts or ends with a hyphen")
            }
        }
        // An A-label must decode to a valid U-label (RFC 5890 2.3.2.1, RFC
        // 5891 5.4): "xn--example" is LDH but names nothing. local.domains,
        // which defaults to the host name, holds its names to the same rule.
        guard (try? IDNA.toASCII(name)) != nil else {
            throw bad("a label is not valid IDNA (an xn-- label must be a valid A-label, RFC 5890 2.3.2.1)")
        }
    }

    private static func isLDH(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

extension RelayAddress {
    /// Parses `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`; `HOST` alone means port 25.
    ///
    /// Brackets are for IPv6 only: Postfix's `[host]` ("no MX lookup") has no
    /// meaning here, since a relay is always connected to directly, and
    /// accepting it silently would suggest that it does.
    static func parse(_ text: String) throws(ValueProblem) -> RelayAddress {
        func bad(_ reason: String) -> ValueProblem {
            ValueProblem("\(TOMLText.quoted(text)) is not a relay address: \(reason) (use HOST, HOST:PORT or [IPv6]:PORT)")
        }
        let host: String
        let portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("the \"[\" is not closed") }
            host = String(text[text.index(after: text.startIndex)..<close])
            guard IPText.isAddress(host, v6: true) else { throw bad("brackets are only for IPv6 addresses, and \"\(host)\" is not one") }
            let rest = text[text.index(after: close)...]
            if rest.isEmpty {
                portText = nil
            } else if rest.hasPrefix(":") {
                portText = rest.dropFirst()
            } else {
                throw bad("unexpected \"\(rest)\" after \"]\"")
            }
        } else {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { throw bad("an IPv6 address needs brackets, e.g. [2001:db8::1]:25") }
            host = String(parts[0])
            portText = parts.count == 2 ? parts[1] : nil
            do throws(ValueProblem) {
                try HostName.check(host)
            } catch {
                throw bad("the host \"\(host)\" is not a host name or IP address")
            }
            let numeric = host.split(separator: ".").allSatisfy { $0.allSatisfy(\.isNumber) }
            if numeric, !IPText.isAddress(host, v6: false) { throw bad("\"\(host)\" is not a valid IPv4 address") }
        }
        guard let portText else { return RelayAddress(host: host, port: 25) }
        guard !portText.isEmpty, portText.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let port = UInt16(portText), port > 0 else {
            throw bad("the port must be a number from 1 to 65535")
        }
        return RelayAddress(host: host, port: port)
    }

}

/// Durations written back as `DurationText` reads them: `7m30s`, `1d12h`, `250ms`.
///
/// `DurationText.short` rounds (`7m`), which would not parse back to the same
/// value; `rendered()` must, so this spells every unit, largest first.
enum DurationSpelling {
    static func text(_ seconds: Double) -> String {
        // Clamped so that the conversion to Int cannot trap; keys accept far less.
        var milliseconds = Int((min(max(0, seconds), 1e12) * 1000).rounded())
        guard milliseconds > 0 else { return "0s" }
        var text = ""
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            let count = milliseconds / size
            if count > 0 { text += "\(count)\(unit)" }
            milliseconds -= count * size
        }
        return text
    }
}

/// TOML source text for values (TOML 1.0, section "String" and "Float").
enum TOMLText {
    /// A basic string with `"`, `\` and control characters escaped.
    static func quoted(_ text: String) -> String {
        QuotedString.quoted(text)
    }

    /// A float that TOML reads back as a float: `2.0`, not `2`.
    static func float(_ number: Double) -> String {
        if number.isNaN { return "nan" }
        if number.isInfinite { return number < 0 ? "-inf" : "inf" }
        let text = "\(number)"
        return text.contains(where: { $0 == "." || $0 == "e" }) ? text : text + ".0"
    }
}

extension RelayAddress {
    /// `IP:PORT` or `[IPv6]:PORT` for something that listens: an address, not
    /// a name, and an explicit port; port 0 (the kernel picks one, logged at
    /// start) serves tests.
    static func listenAddress(_ text: String, example: String) throws(ValueProblem) -> RelayAddress {
        let anyPort = text.hasSuffix(":0")
        var address = try RelayAddress.parse(anyPort ? String(text.dropLast()) + "1" : text)
        if anyPort { address.port = 0 }
        let explicitPort = text.hasPrefix("[") ? text.contains("]:") : text.contains(":")
        guard explicitPort, IPText.isAddress(address.host, v6: false) || IPText.isAddress(address.host, v6: true) else {
            throw ValueProblem("\(TOMLText.quoted(text)) must be an IP address and port, e.g. \"\(example)\"")
        }
        return address
    }
}
