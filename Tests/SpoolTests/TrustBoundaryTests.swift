import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Issue #12: what a local user who writes `tmp/` and `drop/` can do to the
/// spool, at the level of the spool's own code. The same attacks with real
/// users and a running daemon are in IntegrationTests/TrustBoundaryTests.
struct TrustBoundaryTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func makeTree(_ path: String, files: Int, subdirectory: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/" + subdirectory, withIntermediateDirectories: true)
        for index in 0..<files {
            try Data("x".utf8).write(to: URL(fileURLWithPath: path + "/f\(index)"))
            try Data("y".utf8).write(to: URL(fileURLWithPath: path + "/\(subdirectory)/g\(index)"))
        }
    }

    /// A tree swapped for `tmp/ZZ -> ..` after the first removal: the walk stays
    /// in the directory it opened, so the subdirectory named `queue` that it
    /// then meets is the attacker's, never SPOOL/queue.
    @Test func treeRemovalIgnoresALinkSwappedInMidWalk() throws {
        let queued = try spool.plant(.queue)
        let tree = spool.layout.tmp + "/ZZ"
        try makeTree(tree, files: 50, subdirectory: "queue")
        var swapped = false
        // The last step, rmdir of the name, meets the link: ENOTDIR, reported.
        #expect(throws: SpoolIOError.self) {
            try DirectoryHandle(path: spool.layout.tmp).removeTree("ZZ") { _ in
                guard !swapped else { return }
                swapped = true
                #expect(rename(tree, tree + ".moved") == 0)
                #expect(symlink("..", tree) == 0)
            }
        }
        #expect(swapped)
        #expect(try spool.names(.queue) == [queued.id.rawValue])
        #expect(FileManager.default.fileExists(atPath: spool.layout.path(.queue, queued.id) + "/message"))
        // What was walked is emptied (it is empty, under the name it was moved
        // to); the link, which is no directory, is left for the next scan.
        #expect(try DirectoryListing.names(in: tree + ".moved").isEmpty)
        #expect(MessageDirectory.lstatus(tree).map { $0.st_mode & S_IFMT == S_IFLNK } == true)
    }

    /// A backdated `tmp/ZZ -> ..` is removed as a link by the scanner; nothing it points to is touched.
    @Test func scannerRemovesLinksInTmpWithoutFollowingThem() throws {
        let queued = try spool.plant(.queue)
        let link = spool.layout.tmp + "/ZZ"
        #expect(symlink("..", link) == 0)
        var old = [timespec(tv_sec: 1_000_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, link, &old, AT_SYMLINK_NOFOLLOW) == 0)
        let report = SpoolScanner(layout: spool.layout, mode: .repair).scan { _ in }
        #expect(report.removed == ["tmp/ZZ"])
        #expect(try spool.temporaryNames().isEmpty)
        #expect(try spool.names(.queue) == [queued.id.rawValue])
    }

    /// A tree removal deeper than the bound stops with an error instead of
    /// exhausting the stack or the descriptors.
    @Test func treeRemovalIsBoundedInDepth() throws {
        var path = spool.layout.tmp + "/deep"
        for _ in 0...DirectoryHandle.maxRemovalDepth + 2 { path += "/d" }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #expect(throws: SpoolIOError.self) { try DirectoryHandle(path: spool.layout.tmp).removeTree("deep") }
    }

    /// `envelope.json.tmp` must be a file: as a directory it is refused by the
    /// loader (quarantine) and by the update, which never walks it.
    @Test func staleUpdateThatIsADirectoryIsRefused() throws {
        let queued = try spool.plant(.queue)
        let directory = spool.layout.path(.queue, queued.id)
        try makeTree(directory + "/envelope.json.tmp", files: 3, subdirectory: "queue")
        #expect(throws: MessageDirectory.Problem("envelope.json.tmp is not a regular file")) {
            try MessageDirectory(path: directory).load(id: queued.id, trustedOwners: [0, getuid()])
        }
        #expect(throws: SpoolIOError.self) {
            try MessageStore(layout: spool.layout).update(queued, in: .queue, durability: .processCrash)
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/envelope.json.tmp/queue/g0"))
        // As a link it is removed as a link: its target stays.
        try FileManager.default.removeItem(atPath: directory + "/envelope.json.tmp")
        #expect(symlink("../..", directory + "/envelope.json.tmp") == 0)
        try MessageStore(layout: spool.layout).update(queued, in: .queue, durability: .processCrash)
        #expect(try spool.names(.queue) == [queued.id.rawValue])
        // What is there now is the spare: the envelope the update replaced, a regular file.
        #expect(MessageDirectory.lstatus(directory + "/envelope.json.tmp").map { $0.st_mode & S_IFMT == S_IFREG } == true)
    }

    /// Spool files are opened without blocking or following: a FIFO, a link
    /// and a file with a second link are all refused, at once.
    @Test func spoolFilesOpenOnlyAsRegularFilesWithOneLink() throws {
        let directory = try DirectoryHandle(path: spool.directory)
        #expect(mkfifo(spool.directory + "/fifo", 0o600) == 0)
        #expect(symlink("/etc/passwd", spool.directory + "/link") == 0)
        try Data("x".utf8).write(to: URL(fileURLWithPath: spool.directory + "/file"))
        #expect(link(spool.directory + "/file", spool.directory + "/second") == 0)
        for name in ["fifo", "link", "file"] {
            #expect(throws: SpoolIOError.self, "\(name)") { try directory.openRegularFile(name) }
        }
        #expect(unlink(spool.directory + "/second") == 0)
        let (fd, info) = try directory.openRegularFile("file")
        close(fd)
        #expect(info.st_size == 1)
    }

    /// A drop by another user is copied into a directory of the daemon's own
    /// with only the submission fields; the writer's copy goes.
    @Test func adoptionCopiesIntoOwnDirectoryWithSubmissionFieldsOnly() throws {
        let body = "Subject: adopted\r\n\r\nbody\r\n"
        let dropped = try spool.plant(.drop, message: body) {
            $0.transport = "smarthost"
            $0.maxAttempts = 99
            $0.attempts = 3
            $0.recipients[0].original = "rfc822;Bob@example.net"
            $0.dsnReturn = .hdrs
            $0.envelopeID = "QQ+2B1"
            $0.extra["x_custom"] = .string("kept?")
        }
        let original = try #require(MessageDirectory.lstatus(spool.layout.path(.drop, dropped.id)))
        let opened = try MessageDirectory(path: spool.layout.path(.drop, dropped.id)).open(id: dropped.id, trustedOwners: [0])
        let (envelope, ignored) = Adoption.submitted(opened.envelope)
        #expect(ignored == ["transport", "max_attempts", "delivery state", "x_custom"])
        #expect(envelope.transport == nil && envelope.maxAttempts == nil && envelope.attempts == 0 && envelope.extra.isEmpty)
        #expect(envelope.recipients[0].original == "rfc822;Bob@example.net")
        // RET and ENVID are the sender's own: kept.
        #expect(envelope.dsnReturn == .hdrs && envelope.envelopeID == "QQ+2B1")
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var adoption = Adoption(layout: spool.layout)
        adoption.fileSystem = recorder
        try adoption.adopt(opened, envelope: envelope, from: .drop, to: .queue)

        #expect(try spool.names(.drop).isEmpty)
        let adopted = try #require(MessageDirectory.lstatus(spool.layout.path(.queue, dropped.id)))
        #expect(adopted.st_ino != original.st_ino)
        #expect(adopted.st_mode & 0o777 == 0o700)
        #expect(String(decoding: try spool.read("queue/\(dropped.id)/message"), as: UTF8.self) == body)
        #expect(try Envelope.decode(spool.read("queue/\(dropped.id)/envelope.json")) == envelope)
        // Built in tmp/, both files fsynced, the directory fsynced, then renamed: the commit point.
        // (The copy is copy_file_range(2), or writes where the kernel cannot: not compared.)
        let calls = recorder.calls.map { $0.replacingOccurrences(of: #"tmp/[0-9A-Z]{26}"#, with: "tmp/STAGE", options: .regularExpression) }
            .filter { $0 != "write tmp/STAGE/message" }
        #expect(calls == [
            "mkdir tmp/STAGE", "create tmp/STAGE/message", "fsync tmp/STAGE/message", "close tmp/STAGE/message",
            "create tmp/STAGE/envelope.json", "write tmp/STAGE/envelope.json", "utimensat tmp/STAGE/envelope.json", "fsync tmp/STAGE/envelope.json",
            "close tmp/STAGE/envelope.json", "fsync tmp/STAGE/", "rename tmp/STAGE queue/\(dropped.id)", "fsync queue/",
            "remove drop/\(dropped.id)",
        ])
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// A message in place (queue/) is adopted by an exchange: it is never absent.
    @Test func adoptionInPlaceExchanges() throws {
        let queued = try spool.plant(.queue) { $0.attempts = 2 }
        let opened = try MessageDirectory(path: spool.layout.path(.queue, queued.id)).open(id: queued.id, trustedOwners: [0])
        try Adoption(layout: spool.layout).adopt(opened, envelope: opened.envelope, from: .queue, to: .queue)
        #expect(try spool.names(.queue) == [queued.id.rawValue])
        #expect(try Envelope.decode(spool.read("queue/\(queued.id)/envelope.json")).attempts == 2)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// A message that shrank after validation is not adopted: the caller quarantines it.
    @Test func adoptionRefusesAMessageThatChanged() throws {
        let dropped = try spool.plant(.drop)
        let opened = try MessageDirectory(path: spool.layout.path(.drop, dropped.id)).open(id: dropped.id, trustedOwners: [0])
        #expect(truncate(spool.layout.path(.drop, dropped.id) + "/message", 3) == 0)
        #expect(throws: MessageDirectory.Problem.self) {
            try Adoption(layout: spool.layout).adopt(opened, envelope: opened.envelope, from: .drop, to: .queue)
        }
        #expect(try spool.names(.queue).isEmpty)
        #expect(try spool.names(.drop) == [dropped.id.rawValue])
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// The envelope never outgrows what readers accept: the oldest history goes first.
    @Test func updateTrimsHistoryRatherThanWriteAnUnreadableEnvelope() throws {
        var envelope = try spool.plant(.queue)
        let long = String(repeating: "x", count: 200_000)
        for index in 0..<Envelope.historyLimit {
            envelope.record(AttemptRecord(time: Date(timeIntervalSince1970: Double(index)), recipients: ["bob@example.net"],
                                          result: DeliveryResult(time: Date(), text: long, permanent: false)))
        }
        #expect(envelope.encoded().count > Envelope.maxEncodedSize)
        try MessageStore(layout: spool.layout).update(envelope, in: .queue, durability: .processCrash)
        let stored = try MessageDirectory(path: spool.layout.path(.queue, envelope.id)).load(id: envelope.id, trustedOwners: [0, getuid()])
        #expect(!stored.history.isEmpty && stored.history.count < Envelope.historyLimit)
        #expect(stored.history.last?.time == envelope.history.last?.time)
    }

    /// `dsn_pending` is kept across a write and a read, and validated.
    @Test func dsnPendingRoundTrips() throws {
        var envelope = try spool.plant(.queue)
        envelope.dsnPending = ["zed@example.net"]
        #expect(try Envelope.decode(envelope.encoded()).dsnPending == ["zed@example.net"])
        let text = String(decoding: envelope.encoded(), as: UTF8.self)
            .replacingOccurrences(of: "zed@example.net", with: #"zed\r\nBcc: x@example.net"#)
        #expect(throws: EnvelopeError.self) { try Envelope.decode(Data(text.utf8)) }
    }
}
