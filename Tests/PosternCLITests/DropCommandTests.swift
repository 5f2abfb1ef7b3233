import Foundation
import Glibc
import PosternTesting
import Testing
@testable import Spool

/// The real binary, as cron, PHP and scripts call it.
struct DropCommandTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func drop(_ arguments: [String], _ input: String, program: String? = nil,
              environment: [String: String] = [:]) throws -> PosternProcess.Result {
        let spoolArguments = ["--spool", spool.layout.root]
        let full = program == nil ? ["drop"] + spoolArguments + arguments : spoolArguments + arguments
        return try PosternProcess.run(full, input: Data(input.utf8), environment: environment, program: program)
    }

    /// A drop prints nothing and exits 0; -v prints the queue ID, which names the drop.
    @Test func quietSuccessAndVerbose() throws {
        let quiet = try drop(["bob@example.net"], "Subject: a\n\nx\n")
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty)
        let verbose = try drop(["-v", "bob@example.net"], "Subject: b\n\nx\n")
        let id = verbose.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(verbose.status == 0)
        #expect(try spool.names(.drop).contains(id))
        #expect(try spool.names(.drop).count == 2)
    }

    /// Invoked through a link named sendmail, with the flags cron uses, it drops the same way.
    @Test func sendmailName() throws {
        let result = try drop(["-t", "-oi", "-odi", "-oem", "-f", "cron@example.org", "-F", "Cron Daemon"],
                              "To: root@example.org\nSubject: cron\n\n.\nline\n", program: "sendmail")
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try spool.names(.drop).first)
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.sender == "cron@example.org")
        #expect(envelope.recipients.map(\.address) == ["root@example.org"])
        let message = String(decoding: try spool.read("drop/\(id)/message"), as: UTF8.self)
        #expect(message.contains("\r\n\r\n.\r\nline\r\n"))
        #expect(message.contains("\r\nFrom: Cron Daemon <cron@example.org>\r\n"))
    }

    /// -R and -V (RFC 3461 RET and ENVID) reach the envelope, the ENVID as
    /// xtext; a bad one is a usage error (64) that leaves nothing.
    @Test func dsnReturnAndEnvelopeID() throws {
        let result = try drop(["-R", "hdrs", "-V", "job 7+1", "bob@example.net"], "Subject: x\n\nx\n", program: "sendmail")
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try spool.names(.drop).first)
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.dsnReturn == .hdrs && envelope.envelopeID == "job+207+2B1")
        for bad in [["-R", "all"], ["-V", "id\nX-Evil: 1"]] {
            let refused = try drop(bad + ["bob@example.net"], "x\n")
            #expect(refused.status == 64 && refused.stderr.contains(bad[0]), "\(refused.stderr)")
        }
        #expect(try spool.names(.drop) == [id])
    }

    /// 'postern sendmail' is an alias of 'postern drop'.
    @Test func sendmailSubcommand() throws {
        let result = try PosternProcess.run(["sendmail", "--spool", spool.layout.root, "bob@example.net"], input: Data("x\n".utf8))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try spool.names(.drop).count == 1)
    }

    /// Without -f the sender is the invoking user at POSTERN_HOSTNAME.
    @Test func defaultSender() throws {
        #expect(try drop(["bob@example.net"], "x\n").status == 0)
        let id = try #require(try spool.names(.drop).first)
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        let user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        #expect(envelope.sender == "\(user)@test.example")
        #expect(envelope.uid == Int(getuid()))
    }

    /// Issue #19: `sendmail root`, `-f cron` and `To: root` are this host's
    /// (POSTERN_HOSTNAME here), as Postfix appends $myorigin; a bad local part
    /// is refused without a domain as with one.
    @Test func bareLocalPartsAreCompletedWithTheHostName() throws {
        let result = try drop(["-t", "-f", "cron", "root", "Bob@example.net"], "To: admin, \"john doe\"\nSubject: x\n\nx\n")
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try spool.names(.drop).first)
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.sender == "cron@test.example")
        #expect(envelope.recipients.map(\.address) == ["root@test.example", "Bob@example.net", "admin@test.example", "\"john doe\"@test.example"])

        let bad = try drop(["root."], "x\n")
        #expect(bad.status == 65 && bad.stderr.contains("bad recipient") && bad.stderr.contains("root.@test.example"), "\(bad.stderr)")
    }

    /// Each kind of bad input gets its sysexits status, one clear line on stderr, and leaves nothing.
    @Test(arguments: [
        (["-x", "a@b.example"], "x\n", 64, "unknown option -x"),
        (["bad address"], "x\n", 65, "bad recipient"),
        (["a@b.example\r\nRCPT TO:<c@d.example>"], "x\n", 65, "bad recipient"),
        (["-f", "evil\n@x.example", "a@b.example"], "x\n", 65, "bad sender"),
        ([], "Subject: x\n\nx\n", 65, "no recipients"),
        (["-t"], "Subject: no to\n\nx\n", 65, "no recipients"),
        (["a@b.example"], "", 66, "empty message"),
        (["a@b.example"], "Subject: x\n\nnul\u{0}here\n", 65, "NUL"),
        (["a@b.example"], "Subject: x\n\n" + String(repeating: "y", count: 1200) + "\n", 65, "longer than 998"),
    ])
    func badInput(_ arguments: [String], _ input: String, _ status: Int32, _ words: String) throws {
        let result = try drop(arguments, input)
        #expect(result.status == status)
        #expect(result.stderr.contains(words), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(try spool.names(.drop).isEmpty)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// The size limit from the environment is enforced.
    @Test func sizeLimit() throws {
        let result = try drop(["a@b.example"], String(repeating: "z", count: 900) + "\n" + String(repeating: "z\n", count: 200),
                              environment: ["POSTERN_MESSAGE_SIZE_LIMIT": "1000"])
        #expect(result.status == 65)
        #expect(result.stderr.contains("larger than the limit of 1000"))
    }

    /// A missing spool is EX_CANTCREAT; an unwritable one is EX_NOPERM for an unprivileged user.
    @Test func spoolProblems() throws {
        let missing = try PosternProcess.run(["drop", "--spool", spool.directory + "/none", "a@b.example"], input: Data("x\n".utf8))
        #expect(missing.status == 73)
        #expect(missing.stderr.contains("does not exist"))
        let other = try PosternProcess.run(["drop", "--spool", spool.directory, "a@b.example"], input: Data("x\n".utf8))
        #expect(other.status == 73)
        #expect(other.stderr.contains("not a Postern spool"))
    }

    /// A 50 MiB message from a file goes through the real binary intact (SubmitterTests proves it is streamed).
    @Test func largeMessageStreams() throws {
        let input = spool.directory + "/big"
        _ = FileManager.default.createFile(atPath: input, contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: input))
        try handle.write(contentsOf: Data("Subject: big\n\n".utf8))
        let line = Data((String(repeating: "0123456789", count: 7) + "\n").utf8)
        let block = Data((0..<1024).flatMap { _ in line })
        for _ in 0..<(50 << 20) / block.count { try handle.write(contentsOf: block) }
        try handle.close()
        let result = try PosternProcess.run(["drop", "--spool", spool.layout.root, "a@b.example"], inputFile: input)
        #expect(result.status == 0, "\(result.stderr)")
        let id = try #require(try spool.names(.drop).first)
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.size > 50 << 20)
        #expect(envelope.size == Int(try FileManager.default.attributesOfItem(atPath: spool.layout.path(.drop, envelope.id) + "/message")[.size] as! UInt64))
    }
}

extension DropCommandTests {
    /// The configuration file's hostname and drop.max_message_size apply to drops; a bad value of
    /// theirs is EX_CONFIG. The rest of the file is the daemon's (`postern config check` validates it).
    @Test func readsConfiguration() throws {
        let config = spool.directory + "/postern.toml"
        try Data("hostname = \"cfg.example\"\n[drop]\nmax_message_size = 500\n".utf8).write(to: URL(fileURLWithPath: config))
        let environment = ["POSTERN_CONFIG": config, "POSTERN_HOSTNAME": ""]
        let ok = try drop(["a@b.example"], "x\n", environment: environment)
        #expect(ok.status == 0, "\(ok.stderr)")
        let id = try #require(try spool.names(.drop).first)
        #expect(try Envelope.decode(try spool.read("drop/\(id)/envelope.json")).sender?.hasSuffix("@cfg.example") == true)
        let big = try drop(["a@b.example"], String(repeating: "y\n", count: 400), environment: environment)
        #expect(big.status == 65 && big.stderr.contains("limit of 500"))
        try Data("[queue]\nbogus = 1\n[drop]\nmax_message_size = -1\n".utf8).write(to: URL(fileURLWithPath: config))
        let bad = try drop(["a@b.example"], "x\n", environment: environment)
        #expect(bad.status == 78 && bad.stderr.contains("line 4: drop.max_message_size: expected an integer of at least 1"))
        #expect(!bad.stderr.contains("queue.bogus"))
    }
}
