import Foundation
import PosternBase
import PosternTesting
import Spool
import SpoolDrop
import Testing

/// The drop as the listener feeds it: lines, a trace field, DSN fields, and
/// the group commit of drop/'s fsync.
struct ListenerDropTests {
    /// Lines fed one by one are stored as `postern drop` stores them, with the
    /// trace field above the header section and the RFC 3461 fields in the envelope.
    @Test func streamWithTraceAndDSNFields() throws {
        let spool = try TemporarySpool()
        var submission = Submission(sender: try MailboxAddress(parsing: "a@example.org"),
                                    recipients: [try MailboxAddress(parsing: "b@example.net")],
                                    hostname: "mail.example.org", maxSize: 1 << 20, uid: 0)
        submission.ignoreDots = true
        submission.originals = ["b@example.net": "B@example.net"]
        submission.notifyNever = true
        submission.dsnReturn = .hdrs
        submission.envelopeID = "QQ+2B1"
        let stream = try Submitter(layout: spool.layout).begin(submission)
        stream.trace = Array("Received: from x ([127.0.0.1])\r\n\tby mail.example.org (Postern); date\r\n".utf8)
        for line in ["Subject: s", "Message-ID: <m@example.org>", "", ".", "body"] { try stream.add(line: Array(line.utf8)[...]) }
        let group = DropGroupCommit(layout: spool.layout)
        let id = try stream.commit(group: group)
        #expect(group.syncCount == 1)
        let message = String(decoding: try spool.read("drop/\(id)/message"), as: UTF8.self)
        #expect(message.hasPrefix("Received: from x ([127.0.0.1])\r\n\tby mail.example.org (Postern); date\r\nSubject: s\r\n"))
        #expect(message.hasSuffix("\r\n\r\n.\r\nbody\r\n"))
        let envelope = try Envelope.decode(try spool.read("drop/\(id)/envelope.json"))
        #expect(envelope.notifyNever)
        #expect(envelope.dsnReturn == .hdrs && envelope.envelopeID == "QQ+2B1")
        #expect(envelope.recipients.first?.original == "B@example.net")
        #expect(envelope.messageID == "m@example.org")
    }

    /// An abandoned stream leaves nothing in tmp/ or drop/.
    @Test func abandon() throws {
        let spool = try TemporarySpool()
        let submission = Submission(sender: nil, recipients: [try MailboxAddress(parsing: "b@example.net")],
                                    hostname: "h.example", maxSize: 1 << 20, uid: 0)
        let stream = try Submitter(layout: spool.layout).begin(submission)
        try stream.add(line: Array("Subject: x".utf8)[...])
        stream.abandon()
        #expect(try spool.temporaryNames().isEmpty && spool.names(.drop).isEmpty)
    }

    /// Committed into queue/ (the daemon's own listener): the message directory
    /// goes from tmp/ straight into queue/, complete, and queue/ is what is synced;
    /// nothing passes through drop/.
    @Test func commitStraightIntoTheQueue() throws {
        let spool = try TemporarySpool()
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var submitter = Submitter(layout: spool.layout)
        submitter.fileSystem = recorder
        let submission = Submission(sender: nil, recipients: [try MailboxAddress(parsing: "b@example.net")],
                                    hostname: "h.example", maxSize: 1 << 20, uid: 0)
        let stream = try submitter.begin(submission)
        try stream.add(line: Array("Subject: x".utf8)[...])
        let group = DropGroupCommit(layout: spool.layout, area: .queue, fileSystem: recorder)
        let id = try stream.commit(group: group)
        #expect(try spool.names(.queue) == [id.rawValue])
        #expect(try spool.names(.drop).isEmpty && spool.temporaryNames().isEmpty)
        #expect(try Envelope.decode(try spool.read("queue/\(id)/envelope.json")).recipients.map(\.address) == ["b@example.net"])
        #expect(recorder.calls.contains("fsync queue/") && !recorder.calls.contains("fsync drop/"))
        #expect(group.syncCount == 1)
    }

    /// Concurrent writers share the fsyncs of drop/: never more than one per
    /// drop, each starting after the drop's rename, and every drop arrives complete.
    @Test func groupCommitSharesSyncs() async throws {
        let spool = try TemporarySpool()
        let recorder = RecordingFileSystem(root: spool.layout.root)
        let group = DropGroupCommit(layout: spool.layout, fileSystem: recorder)
        let layout = spool.layout
        let ids = await withTaskGroup(of: String?.self) { tasks in
            for index in 0..<16 {
                tasks.addTask {
                    var submitter = Submitter(layout: layout)
                    submitter.fileSystem = recorder
                    let submission = Submission(sender: nil, recipients: [try! MailboxAddress(parsing: "r\(index)@example.net")],
                                                hostname: "h.example", maxSize: 1 << 20, uid: 0)
                    guard let stream = try? submitter.begin(submission) else { return nil }
                    try? stream.add(line: Array("Subject: \(index)".utf8)[...])
                    return try? stream.commit(group: group).rawValue
                }
            }
            var ids: [String] = []
            for await id in tasks { if let id { ids.append(id) } }
            return ids
        }
        #expect(ids.count == 16)
        #expect(try spool.names(.drop).sorted() == ids.sorted())
        #expect(group.syncCount >= 1 && group.syncCount <= 16)
        #expect(recorder.calls.filter { $0 == "fsync drop/" }.count == group.syncCount)
    }
}

/// Base64 decoding for AUTH responses.
struct Base64Tests {
    /// Strict RFC 4648: padding required, nothing outside the alphabet.
    @Test func decode() {
        #expect(Base64.decode(Array("AGFsaWNlAHB3".utf8)) == [0] + Array("alice".utf8) + [0] + Array("pw".utf8))
        #expect(Base64.decode(Array("YQ==".utf8)) == Array("a".utf8))
        #expect(Base64.decode(Array("YQ=".utf8)) == nil)
        #expect(Base64.decode(Array("Y Q==".utf8)) == nil)
        #expect(Base64.decode(Array("YQ==YQ==".utf8)) == nil)
        #expect(Base64.decode(Array(Base64.encode(Array(0...255)).utf8)) == Array(0...255))
    }
}
