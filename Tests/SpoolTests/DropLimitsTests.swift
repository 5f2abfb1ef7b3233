import Foundation
import Glibc
import PosternCore
import PosternTesting
import Synchronization
import Testing
@testable import Spool

/// Issue #12, items 4 and 6: a drop that the daemon takes away at once is still
/// reported as committed, and a drop's recipients are bounded.
extension SubmitterTests {
    /// A drop-group member cannot open drop/ to fsync it; it syncs the file
    /// system through its own directory, opened before the rename, so a daemon
    /// that moves the drop on at once makes no difference.
    @Test func dropCommitsWhenTheDaemonTakesItAtOnce() throws {
        let member = MemberView(layout: spool.layout)
        let input = spool.directory + "/input"
        try Data("Subject: x\n\nhi\n".utf8).write(to: URL(fileURLWithPath: input))
        let fd = open(input, O_RDONLY)
        defer { close(fd) }
        var submitter = Submitter(layout: spool.layout)
        submitter.fileSystem = member
        let id = try submitter.submit(try submission(), input: fd)
        #expect(member.synced.withLock { $0 })
        #expect(try spool.names(.queue) == [id.rawValue])
        #expect(try spool.names(.drop).isEmpty)
    }

    /// More recipients than `drop.max_recipients` are refused with EX_DATAERR,
    /// after duplicates are merged (by a set: 20,000 copies of one address are one).
    @Test func recipientsAreCappedAfterDeduplication() throws {
        var request = try submission(Array(repeating: "bob@example.net", count: 20_000))
        request.maxRecipients = 10
        let (envelope, _) = try drop(Array("Subject: x\n\nhi\n".utf8), request)
        #expect(envelope.recipients.map(\.address) == ["bob@example.net"])

        request = try submission((0..<11).map { "user\($0)@example.net" })
        request.maxRecipients = 10
        let error = #expect(throws: SpoolError.self) { try drop(Array("Subject: x\n\nhi\n".utf8), request) }
        #expect(error?.status == .dataError)
        #expect(error?.message.contains("too many recipients: 11, the limit is 10") == true)
        #expect(try spool.names(.drop) == [envelope.id.rawValue] && spool.temporaryNames().isEmpty)
    }

    /// With the cap lifted, an envelope that could outgrow 4 MiB with its
    /// results is still refused before it is committed.
    @Test func envelopeThatCouldOutgrowItsLimitIsRefused() throws {
        var request = try submission((0..<20_000).map { "recipient-number-\($0)@example.net" })
        request.maxRecipients = 100_000
        let error = #expect(throws: SpoolError.self) { try drop(Array("Subject: x\n\nhi\n".utf8), request) }
        #expect(error?.status == .dataError)
        #expect(error?.message.contains("too many recipients for one envelope") == true)
        #expect(try spool.names(.drop).isEmpty)
    }

    /// The default cap is a sender's 1,000, which fits any envelope of ordinary addresses.
    @Test func defaultCapFits() throws {
        let request = try submission((0..<Submission.defaultMaxRecipients).map { "user\($0)@example.net" })
        let (envelope, _) = try drop(Array("Subject: x\n\nhi\n".utf8), request)
        #expect(envelope.recipients.count == 1000)
        #expect(envelope.largestSize <= Envelope.maxEncodedSize)
    }
}

/// The file system as a drop-group member sees it, with a daemon that accepts
/// each drop the instant it is renamed into drop/.
final class MemberView: FileSystemDecorator, @unchecked Sendable {
    let base: any FileSystem = SystemFileSystem()
    private let layout: SpoolLayout
    let synced = Mutex(false)

    init(layout: SpoolLayout) {
        self.layout = layout
    }

    func rename(_ source: String, to destination: String) throws(SpoolIOError) {
        try base.rename(source, to: destination)
        if destination.hasPrefix(layout.directory(.drop) + "/") {
            let name = String(destination.dropFirst(layout.directory(.drop).count + 1))
            try base.rename(destination, to: layout.directory(.queue) + "/" + name)
        }
    }

    func syncDirectory(_ path: String) throws(SpoolIOError) {
        // No read permission on drop/: it cannot be opened to fsync.
        if path == layout.directory(.drop) { throw SpoolIOError("open directory", path, EACCES) }
        try base.syncDirectory(path)
    }

    func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError) {
        try base.syncFileSystem(directory)
        synced.withLock { $0 = true }
    }
}
