import Foundation
import Glibc
import Synchronization
import PosternCore
import PosternTesting
import Testing
@testable import Spool
@testable import SpoolDrop

/// Blanks made ahead when none is kept (`BlankMaker`, spool-layout.md 6.4):
/// private, durable before they are handed out, a kept one still preferred,
/// and nothing made once the pool is emptied for the daemon's stop.
struct BlankMakerTests {
    let spool: TemporarySpool
    let queueCommit: DropGroupCommit
    let pool = BlankPool()
    let recorder: RecordingFileSystem

    init() throws {
        spool = try TemporarySpool()
        queueCommit = DropGroupCommit(layout: spool.layout, area: .queue)
        recorder = RecordingFileSystem(root: spool.layout.root)
        pool.follow(queueCommit)
        pool.makeAhead(layout: spool.layout, fileSystem: recorder)
    }

    var layout: SpoolLayout { spool.layout }
    var batch: Int { BlankMaker.defaultBatch }

    /// Waits (at most 30 s) until the pool holds `count` blanks.
    func poolHolds(_ count: Int) -> Bool {
        BackgroundProcess.waitUntil(timeout: 30) { pool.count == count }
    }

    func tmpNames() throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: layout.tmp))
    }

    /// A message finding no blank asks for a batch; the batch is made in
    /// tmp/, each blank a private directory of the spool owner holding its
    /// two files, empty, and all of it made durable by one syncfs before any
    /// is handed out.
    @Test func aMissMakesADurableBatch() throws {
        #expect(pool.take() == nil)
        #expect(poolHolds(batch))
        let names = try tmpNames()
        #expect(names.count == batch)
        for name in names {
            let path = layout.tmp + "/" + name
            #expect(BlankPool.isReusable(path), "\(name)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == ["envelope.json", "message"])
            for file in ["message", "envelope.json"] {
                #expect((try FileManager.default.attributesOfItem(atPath: path + "/" + file)[.size] as? Int) == 0)
            }
        }
        let calls = recorder.calls
        #expect(calls.last == "syncfs tmp/", "\(calls.suffix(3))")
        #expect(calls.filter { $0.hasPrefix("syncfs") }.count == 1)
        #expect(calls.filter { $0.hasPrefix("mkdir tmp/") }.count == batch)
        #expect(calls.filter { $0.hasPrefix("create tmp/") }.count == 2 * batch)
        // Each blank's directory, then its two files, each closed at once.
        let first = try #require(calls.first?.split(separator: " ").last.map(String.init))
        #expect(Array(calls.prefix(5)) == ["mkdir \(first)", "create \(first)/message", "close \(first)/message",
                                            "create \(first)/envelope.json", "close \(first)/envelope.json"])
    }

    /// A message is built in a made blank by the blank's steps (files opened
    /// truncated, no fsync of its directory) and holds only its own bytes.
    @Test func aMessageIsBuiltInAMadeBlank() throws {
        _ = pool.take()
        #expect(poolHolds(batch))
        let made = try tmpNames()
        let id = QueueIDGenerator().next()
        let writer = try DropWriter(layout: layout, id: id, spoolOwner: geteuid(), blanks: pool)
        try writer.write(Array("Subject: made\r\n\r\nbody\r\n".utf8))
        try writer.commit(envelopeBytes: Array("{\"id\":\"\(id)\"}\n".utf8), group: queueCommit)
        let queued = layout.path(.queue, id)
        #expect(try String(contentsOfFile: queued + "/message", encoding: .utf8) == "Subject: made\r\n\r\nbody\r\n")
        #expect(try String(contentsOfFile: queued + "/envelope.json", encoding: .utf8) == "{\"id\":\"\(id)\"}\n")
        let left = try tmpNames()
        #expect(left.count == batch - 1 && left.isSubset(of: made), "one made blank went into queue/\(id)")
    }

    /// A kept blank that is ready goes first: it allocates nothing. Made
    /// blanks serve when none is.
    @Test func aReadyKeptBlankGoesFirst() throws {
        _ = pool.take()
        #expect(poolHolds(batch))
        let made = try tmpNames()
        let out = layout.tmp + "/kept"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        for file in ["message", "envelope.json"] {
            #expect(FileManager.default.createFile(atPath: out + "/" + file, contents: Data("old".utf8), attributes: [.posixPermissions: 0o600]))
        }
        #expect(pool.keep(out))
        // Not ready until an fsync of queue/ after it was kept: a made one serves.
        #expect(made.contains(try #require(pool.take()).split(separator: "/").last.map(String.init) ?? ""))
        try queueCommit.shared.sync()
        #expect(pool.take() == out)
    }

    /// When fewer than half a batch of made blanks is left, the next batch is
    /// made before the pool runs dry.
    @Test func theNextBatchComesBeforeThePoolRunsDry() throws {
        _ = pool.take()
        #expect(poolHolds(batch))
        let keepAtLeast = batch / 2
        for _ in 0..<(batch - keepAtLeast) { #expect(pool.take() != nil) }
        #expect(pool.count == keepAtLeast)
        #expect(pool.take() != nil)   // one fewer than half a batch left: the next batch is asked for
        #expect(poolHolds(keepAtLeast - 1 + batch))
    }

    /// `takeAll`, as the daemon stops: every blank is handed over for
    /// removal, and the maker is gone: a later miss asks it for nothing.
    @Test func takeAllEndsTheMaking() throws {
        _ = pool.take()
        #expect(poolHolds(batch))
        let all = pool.takeAll()
        #expect(Set(all.map { String($0.split(separator: "/").last!) }) == (try tmpNames()))
        for path in all { try FileManager.default.removeItem(atPath: path) }
        #expect(pool.take() == nil)
        #expect(pool.count == 0)
        // Making again (another listener would): the next miss is answered by
        // the new maker alone, after the old one was asked first and is gone.
        let again = RecordingFileSystem(root: layout.root)
        pool.makeAhead(layout: layout, fileSystem: again)
        #expect(pool.take() == nil)
        #expect(poolHolds(batch))
        #expect(again.calls.filter { $0.hasPrefix("syncfs") }.count == 1)
        #expect(recorder.calls.filter { $0.hasPrefix("syncfs") }.count == 1)
        #expect(recorder.calls.filter { $0.hasPrefix("mkdir") }.count == batch)
        #expect(try tmpNames().count == batch)
        for path in pool.takeAll() { try FileManager.default.removeItem(atPath: path) }
    }

    /// `close` returns only once the thread has ended, and a batch the pool
    /// no longer takes is removed: nothing is left in tmp/, whether the
    /// batch was made before the close or never begun.
    @Test func closeWaitsAndLeavesNothing() throws {
        let maker = BlankMaker(tmp: layout.tmp, fileSystem: recorder)
        let delivered = Mutex(0)
        maker.start { _ in
            delivered.withLock { $0 += 1 }
            return false
        }
        maker.want()
        maker.close()
        #expect(try tmpNames().isEmpty)
        let made = recorder.calls.filter { $0.hasPrefix("mkdir") }.count
        #expect(made == 0 || made == batch)
        #expect(delivered.withLock { $0 } == (made == 0 ? 0 : 1))
        #expect(recorder.calls.filter { $0.hasPrefix("remove") }.count == made)
    }
}
