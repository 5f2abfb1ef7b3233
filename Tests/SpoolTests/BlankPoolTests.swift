import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool
@testable import SpoolDrop

/// Finished message directories kept empty and built in again (`BlankPool`,
/// spool-layout.md 6.4): the same inodes, the same protocol, and nothing
/// kept that another user could reach.
struct BlankPoolTests {
    let spool: TemporarySpool
    let ids = QueueIDGenerator()
    let queueCommit: DropGroupCommit
    let pool = BlankPool()

    init() throws {
        spool = try TemporarySpool()
        queueCommit = DropGroupCommit(layout: spool.layout, area: .queue)
        pool.follow(queueCommit)
    }

    /// An fsync of queue/, as the listener's next commit makes: the blanks kept before it become ready.
    func syncQueue() throws {
        try queueCommit.shared.sync()
    }

    var layout: SpoolLayout { spool.layout }

    /// Writes a message through the drop protocol straight into `queue/`, then
    /// takes it out into `tmp/` as the daemon does with a finished one.
    func finished(_ text: String, blanks: BlankPool? = nil, fileSystem: any FileSystem = SystemFileSystem()) throws -> String {
        let id = try write(text, blanks: blanks, fileSystem: fileSystem)
        return try MessageStore(layout: layout).discard(id, from: .queue)
    }

    func write(_ text: String, blanks: BlankPool? = nil, fileSystem: any FileSystem = SystemFileSystem()) throws -> QueueID {
        let id = ids.next()
        let writer = try DropWriter(layout: layout, id: id, fileSystem: fileSystem, spoolOwner: geteuid(), blanks: blanks)
        try writer.write(Array(text.utf8))
        try writer.commit(envelopeBytes: Array("{\"id\":\"\(id)\"}\n".utf8),
                          group: fileSystem is SystemFileSystem ? queueCommit : DropGroupCommit(layout: layout, area: .queue, fileSystem: fileSystem))
        return id
    }

    func inode(_ path: String) -> ino_t {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_ino : 0
    }

    func size(_ path: String) -> Int {
        var info = stat()
        return lstat(path, &info) == 0 ? Int(info.st_size) : -1
    }

    /// A finished message is kept as it is; a later message is built in it, in
    /// the same three inodes, and holds only its own bytes.
    @Test func nextMessageReusesTheInodes() throws {
        let out = try finished(String(repeating: "first message line\n", count: 500))
        let inodes = [out, out + "/message", out + "/envelope.json"].map(inode)
        #expect(pool.keep(out))
        #expect(pool.count == 1)
        // Nothing truncated until it is reused: a power loss may still bring the finished message back.
        #expect(size(out + "/message") == 19 * 500)

        try syncQueue()
        let id = try write("second\n", blanks: pool)
        let queued = layout.path(.queue, id)
        #expect([queued, queued + "/message", queued + "/envelope.json"].map(inode) == inodes)
        #expect(try String(contentsOfFile: queued + "/message", encoding: .utf8) == "second\n")
        #expect(try String(contentsOfFile: queued + "/envelope.json", encoding: .utf8) == "{\"id\":\"\(id)\"}\n")
        #expect(pool.count == 0)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: layout.tmp).isEmpty)
    }

    /// A blank is written by the same durable steps as a new directory, under
    /// its name in tmp/: its files opened truncated instead of created, every
    /// file fsynced before the commit rename names it; its directory, whose
    /// entries were durable when it was kept and have not changed, is not.
    @Test func reuseFollowsTheDropProtocol() throws {
        let out = try finished("old\n")
        #expect(pool.keep(out))
        try syncQueue()
        let recorder = RecordingFileSystem(root: layout.root)
        let id = try write("new\n", blanks: pool, fileSystem: recorder)
        let old = String(out.dropFirst(layout.root.count + 1))
        #expect(recorder.calls == [
            "reuse \(old)/message", "write \(old)/message", "reuse \(old)/envelope.json", "write \(old)/envelope.json",
            "fsync \(old)/message", "close \(old)/message", "fsync \(old)/envelope.json",
            "close \(old)/envelope.json", "rename \(old) queue/\(id)", "fsync queue/",
        ])
    }

    /// What another user could hold open or reach, or what is not a finished
    /// message's directory, is never kept.
    @Test(arguments: ["group-readable", "hard link", "symlink", "extra file", "foreign owner", "no envelope", "fifo"])
    func refusesWhatIsNotPrivate(_ case: String) throws {
        let out = try finished("keep me\n")
        let message = out + "/message"
        switch `case` {
        case "group-readable": chmod(message, 0o640)
        case "hard link": link(message, spool.directory + "/elsewhere")
        case "symlink":
            unlink(out + "/envelope.json")
            symlink(spool.directory + "/target", out + "/envelope.json")
            FileManager.default.createFile(atPath: spool.directory + "/target", contents: Data("x".utf8))
        case "extra file": FileManager.default.createFile(atPath: out + "/extra", contents: Data())
        case "foreign owner": chown(message, 65534, 65534)
        case "no envelope": unlink(out + "/envelope.json")
        case "fifo":
            unlink(out + "/envelope.json")
            mkfifo(out + "/envelope.json", 0o600)
        default: Issue.record("unknown case")
        }
        #expect(!pool.keep(out))
        #expect(pool.count == 0)
        #expect(size(message) == 8)
        // Nothing of it is handed out later either.
        try syncQueue()
        #expect(pool.take() == nil)
    }

    /// An envelope update's leftover goes; the rest is kept.
    @Test func leftoverUpdateIsRemoved() throws {
        let out = try finished("x\n")
        FileManager.default.createFile(atPath: out + "/envelope.json.tmp", contents: Data("{".utf8))
        #expect(pool.keep(out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["envelope.json", "message"])
    }

    /// A blank is handed out only after an fsync of queue/ that started after it
    /// was kept, so that its removal is durable before another message is written
    /// into it; a pool that follows no group commit keeps nothing.
    @Test func blankWaitsForAnFsyncOfTheQueue() throws {
        let out = try finished("a\n")
        #expect(pool.keep(out))
        #expect(pool.take() == nil)
        #expect(pool.count == 1)
        try syncQueue()
        #expect(pool.take() == out)
        let unfollowed = BlankPool()
        #expect(!unfollowed.keep(try finished("b\n")))
        #expect(unfollowed.take() == nil)
    }

    /// A full pool keeps nothing more: the caller removes the directory.
    @Test func fullPoolDeclines() throws {
        let pool = BlankPool(capacity: 1)
        pool.follow(queueCommit)
        #expect(pool.keep(try finished("a\n")))
        let second = try finished("b\n")
        #expect(!pool.keep(second))
        #expect(pool.takeAll().count == 1)
        #expect(pool.count == 0)
    }

    /// A blank removed meanwhile (tmp/ cleaning) costs nothing: a new directory serves.
    @Test func vanishedBlankFallsBackToANewDirectory() throws {
        let out = try finished("a\n")
        #expect(pool.keep(out))
        try syncQueue()
        try FileManager.default.removeItem(atPath: out)
        let id = try write("b\n", blanks: pool)
        #expect(try String(contentsOfFile: layout.path(.queue, id) + "/message", encoding: .utf8) == "b\n")
        #expect(pool.count == 0)
    }
}
