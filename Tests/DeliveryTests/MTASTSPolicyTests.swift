import Testing
@testable import Delivery

/// The MTA-STS policy parser (RFC 8461 3.2) and MX pattern matching (4.1).
struct MTASTSPolicyTests {
    static func parse(_ text: String) throws -> MTASTSPolicy {
        try MTASTSPolicy.parse(Array(text.utf8))
    }

    /// Every field, with CRLF, LF, a missing final line break, trailing spaces and an extension field.
    @Test(arguments: [
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n",
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800",
        "version:STSv1\r\nmode:\tenforce \r\nmx: MAIL.example.com.\r\nmx:  *.example.net\r\nmax_age: 604800\r\nx-future_field.1: anything at all\r\n",
        "mx: mail.example.com\nmax_age: 604800\nmode: enforce\nmx: *.example.net\nversion: STSv1\n",
    ])
    func validPolicies(text: String) throws {
        let policy = try Self.parse(text)
        #expect(policy == MTASTSPolicy(mode: .enforce, mx: ["mail.example.com", "*.example.net"], maxAge: 604800))
    }

    /// Each mode; none needs no mx; max_age is capped at a year.
    @Test func modesAndMaxAge() throws {
        #expect(try Self.parse("version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n").mode == .testing)
        #expect(try Self.parse("version: STSv1\nmode: none\nmax_age: 86400\n") == MTASTSPolicy(mode: .none, mx: [], maxAge: 86400))
        #expect(try Self.parse("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 9999999999\n").maxAge == MTASTSPolicy.maxMaxAge)
    }

    /// Bad lines and missing or repeated fields are refused, whole.
    @Test(arguments: [
        ("", "no version"),
        ("version: STSv2\nmode: enforce\nmx: mx.example.org\nmax_age: 1\n", "not STSv1"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\n", "no max_age"),
        ("version: STSv1\nmx: mx.example.org\nmax_age: 1\n", "no mode"),
        ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
        ("version: STSv1\nmode: enforcing\nmx: mx.example.org\nmax_age: 1\n", "is not enforce, testing or none"),
        ("version: STSv1\nmode: Enforce\nmx: mx.example.org\nmax_age: 1\n", "is not enforce, testing or none"),
        ("version: STSv1\nmode: enforce\nmode: testing\nmx: mx.example.org\nmax_age: 1\n", "mode given twice"),
        ("version: STSv1\nversion: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1\n", "version given twice"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1\nmax_age: 2\n", "max_age given twice"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: -1\n", "not a number of seconds"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 12345678901\n", "not a number of seconds"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1d\n", "not a number of seconds"),
        ("version: STSv1\nmode: enforce\nmx: *.*.example.org\nmax_age: 1\n", "not a host name pattern"),
        ("version: STSv1\nmode: enforce\nmx: mx*.example.org\nmax_age: 1\n", "not a host name pattern"),
        ("version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1\n", "not a host name pattern"),
        ("version: STSv1\nmode: enforce\nmx: mx..example.org\nmax_age: 1\n", "not a host name pattern"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1\nno colon here\n", "line 5: no \"key: value\""),
        ("version: STSv1\nmode: enforce\n\nmx: mx.example.org\nmax_age: 1\n", "line 3: no \"key: value\""),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1\nbad key: x\n", "is not a key"),
        ("version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 1\nnote: a\u{1}b\n", "control character"),
    ])
    func invalidPolicies(text: String, reason: String) {
        #expect {
            try Self.parse(text)
        } throws: { error in
            (error as? MTASTSPolicy.ParseError)?.description.contains(reason) == true
        }
    }

    /// RFC 8461 3.3: a policy over 64 KiB is refused, one just under is read.
    @Test func sizeLimit() throws {
        let head = "version: STSv1\nmode: enforce\nmx: mx.example.org\nmax_age: 86400\nx-pad: "
        let fits = head + String(repeating: "a", count: MTASTSPolicy.maxSize - head.utf8.count - 1) + "\n"
        #expect(fits.utf8.count == MTASTSPolicy.maxSize)
        #expect(try Self.parse(fits).mode == .enforce)
        #expect(throws: MTASTSPolicy.ParseError.self) { try Self.parse(fits + "x") }
        #expect(throws: MTASTSPolicy.ParseError.self) { try MTASTSPolicy.parse([0xFF, 0xFE]) }
    }

    /// A name matches itself; "*." matches exactly one label in front; case and a final dot do not matter.
    @Test(arguments: [
        ("mail.example.com", true), ("MAIL.Example.COM.", true), ("example.com", false), ("mail2.example.com", false),
        ("a.example.net", true), ("b-1.example.net", true), ("example.net", false), ("a.b.example.net", false),
        ("aexample.net", false), ("mail.example.com.evil", false),
    ])
    func mxPatterns(host: String, permitted: Bool) {
        let policy = MTASTSPolicy(mode: .enforce, mx: ["mail.example.com", "*.example.net"], maxAge: 60)
        #expect(policy.permits(host) == permitted)
    }
}
