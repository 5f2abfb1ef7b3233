import Testing
@testable import PosternBase
@testable import PosternCore

struct SendmailArgumentsTests {
    func parse(_ arguments: String) throws -> SendmailArguments {
        try SendmailArguments.parse(arguments.split(separator: " ").map(String.init))
    }

    /// The flags cron, PHP and mail(1) use are understood.
    @Test func commonFlags() throws {
        let parsed = try parse("-t -i -f bounce@x.example -F Cron a@b.example")
        #expect(parsed.extractRecipients)
        #expect(parsed.ignoreDots)
        #expect(parsed.sender == "bounce@x.example")
        #expect(parsed.fullName == "Cron")
        #expect(parsed.recipients == ["a@b.example"])
        #expect(parsed.mode == .deliver)
    }

    /// Values may be attached to their flag; -r is -f; -oi is -i.
    /// --require-tls is Postern's own flag for REQUIRETLS; without it the flag is off.
    @Test func requireTLSFlag() throws {
        #expect(try parse("--require-tls a@b.example").requireTLS)
        #expect(try parse("--require-tls a@b.example").recipients == ["a@b.example"])
        #expect(try !parse("a@b.example").requireTLS)
    }

    @Test func attachedValues() throws {
        let parsed = try parse("-fme@x.example -FName -oi b@c.example")
        #expect(parsed.sender == "me@x.example")
        #expect(parsed.fullName == "Name")
        #expect(parsed.ignoreDots)
        #expect(try parse("-r r@x.example").sender == "r@x.example")
    }

    /// The null sender can be written as <> or as an empty argument.
    @Test func nullSender() throws {
        #expect(try SendmailArguments.parse(["-f", "<>", "a@b"]).sender == "<>")
        #expect(try SendmailArguments.parse(["-f", "", "a@b"]).sender == "")
    }

    /// Legacy flags are accepted and change nothing.
    @Test func ignoredFlags() throws {
        let parsed = try parse("-odi -odb -oem -oee -om -v -bm -U -B 8BITMIME -N never -h 5 a@b.example")
        var expected = SendmailArguments()
        expected.verbose = true
        expected.recipients = ["a@b.example"]
        #expect(parsed == expected)
    }

    /// -R and -V (RFC 3461 RET and ENVID) are kept: RET in either case, the
    /// envelope ID as plain text, stored xtext-encoded as SMTP carries it.
    @Test func dsnReturnAndEnvelopeID() throws {
        let parsed = try SendmailArguments.parse(["-R", "HDRS", "-V", "order 42+x=y", "a@b.example"])
        #expect(parsed.dsnReturn == .hdrs)
        #expect(parsed.envelopeID == "order+2042+2Bx+3Dy")
        #expect(XText.decode(parsed.envelopeID!) == "order 42+x=y")
        #expect(try parse("-Rfull -Vabc a@b").dsnReturn == .full)
        #expect(try parse("-Rfull -Vabc a@b").envelopeID == "abc")
        #expect(try parse("a@b").dsnReturn == nil && parse("a@b").envelopeID == nil)
    }

    /// A RET other than full or hdrs, and an envelope ID with a control
    /// character, a non-ASCII letter or over 100 characters as xtext, are refused.
    @Test(arguments: [["-R", "body"], ["-R", ""], ["-V", "a\r\nb"], ["-V", "a\u{1B}[31m"], ["-V", "caf\u{E9}"], ["-V", ""],
                      ["-V", String(repeating: "=", count: 34)]])
    func badDSNParameters(_ arguments: [String]) {
        #expect(throws: SendmailArguments.UsageError.self) { try SendmailArguments.parse(arguments + ["a@b.example"]) }
    }

    /// xtext (RFC 3461 4): +, = and octets outside 33-126 as +HH, and back.
    @Test func xtext() {
        #expect(XText.encode("a+b=c d\u{7F}é") == "a+2Bb+3Dc+20d+7F+C3+A9")
        #expect(XText.decode("a+2Bb+3Dc+20d+7F+C3+A9") == "a+b=c d\u{7F}é")
        for bad in ["a b", "a=b", "a+", "a+4", "a+GG", "a\u{E9}"] { #expect(XText.decode(bad) == nil, "\(bad)") }
        #expect(EnvelopeIDParameter.problem(inXText: "ok+2Bfine") == nil)
        #expect(EnvelopeIDParameter.problem(inXText: "bad+0A") != nil)
    }

    /// -bp lists the queue, --spool sets the spool, -- ends the flags.
    @Test func modesAndSpool() throws {
        #expect(try parse("-bp").mode == .listQueue)
        #expect(try parse("--spool /s a@b").spool == "/s")
        #expect(try parse("--spool=/t a@b").spool == "/t")
        #expect(try parse("-- -t a@b").recipients == ["-t", "a@b"])
        #expect(try parse("--help").mode == .help)
    }

    /// Unknown or unsupported flags and missing values are usage errors that say which.
    @Test(arguments: ["-x a@b", "-bs", "-bd", "-q", "-f", "-F", "--frobnicate", "-o"])
    func usageErrors(_ line: String) {
        #expect(throws: SendmailArguments.UsageError.self) { try parse(line) }
    }
}
