import Testing
@testable import PosternBase
@testable import PosternCore

/// A header field value and the addr-specs it must yield.
struct AddressListCase: Sendable, CustomTestStringConvertible {
    let fieldValue: String
    let expected: [String]
    init(_ fieldValue: String, _ expected: [String]) {
        self.fieldValue = fieldValue
        self.expected = expected
    }
    var testDescription: String { fieldValue.debugDescription }
}

private let listCases: [AddressListCase] = [
    // Bare addr-specs and the trivial lists.
    .init("a@example.org", ["a@example.org"]),
    .init("a@example.org, b@example.net", ["a@example.org", "b@example.net"]),
    .init("", []),
    .init("   ", []),
    // Display names: atoms, quoted strings with escapes and commas, encoded words.
    .init("John Doe <jd@example.org>", ["jd@example.org"]),
    .init("John Q. Public <jqp@example.org>", ["jqp@example.org"]),
    .init("\"Doe, John\" <jd@example.org>, other@example.net", ["jd@example.org", "other@example.net"]),
    .init("\"Say \\\"hi\\\", <x@y>\" <a@example.org>", ["a@example.org"]),
    .init("=?utf-8?q?J=C3=B6rg?= <joerg@example.org>", ["joerg@example.org"]),
    .init("<a@example.org>", ["a@example.org"]),
    .init("Jörg <jörg@bücher.example>", ["jörg@bücher.example"]),
    // Quoted local parts and literals are kept as written.
    .init("\"a,b\"@example.org", ["\"a,b\"@example.org"]),
    .init("Name <\"quoted local\"@example.org>", ["\"quoted local\"@example.org"]),
    .init("a@[192.0.2.1], b@[IPv6:2001:db8::1]", ["a@[192.0.2.1]", "b@[IPv6:2001:db8::1]"]),
    // Groups, including empty ones.
    .init("Team: a@example.org, b@example.net;", ["a@example.org", "b@example.net"]),
    .init("undisclosed-recipients:;", []),
    .init("undisclosed-recipients: ;", []),
    .init("Team: a@example.org;, c@example.com", ["a@example.org", "c@example.com"]),
    .init("x@example.org, Team: Ann <a@example.org>, b@example.net; , y@example.org",
          ["x@example.org", "a@example.org", "b@example.net", "y@example.org"]),
    .init("Empty: , ,;", []),
    // Comments, nested and with quoted-pairs, anywhere; commas in them do not split.
    .init("a@example.org (Doe, John (the (third)))", ["a@example.org"]),
    .init("(lead) a@example.org (trail), b@example.net", ["a@example.org", "b@example.net"]),
    .init("john(comment).doe@example.org", ["john.doe@example.org"]),
    .init("john . doe @ example . org", ["john.doe@example.org"]),
    .init("(a \\) still comment, x@y) a@example.org", ["a@example.org"]),
    .init("Name (c) <a(inside)@example.org>", ["a@example.org"]),
    // Obsolete routes are stripped; their commas do not split.
    .init("<@r1.example,@r2.example:user@host.example>", ["user@host.example"]),
    .init("Bob <@r1.example, ,@r2.example:bob@host.example>, c@x.example",
          ["bob@host.example", "c@x.example"]),
    // Empty list elements are tolerated.
    .init("a@example.org,,b@example.net", ["a@example.org", "b@example.net"]),
    .init(", ,a@example.org,", ["a@example.org"]),
    // Folded values: CR and LF count as white space.
    .init("a@example.org,\r\n b@example.net", ["a@example.org", "b@example.net"]),
]

private let badListCases: [(String, AddressError.ListProblem)] = [
    ("\"unterminated <a@example.org>", .unterminatedQuotedString),
    ("a@example.org (unterminated", .unterminatedComment),
    ("a@example.org (nested (unterminated)", .unterminatedComment),
    ("a@example.org)", .unmatchedClosingParenthesis),
    ("a@[192.0.2.1", .unterminatedDomainLiteral),
    ("a@192.0.2.1]", .unmatchedClosingBracket),
    ("John <a@example.org", .unterminatedAngleAddress),
    ("a@example.org>", .unmatchedClosingAngleBracket),
    ("<>", .emptyAngleAddress),
    ("<@route.example>", .badRoute),
    ("<@route.example", .unterminatedAngleAddress),
    ("<a,b@example.org>", .unexpectedInAngleAddress(",")),
    ("<a<b@example.org>", .unexpectedInAngleAddress("<")),
    ("Team: a@example.org", .unterminatedGroup),
    ("Team: a@example.org, b@example.net", .unterminatedGroup),
    ("A: B: c@example.org;;", .nestedGroup),
    ("a@example.org;", .unexpectedSemicolon),
    ("<a@example.org> junk", .unexpectedText("junk")),
    ("<a@example.org> <b@example.org>", .unexpectedText("<")),
    ("John Doe", .missingAngleBrackets("John Doe")),
    ("John Doe a@example.org", .missingAngleBrackets("John Doe a @ example . org")),
]

/// Each address-list construct (names, groups, comments, routes, empty elements) yields the expected addr-specs.
@Test(arguments: listCases)
func addressListExtracts(_ testCase: AddressListCase) throws {
    #expect(try AddressList.addresses(in: testCase.fieldValue) == testCase.expected)
}

/// Unbalanced quotes/parens/brackets, broken groups and stray text are refused with the precise reason.
@Test(arguments: badListCases)
func malformedAddressListIsRefused(_ fieldValue: String, _ problem: AddressError.ListProblem) {
    #expect(throws: AddressError.badAddressList(fieldValue: fieldValue, reason: problem)) {
        try AddressList.addresses(in: fieldValue)
    }
}

/// Every extracted addr-spec is accepted by MailboxAddress, as the spooler chains the two.
@Test(arguments: listCases)
func extractedAddressesParseAsMailboxes(_ testCase: AddressListCase) throws {
    for spec in try AddressList.addresses(in: testCase.fieldValue) {
        _ = try MailboxAddress(parsing: spec)
    }
}

/// A NUL smuggled into a header address survives extraction and is then refused by MailboxAddress.
@Test func controlCharactersSurviveExtractionAndAreRefused() throws {
    let specs = try AddressList.addresses(in: "Eve <eve@example.org\u{0}RCPT>")
    #expect(specs == ["eve@example.org\u{0}RCPT"])
    #expect(throws: AddressError.controlCharacter(address: specs[0], position: 15, character: "\0")) {
        try MailboxAddress(parsing: specs[0])
    }
}

/// The list error message quotes the field value on one line.
@Test func listErrorDescriptionQuotesTheValue() {
    let error = AddressError.badAddressList(fieldValue: "Team: a@x\r\n", reason: .unterminatedGroup)
    #expect(error.description
        == #"The address list "Team: a@x\r\n" cannot be parsed: a group is never closed by ";"."#)
}
