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
        let parsed = try parse("-odi -odb -oem -oee -om -v -bm -U -B 8BITMIME -N never -R hdrs -V id -h 5 a@b.example")
        var expected = SendmailArguments()
        expected.verbose = true
        expected.recipients = ["a@b.example"]
        #expect(parsed == expected)
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
