import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Finished message directories kept empty and built in again (`BlankPool`,
/// spool-layout.md 6.4): the same inodes, the same protocol, and nothing
/// kept that another user could reach.
struct BlankPoolTests {
    let spool: TemporarySpool
    let ids = QueueIDGenerator()

    init() throws {
        spool = try TemporarySpool()
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
        try writer.commit(envelopeBytes: Array("{\"id\":\"\(id)\"}\n".utf8), group: DropGroupCommit(layout: layout, area: .queue, fileSystem: fileSystem))
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

    /// A finished message is emptied and kept; the next message is built in
    /// it, in the same three inodes, and holds only its own bytes.
    @Test func nextMessageReusesTheInodes() throws {
        let pool = BlankPool()
        let out = try finished(String(repeating: "first message line\n", count: 500))
        let inodes = [out, out + "/message", out + "/envelope.json"].map(inode)
        #expect(pool.keep(out))
        #expect(pool.count == 1)
        #expect(size(out + "/message") == 0 && size(out + "/envelope.json") == 0)

        let id = try write("second\n", blanks: pool)
        let queued = layout.path(.queue, id)
        #expect([queued, queued + "/message", queued + "/envelope.json"].map(inode) == inodes)
        #expect(try String(contentsOfFile: queued + "/message", encoding: .utf8) == "second\n")
        #expect(try String(contentsOfFile: queued + "/envelope.json", encoding: .utf8) == "{\"id\":\"\(id)\"}\n")
        #expect(pool.count == 0)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: layout.tmp).isEmpty)
    }

    /// A blank is written by the same durable steps as a new directory: renamed
    /// into place, its files opened truncated instead of created, every file and
    /// the directory fsynced before the commit rename.
    @Test func reuseFollowsTheDropProtocol() throws {
        let pool = BlankPool()
        let out = try finished("old\n")
        #expect(pool.keep(out))
        let recorder = RecordingFileSystem(root: layout.root)
        let id = try write("new\n", blanks: pool, fileSystem: recorder)
        let old = String(out.dropFirst(layout.root.count + 1))
        #expect(recorder.calls == [
            "rename \(old) tmp/\(id)", "reuse tmp/\(id)/message", "write tmp/\(id)/message",
            "reuse tmp/\(id)/envelope.json", "write tmp/\(id)/envelope.json",
            "fsync tmp/\(id)/message", "close tmp/\(id)/message", "fsync tmp/\(id)/envelope.json",
            "close tmp/\(id)/envelope.json", "fsync tmp/\(id)/", "rename tmp/\(id) queue/\(id)", "fsync queue/",
        ])
    }

    /// What another user could hold open or reach, or what is not a finished
    /// message's directory, is never kept; its files are left as they are.
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
        let pool = BlankPool()
        #expect(!pool.keep(out))
        #expect(pool.count == 0)
        #expect(size(message) == 8)
        if `case` == "symlink" { #expect(size(spool.directory + "/target") == 1) }
    }

    /// An envelope update's leftover goes; the rest is kept.
    @Test func leftoverUpdateIsRemoved() throws {
        let out = try finished("x\n")
        FileManager.default.createFile(atPath: out + "/envelope.json.tmp", contents: Data("{".utf8))
        let pool = BlankPool()
        #expect(pool.keep(out))
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["envelope.json", "message"])
    }

    /// A full pool keeps nothing more: the caller removes the directory.
    @Test func fullPoolDeclines() throws {
        let pool = BlankPool(capacity: 1)
        #expect(pool.keep(try finished("a\n")))
        let second = try finished("b\n")
        #expect(!pool.keep(second))
        #expect(size(second + "/message") == 2)
        #expect(pool.takeAll().count == 1)
        #expect(pool.count == 0)
    }

    /// A blank removed meanwhile (tmp/ cleaning) costs nothing: a new directory serves.
    @Test func vanishedBlankFallsBackToANewDirectory() throws {
        let pool = BlankPool()
        let out = try finished("a\n")
        #expect(pool.keep(out))
        try FileManager.default.removeItem(atPath: out)
        let id = try write("b\n", blanks: pool)
        #expect(try String(contentsOfFile: layout.path(.queue, id) + "/message", encoding: .utf8) == "b\n")
        #expect(pool.count == 0)
    }
}
