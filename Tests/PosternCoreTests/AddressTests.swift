import Testing
@testable import PosternBase
@testable import PosternCore

/// One address that must be accepted, and what parsing it must produce.
struct ValidAddressCase: Sendable, CustomTestStringConvertible {
    let input: String
    let smtpForm: String
    let localPart: String
    let routingDomain: String
    let requiresSMTPUTF8: Bool

    init(_ input: String, smtpForm: String? = nil, localPart: String, routingDomain: String,
         utf8: Bool = false) {
        self.input = input
        self.smtpForm = smtpForm ?? input
        self.localPart = localPart
        self.routingDomain = routingDomain
        self.requiresSMTPUTF8 = utf8
    }

    var testDescription: String { input.debugDescription }
}

/// One address that must be refused, with the exact error.
struct InvalidAddressCase: Sendable, CustomTestStringConvertible {
    let input: String
    let expected: AddressError

    init(_ input: String, _ expected: (String) -> AddressError) {
        self.input = input
        self.expected = expected(input)
    }

    var testDescription: String { input.debugDescription }
}

private func repeated(_ character: Character, _ count: Int) -> String {
    String(repeating: character, count: count)
}

private let validAddresses: [ValidAddressCase] = [
    .init("user@example.org", localPart: "user", routingDomain: "example.org"),
    .init("first.last@example.org", localPart: "first.last", routingDomain: "example.org"),
    .init("user+tag@example.org", localPart: "user+tag", routingDomain: "example.org"),
    .init("!#$%&'*+/=?^_`{|}~-@example.org", localPart: "!#$%&'*+/=?^_`{|}~-", routingDomain: "example.org"),
    .init("\"john doe\"@example.org", localPart: "\"john doe\"", routingDomain: "example.org"),
    .init("\"say \\\"hi\\\"\"@example.org", localPart: "\"say \\\"hi\\\"\"", routingDomain: "example.org"),
    .init("\"a@b\"@example.org", localPart: "\"a@b\"", routingDomain: "example.org"),
    .init("\"a..b.\"@example.org", localPart: "\"a..b.\"", routingDomain: "example.org"),
    .init("\"\"@example.org", localPart: "\"\"", routingDomain: "example.org"),
    .init("user@bücher.example", smtpForm: "user@xn--bcher-kva.example", localPart: "user",
          routingDomain: "xn--bcher-kva.example"),
    .init("user@例え.テスト", smtpForm: "user@xn--r8jz45g.xn--zckzah", localPart: "user",
          routingDomain: "xn--r8jz45g.xn--zckzah"),
    .init("jörg@example.org", localPart: "jörg", routingDomain: "example.org", utf8: true),
    .init("用户@例え.テスト", smtpForm: "用户@xn--r8jz45g.xn--zckzah", localPart: "用户",
          routingDomain: "xn--r8jz45g.xn--zckzah", utf8: true),
    .init("\"jö rg\"@example.org", localPart: "\"jö rg\"", routingDomain: "example.org", utf8: true),
    .init("postmaster@[192.0.2.1]", localPart: "postmaster", routingDomain: "192.0.2.1"),
    .init("postmaster@[0.0.0.0]", localPart: "postmaster", routingDomain: "0.0.0.0"),
    .init("postmaster@[IPv6:2001:db8::1]", localPart: "postmaster", routingDomain: "2001:db8::1"),
    .init("postmaster@[ipv6:2001:DB8::1]", smtpForm: "postmaster@[IPv6:2001:db8::1]",
          localPart: "postmaster", routingDomain: "2001:db8::1"),
    .init("postmaster@[IPv6:::ffff:192.0.2.1]", localPart: "postmaster", routingDomain: "::ffff:192.0.2.1"),
    .init("root@localhost", localPart: "root", routingDomain: "localhost"),
    .init("User@EXAMPLE.Org", smtpForm: "User@example.org", localPart: "User", routingDomain: "example.org"),
    .init("a@xn--bcher-kva.example", localPart: "a", routingDomain: "xn--bcher-kva.example"),
    .init("a@a-b.1.example", localPart: "a", routingDomain: "a-b.1.example"),
    .init("\(repeated("a", 64))@example.org", localPart: repeated("a", 64), routingDomain: "example.org"),
    .init("a@\(repeated("b", 63)).example", localPart: "a", routingDomain: "\(repeated("b", 63)).example"),
    .init("\(repeated("a", 63))@\(repeated("b", 63)).\(repeated("c", 63)).\(repeated("d", 62))",
          localPart: repeated("a", 63),
          routingDomain: "\(repeated("b", 63)).\(repeated("c", 63)).\(repeated("d", 62))"),
]

/// 256 octets: labels of 63, 63, 63, 62 and 1 octets with four dots.
private let domain256 = "\(repeated("a", 63)).\(repeated("b", 63)).\(repeated("c", 63)).\(repeated("d", 62)).e"
/// 190 octets, so that a 64-octet local part makes a 255-octet path.
private let domain190 = "\(repeated("a", 63)).\(repeated("b", 63)).\(repeated("c", 62))"

private let invalidAddresses: [InvalidAddressCase] = [
    .init("") { _ in .empty },
    .init("a@b\r\nRCPT TO:<c@d>") { .controlCharacter(address: $0, position: 3, character: "\r") },
    .init("a\n@example.org") { .controlCharacter(address: $0, position: 1, character: "\n") },
    .init("a\0b@example.org") { .controlCharacter(address: $0, position: 1, character: "\0") },
    .init("a\tb@example.org") { .controlCharacter(address: $0, position: 1, character: "\t") },
    .init("a\u{7F}@example.org") { .controlCharacter(address: $0, position: 1, character: "\u{7F}") },
    .init("a\u{85}@example.org") { .controlCharacter(address: $0, position: 1, character: "\u{85}") },
    .init("\"a\r\"@example.org") { .controlCharacter(address: $0, position: 2, character: "\r") },
    .init("\"a\\\u{1}\"@example.org") { .controlCharacter(address: $0, position: 3, character: "\u{1}") },
    .init("userexample.org") { .missingAt(address: $0) },
    .init("\"user\"") { .missingAt(address: $0) },
    .init("a@b@example.org") { .extraAt(address: $0) },
    .init("\"a\"@b@example.org") { .extraAt(address: $0) },
    .init("@example.org") { .badLocalPart(address: $0, reason: .empty) },
    .init(".a@example.org") { .badLocalPart(address: $0, reason: .leadingDot) },
    .init("a.@example.org") { .badLocalPart(address: $0, reason: .trailingDot) },
    .init("a..b@example.org") { .badLocalPart(address: $0, reason: .consecutiveDots) },
    .init("a b@example.org") { .badLocalPart(address: $0, reason: .invalidCharacter(" ")) },
    .init("<a@example.org>") { .badLocalPart(address: $0, reason: .invalidCharacter("<")) },
    .init("a(x)@example.org") { .badLocalPart(address: $0, reason: .invalidCharacter("(")) },
    .init("a\"b\"@example.org") { .badLocalPart(address: $0, reason: .invalidCharacter("\"")) },
    .init("\"abc@example.org") { .badLocalPart(address: $0, reason: .unterminatedQuotedString) },
    .init("\"abc\\\"@example.org") { .badLocalPart(address: $0, reason: .unterminatedQuotedString) },
    .init("\"a\"b@example.org") { .badLocalPart(address: $0, reason: .textAfterQuotedString) },
    .init("\"a\\é\"@example.org") { .badLocalPart(address: $0, reason: .invalidQuotedPair("é")) },
    .init("\(repeated("a", 65))@example.org") { .localPartTooLong(address: $0, octets: 65) },
    .init("\(repeated("ü", 33))@example.org") { .localPartTooLong(address: $0, octets: 66) },
    .init("a@") { .missingDomain(address: $0) },
    .init("a@\(repeated("b", 64)).example") {
        .badDomainLabel(address: $0, label: repeated("b", 64), reason: .tooLong(octets: 64))
    },
    .init("a@\(domain256)") { .domainTooLong(address: $0, octets: 256) },
    .init("\(repeated("a", 64))@\(domain190)") { .pathTooLong(address: $0, octets: 255) },
    .init("a@\(repeated("b", 2000))") { .pathTooLong(address: $0, octets: 2002) },
    .init("a@-foo.example") { .badDomainLabel(address: $0, label: "-foo", reason: .leadingHyphen) },
    .init("a@foo-.example") { .badDomainLabel(address: $0, label: "foo-", reason: .trailingHyphen) },
    .init("a@foo_bar.example") { .badDomainLabel(address: $0, label: "foo_bar", reason: .invalidCharacter("_")) },
    .init("a@exa mple.org") { .badDomainLabel(address: $0, label: "exa mple", reason: .invalidCharacter(" ")) },
    .init("a@☃.example") { .badDomainLabel(address: $0, label: "☃", reason: .invalidCharacter("☃")) },
    .init("a@example.org.") { .badDomainLabel(address: $0, label: "", reason: .trailingDot) },
    .init("a@.example.org") { .badDomainLabel(address: $0, label: "", reason: .empty) },
    .init("a@example..org") { .badDomainLabel(address: $0, label: "", reason: .empty) },
    .init("a@[300.1.1.1]") { .badAddressLiteral(address: $0, reason: .invalidIPv4("300.1.1.1")) },
    .init("a@[01.2.3.4]") { .badAddressLiteral(address: $0, reason: .invalidIPv4("01.2.3.4")) },
    .init("a@[1.2.3]") { .badAddressLiteral(address: $0, reason: .invalidIPv4("1.2.3")) },
    .init("a@[1.2.3.4.5]") { .badAddressLiteral(address: $0, reason: .invalidIPv4("1.2.3.4.5")) },
    .init("a@[1.2.3.4") { .badAddressLiteral(address: $0, reason: .unterminated) },
    .init("a@[1.2.3.4]x") { .badAddressLiteral(address: $0, reason: .unterminated) },
    .init("a@[]") { .badAddressLiteral(address: $0, reason: .empty) },
    .init("a@[IPv6:zz::1]") { .badAddressLiteral(address: $0, reason: .invalidIPv6("zz::1")) },
    .init("a@[IPv6:2001:db8::1%eth0]") {
        .badAddressLiteral(address: $0, reason: .invalidIPv6("2001:db8::1%eth0"))
    },
    .init("a@[x400:c=us;a=x]") { .badAddressLiteral(address: $0, reason: .unsupportedTag("x400")) },
]

/// Valid mailboxes parse to the expected local part, SMTP form, routing domain and SMTPUTF8 flag.
@Test(arguments: validAddresses)
func validAddressParses(_ testCase: ValidAddressCase) throws {
    let address = try MailboxAddress(parsing: testCase.input)
    #expect(address.smtpForm == testCase.smtpForm)
    #expect(address.description == testCase.smtpForm)
    #expect(address.localPart == testCase.localPart)
    #expect(address.routingDomain == testCase.routingDomain)
    #expect(address.requiresSMTPUTF8 == testCase.requiresSMTPUTF8)
    // The spool form must itself parse back to the same address.
    #expect(try MailboxAddress(parsing: address.smtpForm) == address)
}

/// Malformed mailboxes (injection, length limits, syntax, literals) are refused with the exact error.
@Test(arguments: invalidAddresses)
func invalidAddressIsRefused(_ testCase: InvalidAddressCase) {
    #expect(throws: testCase.expected) { try MailboxAddress(parsing: testCase.input) }
}

/// Every refusal message is one line without raw control characters, safe for stderr.
@Test(arguments: invalidAddresses)
func errorDescriptionIsOneSafeLine(_ testCase: InvalidAddressCase) {
    let text = testCase.expected.description
    #expect(!text.isEmpty)
    #expect(!text.unicodeScalars.contains { MailboxAddress.isControl($0) })
    #expect(text.hasSuffix("."))
}

/// The CRLF-injection message names the address with \r and \n escaped and gives the position.
@Test func controlCharacterDescriptionIsEscaped() {
    let error = AddressError.controlCharacter(address: "a@b\r\nRCPT TO:<c@d>", position: 3, character: "\r")
    #expect(error.description == #"Address "a@b\r\nRCPT TO:<c@d>" contains the control character "\r" (U+000D) "#
        + "at position 3; control characters are never allowed.")
}

/// Messages quote the address, escape quotes, backslashes and bidi controls, and cut long input.
@Test func descriptionsNameTheAddress() {
    #expect(AddressError.missingAt(address: "userexample.org").description
        == #"Address "userexample.org" has no "@" between a local part and a domain."#)
    #expect(AddressError.extraAt(address: #""a\"b"@c@d"#).description
        == #"Address "\"a\\\"b\"@c@d" contains more than one "@" outside quotes."#)
    let long = AddressError.pathTooLong(address: repeated("x", 500), octets: 500).description
    #expect(long.contains("\"… (cut)"))
    #expect(long.count < 400)
    #expect(AddressError.render("bidi\u{202E}x") == #""bidi\u{202E}x""#)
}

/// The host keeps A-label and Unicode forms of an IDN domain; ASCII domains have no Unicode form.
@Test func hostKeepsALabelAndUnicodeForms() throws {
    #expect(try MailboxAddress(parsing: "a@Bücher.Example").host
        == .domain(aLabel: "xn--bcher-kva.example", unicode: "bücher.example"))
    #expect(try MailboxAddress(parsing: "a@xn--bcher-kva.example").host
        == .domain(aLabel: "xn--bcher-kva.example", unicode: "bücher.example"))
    #expect(try MailboxAddress(parsing: "a@Example.ORG").host == .domain(aLabel: "example.org", unicode: nil))
    #expect(try MailboxAddress(parsing: "a@[192.0.2.1]").host == .ipv4("192.0.2.1"))
    #expect(try MailboxAddress(parsing: "a@[IPv6:2001:DB8::1]").host == .ipv6("2001:db8::1"))
}

/// Equality follows RFC 5321 2.4: domain case (and U-/A-label form) is ignored, local part case is not.
@Test func equalityNormalizesDomainOnly() throws {
    let lower = try MailboxAddress(parsing: "User@example.org")
    #expect(try MailboxAddress(parsing: "User@EXAMPLE.org") == lower)
    #expect(try MailboxAddress(parsing: "User@bücher.example") == MailboxAddress(parsing: "User@xn--bcher-kva.example"))
    #expect(try MailboxAddress(parsing: "user@example.org") != lower)
    #expect(Set([lower, try MailboxAddress(parsing: "User@Example.Org")]).count == 1)
}

/// Issue #19: a bare local part is completed with this host's name, and validated as any other.
@Test func bareLocalPartIsCompleted() throws {
    #expect(try MailboxAddress(parsing: "root", completingWith: "vm").smtpForm == "root@vm")
    #expect(try MailboxAddress(parsing: "\"john doe\"", completingWith: "vm").smtpForm == "\"john doe\"@vm")
    #expect(try MailboxAddress(parsing: "bob@example.net", completingWith: "vm").smtpForm == "bob@example.net")
    #expect(throws: AddressError.missingDomain(address: "bob@")) { try MailboxAddress(parsing: "bob@", completingWith: "vm") }
    #expect(throws: AddressError.self) { try MailboxAddress(parsing: "root\r\nRCPT TO:<x@y>", completingWith: "vm") }
    #expect(throws: AddressError.badLocalPart(address: "a..b@vm", reason: .consecutiveDots)) {
        try MailboxAddress(parsing: "a..b", completingWith: "vm")
    }
}
