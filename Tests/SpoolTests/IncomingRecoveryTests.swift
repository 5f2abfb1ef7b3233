import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool
@testable import SpoolDrop

/// What a crash or a power loss leaves in incoming/ (`IncomingRecovery`,
/// spool-layout.md 7): a sealed message is queued, anything else removed,
/// nothing followed or quarantined.
struct IncomingRecoveryTests {
    let spool: TemporarySpool
    let ids = QueueIDGenerator()
    var layout: SpoolLayout { spool.layout }

    init() throws {
        spool = try TemporarySpool()
    }

    /// A message sealed by the listener's protocol, then put back into
    /// incoming/ as a crash before its rename into queue/ leaves it.
    func sealedInIncoming(_ body: String) throws -> QueueID {
        var submitter = Submitter(layout: layout)
        submitter.spoolOwner = geteuid()
        let submission = Submission(sender: nil, recipients: [try MailboxAddress(parsing: "b@example.net")],
                                    hostname: "h.example", maxSize: 1 << 20, uid: 0)
        let stream = try submitter.begin(submission, sealed: true)
        try stream.add(line: Array(body.utf8)[...])
        let id = try stream.commit(group: DropGroupCommit(layout: layout, area: .queue))
        #expect(rename(layout.path(.queue, id), layout.incomingPath(id)) == 0)
        return id
    }

    func incomingNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: layout.incoming).sorted()
    }

    /// A sealed message (acknowledged, or about to be) goes into queue/ whole,
    /// where the scanner finds it.
    @Test func sealedMessageIsQueued() throws {
        let id = try sealedInIncoming("Subject: acknowledged")
        let report = IncomingRecovery(layout: layout).recover()
        #expect(report.queued == [id] && report.removed.isEmpty && report.failed.isEmpty)
        #expect(try spool.names(.queue) == [id.rawValue])
        #expect(try incomingNames().isEmpty)
        let items = SpoolScanner(layout: layout, mode: .readOnly).scan { _ in }
        #expect(items.quarantined.isEmpty && items.messages[.queue] == 1)
    }

    /// What was never sealed whole is removed, never queued or quarantined: a
    /// session cut short (no envelope), a blank moved in whose old envelope
    /// names another ID, a message changed after its seal (a torn write), a
    /// plain drop without a seal, a name that is no queue ID.
    @Test(arguments: ["cut short", "stale blank", "torn", "no seal", "not an ID"])
    func unsealedEntryIsRemoved(_ case: String) throws {
        let name: String
        switch `case` {
        case "cut short":
            name = ids.next().rawValue
            try FileManager.default.createDirectory(atPath: layout.incoming + "/" + name, withIntermediateDirectories: false)
            FileManager.default.createFile(atPath: layout.incoming + "/\(name)/message", contents: Data("Subject: half".utf8))
        case "stale blank":
            let old = try sealedInIncoming("Subject: delivered before")
            name = ids.next().rawValue
            #expect(rename(layout.incomingPath(old), layout.incoming + "/" + name) == 0)
        case "torn":
            let id = try sealedInIncoming("Subject: torn")
            name = id.rawValue
            let path = layout.incomingPath(id) + "/message"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count - 3] ^= 0x20
            try Data(bytes).write(to: URL(fileURLWithPath: path))
        case "no seal":
            let id = try Submitter(layout: layout).submit(
                Submission(sender: nil, recipients: [try MailboxAddress(parsing: "b@example.net")],
                           hostname: "h.example", maxSize: 1 << 20, uid: 0), input: try Self.input("Subject: dropped\n"))
            name = id.rawValue
            #expect(rename(layout.path(.drop, id), layout.incomingPath(id)) == 0)
        default:
            name = "not-an-id"
            try FileManager.default.createDirectory(atPath: layout.incoming + "/" + name, withIntermediateDirectories: false)
        }
        let report = IncomingRecovery(layout: layout).recover()
        #expect(report.queued.isEmpty && report.failed.isEmpty)
        #expect(report.removed.map(\.name) == [name])
        #expect(try incomingNames().isEmpty)
        #expect(try spool.names(.queue).isEmpty && spool.corruptNames().isEmpty)
    }

    /// A link planted in incoming/ is removed as a link: its target stays.
    @Test func linkIsNotFollowed() throws {
        let target = spool.directory + "/outside"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        FileManager.default.createFile(atPath: target + "/message", contents: Data("keep".utf8))
        let name = ids.next().rawValue
        #expect(symlink(target, layout.incoming + "/" + name) == 0)
        let report = IncomingRecovery(layout: layout).recover()
        #expect(report.removed.map(\.name) == [name])
        #expect(FileManager.default.fileExists(atPath: target + "/message"))
    }

    /// A spool without incoming/ (made before it existed) has nothing to recover.
    @Test func noIncomingDirectory() throws {
        #expect(rmdir(layout.incoming) == 0)
        #expect(IncomingRecovery(layout: layout).recover() == IncomingRecovery.Report())
    }

    /// A pipe to read a message from, as `postern drop` reads its input.
    static func input(_ text: String) throws -> Int32 {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let bytes = Array(text.utf8)
        #expect(write(fds[1], bytes, bytes.count) == bytes.count)
        close(fds[1])
        return fds[0]
    }
}
