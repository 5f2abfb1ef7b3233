import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Drops through `Submitter` in-process, with the input in a file.
struct SubmitterTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func submission(_ recipients: [String] = ["bob@example.net"], sender: String? = "alice@example.org") throws -> Submission {
        Submission(sender: try sender.map { try MailboxAddress(parsing: $0) },
                   recipients: try recipients.map { try MailboxAddress(parsing: $0) },
                   hostname: "host.example", maxSize: 1 << 20, uid: Int(getuid()))
    }

    func drop(_ input: [UInt8], _ submission: Submission, fileSystem: (any FileSystem)? = nil) throws -> (envelope: Envelope, message: String) {
        let path = spool.directory + "/input-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: path, contents: Data(input))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var submitter = Submitter(layout: spool.layout)
        if let fileSystem { submitter.fileSystem = fileSystem }
        let id = try submitter.submit(submission, input: fd)
        let directory = MessageDirectory(path: spool.layout.path(.drop, id))
        // The drop must pass the scanner's own checks.
        let envelope = try directory.load(id: id, trustedOwners: [0, getuid()])
        let message = try String(decoding: Data(contentsOf: URL(fileURLWithPath: directory.path + "/message")), as: UTF8.self)
        return (envelope, message)
    }

    func drop(_ text: String, _ submission: Submission) throws -> (envelope: Envelope, message: String) {
        try drop(Array(text.utf8), submission)
    }

    /// A plain message arrives in drop/ with CRLF endings, added headers and a complete envelope.
    @Test func plainDrop() throws {
        let (envelope, message) = try drop("Subject: hi\n\nhello\nworld\n", submission())
        #expect(message.hasPrefix("Subject: hi\r\nFrom: alice@example.org\r\nDate: "))
        #expect(message.contains("\r\nMessage-ID: <\(envelope.id)@host.example>\r\n\r\nhello\r\nworld\r\n"))
        #expect(!message.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(envelope.sender == "alice@example.org")
        #expect(envelope.recipients.map(\.address) == ["bob@example.net"])
        #expect(envelope.size == message.utf8.count)
        #expect(envelope.messageID == "\(envelope.id)@host.example")
        #expect(!envelope.eightBit && !envelope.smtputf8)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// Bare CR, bare LF and mixed endings all become CRLF.
    @Test func normalizesLineEndings() throws {
        let (_, message) = try drop("Subject: x\r\n\r\na\rb\nc\r\nd", submission())
        #expect(message.hasSuffix("\r\n\r\na\r\nb\r\nc\r\nd\r\n"))
    }

    /// Without -i a lone dot ends the message; with -i it is content.
    @Test func dotTermination() throws {
        let (_, ended) = try drop("Subject: x\n\nbefore\n.\nafter\n", submission())
        #expect(ended.hasSuffix("\r\n\r\nbefore\r\n"))
        var keep = try submission()
        keep.ignoreDots = true
        let (_, kept) = try drop("Subject: x\n\nbefore\n.\nafter\n", keep)
        #expect(kept.hasSuffix("\r\n\r\nbefore\r\n.\r\nafter\r\n"))
    }

    /// -t takes recipients from the headers, adds them to the arguments' and removes Bcc.
    @Test func extractRecipients() throws {
        var request = try submission(["first@example.net"])
        request.extractRecipients = true
        let (envelope, message) = try drop("To: A <a@x.example>, first@example.net\nBcc: secret@y.example\nSubject: s\n\nbody\n", request)
        #expect(envelope.recipients.map(\.address) == ["first@example.net", "a@x.example", "secret@y.example"])
        #expect(!message.contains("secret"))
        #expect(!message.contains("Bcc"))
    }

    /// 8-bit bodies are flagged; a UTF-8 local part needs SMTPUTF8; IDN domains are stored as A-labels.
    @Test func flags() throws {
        let (eight, _) = try drop("Subject: x\n\ncafé\n", submission())
        #expect(eight.eightBit && !eight.smtputf8)
        let (idn, _) = try drop("Subject: x\n\nplain\n", submission(["anna@bücher.example"]))
        #expect(idn.recipients[0].address == "anna@xn--bcher-kva.example")
        #expect(!idn.smtputf8)
        let (utf8, _) = try drop("Subject: x\n\nplain\n", submission(["jürgen@example.de"]))
        #expect(utf8.smtputf8)
    }

    /// "TLS-Required: No" sets REQUIRETLS to an explicit no (RFC 8689 5); otherwise it is unset.
    @Test func tlsRequiredHeader() throws {
        #expect(try drop("TLS-Required: No\n\nx\n", submission()).envelope.requireTLS == false)
        #expect(try drop("Subject: x\n\nx\n", submission()).envelope.requireTLS == nil)
    }

    /// --require-tls sets REQUIRETLS, and outweighs a "TLS-Required: No" header (RFC 8689 5); the header stays as written.
    @Test func requireTLSOption() throws {
        var required = try submission()
        required.requireTLS = true
        #expect(try drop("Subject: x\n\nx\n", required).envelope.requireTLS == true)
        let (envelope, message) = try drop("TLS-Required: No\n\nx\n", required)
        #expect(envelope.requireTLS == true)
        #expect(message.contains("TLS-Required: No\r\n"))
    }

    /// The submitter's own Message-ID goes into the envelope when it is a valid
    /// msg-id (comments and folding around it ignored) and is left out when it is
    /// not, so an odd header never makes an envelope the scanner would refuse.
    @Test(arguments: [
        ("Message-ID: <abc@x.example>", "abc@x.example"),
        ("Message-ID: <abc@x.example> (the first)", "abc@x.example"),
        ("Message-ID:\n\t<abc@x.example>", "abc@x.example"),
        ("Message-ID: abc@x.example ", "abc@x.example"),
        ("Message-ID: garbage", nil),
        ("Message-ID: <a b@x.example>", nil),
        ("Message-ID: <a\u{1B}[31m@x.example>", nil),
        ("Message-ID: <", nil),
    ] as [(String, String?)])
    func submittedMessageID(_ header: String, _ expected: String?) throws {
        let (envelope, message) = try drop("\(header)\nSubject: x\n\nbody\n", submission())
        #expect(envelope.messageID == expected)
        #expect(!message.contains("@host.example>"))   // the submitter's header is kept, none added
    }

    /// The null sender is stored as an empty sender and a generated From names MAILER-DAEMON.
    @Test func nullSender() throws {
        let (envelope, message) = try drop("Subject: x\n\nx\n", submission(sender: nil))
        #expect(envelope.sender == nil)
        #expect(message.contains("From: MAILER-DAEMON@host.example\r\n"))
    }

    /// A line over 998 octets refuses the message with a data error and leaves nothing behind.
    @Test func overlongLine() throws {
        let long = String(repeating: "x", count: 999)
        #expect {
            try drop("Subject: x\n\nok\n\(long)\n", submission())
        } throws: { error in
            (error as? SpoolError)?.status == .dataError && "\(error)".contains("line 4 is longer than 998")
        }
        #expect(try spool.names(.drop).isEmpty)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// Bad input is refused with the right status and leaves neither a drop nor a temporary entry.
    @Test(arguments: [
        ("", PosternCore.ExitStatus.noInput, "empty"),
        ("Subject: x\n\na\0b\n", PosternCore.ExitStatus.dataError, "NUL"),
        ("To: <broken\n\nx\n", PosternCore.ExitStatus.dataError, "recipient"),
    ])
    func badInput(_ input: String, _ status: PosternCore.ExitStatus, _ words: String) throws {
        var request = try submission()
        request.extractRecipients = true
        #expect {
            try drop(input, request)
        } throws: { error in
            (error as? SpoolError)?.status == status && "\(error)".contains(words)
        }
        #expect(try spool.names(.drop).isEmpty)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// No recipients at all is a data error.
    @Test func noRecipients() throws {
        #expect {
            try drop("Subject: x\n\nx\n", submission([]))
        } throws: { error in
            (error as? SpoolError)?.status == .dataError && "\(error)".contains("no recipients")
        }
        #expect(try spool.names(.drop).isEmpty)
    }

    /// A message over the size limit is refused and removed.
    @Test func sizeLimit() throws {
        var request = try submission()
        request.maxSize = 1000
        #expect {
            try drop("Subject: x\n\n" + String(repeating: "0123456789\n", count: 200), request)
        } throws: { error in
            (error as? SpoolError)?.status == .dataError && "\(error)".contains("larger than the limit")
        }
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// A missing spool is EX_CANTCREAT with a hint, not a crash.
    @Test func missingSpool() throws {
        let submitter = Submitter(layout: SpoolLayout(root: spool.directory + "/nowhere"))
        #expect {
            try submitter.submit(submission(), input: -1)
        } throws: { error in
            (error as? SpoolError)?.status == .cantCreate && "\(error)".contains("postern init")
        }
    }

    /// The durable operations happen in exactly the order spool-layout.md states.
    @Test func durableOrder() throws {
        let recorder = RecordingFileSystem(root: spool.layout.root)
        let (envelope, _) = try drop(Array("Subject: x\n\nx\n".utf8), submission(), fileSystem: recorder)
        #expect(recorder.calls == Self.dropProtocol(envelope.id))
    }

    /// spool-layout.md 6.1 as RecordingFileSystem records it; with `reader`,
    /// each entry's ACL for the spool owner right after its creation (section 3).
    static func dropProtocol(_ id: QueueID, reader: uid_t? = nil) -> [String] {
        let acl = { (path: String, access: String) in reader.map { ["acl tmp/\(id)\(path) user:\($0):\(access)"] } ?? [] }
        return ["mkdir tmp/\(id)"] + acl("", "7")
            + ["create tmp/\(id)/message"] + acl("/message", "4")
            + ["write tmp/\(id)/message"]
            + ["create tmp/\(id)/envelope.json"] + acl("/envelope.json", "4")
            + ["write tmp/\(id)/envelope.json", "utimensat tmp/\(id)/envelope.json"]
            // Both written before either is synced (one journal commit for both); both synced before the directory.
            + ["fsync tmp/\(id)/message", "close tmp/\(id)/message", "fsync tmp/\(id)/envelope.json",
               "close tmp/\(id)/envelope.json", "fsync tmp/\(id)/", "rename tmp/\(id) drop/\(id)", "fsync drop/"]
    }
}

/// A file system that notes, at each write of the message file, how much input
/// the feeding thread had written by then.
final class StreamingProbe: FileSystemDecorator, @unchecked Sendable {
    let base: any FileSystem = SystemFileSystem()
    private let lock = NSLock()
    private var fed = 0
    private(set) var fedAtFirstWrite: Int?
    private(set) var largestWrite = 0
    private(set) var writes = 0

    func didFeed(_ count: Int) { lock.withLock { fed += count } }

    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError) {
        if path.hasSuffix("/message") {
            lock.withLock {
                if fedAtFirstWrite == nil { fedAtFirstWrite = fed }
                largestWrite = max(largestWrite, bytes.count)
                writes += 1
            }
        }
        try base.write(fd, bytes, path: path)
    }
}

extension SubmitterTests {
    /// A 50 MiB message is written to the spool in bounded blocks while it is still being read: streamed, never held whole.
    @Test func streamsLargeMessages() throws {
        // A failed submission closes the pipe under the feeder: EPIPE, not a dead test runner.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let probe = StreamingProbe()
        let chunk = Array(("Subject: big\n\n" + String(repeating: String(repeating: "abcdefgh", count: 8) + "\n", count: 1000)).utf8)
        let total = 50 << 20
        let writeEnd = fds[1]
        let feeder = Thread {
            var sent = 0
            while sent < total {
                let written = chunk.withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
                guard written > 0 else { break }
                sent += written
                probe.didFeed(written)
            }
            Glibc.close(writeEnd)
        }
        feeder.start()
        // Closing the read end, even on failure, ends the feeder with EPIPE.
        defer { Glibc.close(fds[0]) }
        var submitter = Submitter(layout: spool.layout)
        submitter.fileSystem = probe
        var request = try submission()
        request.maxSize = 64 << 20
        let id = try submitter.submit(request, input: fds[0])
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.size > total)
        // The first block reached the file while less than 1 MiB of 50 had been fed.
        #expect(try #require(probe.fedAtFirstWrite) < 1 << 20)
        #expect(probe.largestWrite <= DropWriter.bufferSize + 1000)
        #expect(probe.writes > 700)
    }
}

/// A drop by someone other than the spool owner (spool-layout.md section 3):
/// the writer's alone, but for one ACL entry naming the spool owner.
struct DropAccessTests {
    let spool: TemporarySpool
    /// The spool's owner in these tests; the test process (root) is another writer.
    static let owner: uid_t = 65530

    init() throws {
        try #require(getuid() == 0, "needs root to give the spool to another owner")
        spool = try TemporarySpool()
        chown(spool.layout.tmp, Self.owner, 0)
    }

    func drop(fileSystem: any FileSystem) throws(SpoolError) -> QueueID {
        var submitter = Submitter(layout: spool.layout)
        submitter.fileSystem = fileSystem
        submitter.checksSpool = false
        let submission = Submission(sender: nil, recipients: [try! MailboxAddress(parsing: "bob@example.net")],
                                    hostname: "host.example", maxSize: 1 << 20, uid: 0)
        let stream = try submitter.begin(submission)
        try stream.add(line: Array("Subject: x".utf8)[...])
        return try stream.commit()
    }

    /// Each ACL is set before the fsync that makes its entry durable, and before the rename.
    @Test func aclsInTheDurableOrder() throws {
        let recorder = RecordingFileSystem(root: spool.layout.root)
        let id = try drop(fileSystem: recorder)
        #expect(recorder.calls == SubmitterTests.dropProtocol(id, reader: Self.owner))
        #expect(recorder.calls.contains("acl tmp/\(id) user:65530:7"))
        let directory = spool.layout.path(.drop, id)
        for (path, access) in [(directory, mode_t(0o7)), (directory + "/message", 0o4), (directory + "/envelope.json", 0o4)] {
            var info = stat()
            #expect(lstat(path, &info) == 0)
            #expect(info.st_mode & 0o070 == access << 3, "the group bits are the ACL's mask: \(String(info.st_mode, radix: 8))")
            #expect(info.st_mode & 0o007 == 0)
            #expect(FileACL.users(path) == [Self.owner: access])
        }
    }

    /// The spool owner's own drops (the daemon's DSNs, the SMTP listener) need no ACL: 0700 and 0600.
    @Test func ownersDropsAreItsAlone() throws {
        chown(spool.layout.tmp, 0, 0)
        let recorder = RecordingFileSystem(root: spool.layout.root)
        let id = try drop(fileSystem: recorder)
        #expect(!recorder.calls.contains { $0.hasPrefix("acl ") })
        let directory = spool.layout.path(.drop, id)
        for (path, mode) in [(directory, mode_t(0o700)), (directory + "/message", 0o600), (directory + "/envelope.json", 0o600)] {
            var info = stat()
            #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == mode)
            #expect(FileACL.users(path).isEmpty)
        }
    }

    /// A file system without POSIX ACLs (a real one: ramfs): the drop is
    /// refused as a temporary failure that says why, and leaves nothing in
    /// tmp/ or drop/: never a drop that the group could read, nor one the
    /// daemon could not. The spool owner's own drops need no ACL and go on.
    @Test func noACLsRefuses() throws {
        let ramfs = try SmallFileSystem(withoutACLsOver: spool)
        defer { ramfs.unmount() }
        chown(spool.layout.tmp, Self.owner, 0)
        #expect {
            try drop(fileSystem: SystemFileSystem())
        } throws: { error in
            (error as? SpoolError)?.status == .tempFail && "\(error)".contains("POSIX ACL") && "\(error)".contains("mount it with acl")
        }
        #expect(try spool.temporaryNames().isEmpty)
        #expect(try spool.names(.drop).isEmpty)
        chown(spool.layout.tmp, 0, 0)
        let id = try drop(fileSystem: SystemFileSystem())
        #expect(try spool.names(.drop) == [id.rawValue])
    }
}
