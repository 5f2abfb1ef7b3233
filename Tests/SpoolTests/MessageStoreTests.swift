import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

struct MessageStoreTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    /// A durable envelope update writes a new temporary file, fsyncs it, swaps
    /// it with the envelope (which stays as the spare), fsyncs the directory;
    /// the next update removes that spare first, never rewriting it in place.
    @Test func durableUpdateOrder() throws {
        var envelope = try spool.plant(.queue)
        envelope.attempts = 1
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.update(envelope, in: .queue, durability: .powerLoss)
        let id = envelope.id
        let steps = [
            "write queue/\(id)/envelope.json.tmp",
            "utimensat queue/\(id)/envelope.json.tmp",
            "fsync queue/\(id)/envelope.json.tmp",
            "close queue/\(id)/envelope.json.tmp",
            "exchange queue/\(id)/envelope.json.tmp queue/\(id)/envelope.json",
            "fsync queue/\(id)/",
        ]
        #expect(recorder.calls == ["unlink queue/\(id)/envelope.json.tmp", "create queue/\(id)/envelope.json.tmp"] + steps)
        #expect(try Envelope.decode(spool.read("queue/\(id)/envelope.json")).attempts == 1)
        #expect(try Envelope.decode(spool.read("queue/\(id)/envelope.json.tmp")).attempts == 0)
        envelope.attempts = 2
        let second = RecordingFileSystem(root: spool.layout.root)
        store.fileSystem = second
        try store.update(envelope, in: .queue, durability: .powerLoss)
        #expect(second.calls == ["unlink queue/\(id)/envelope.json.tmp", "create queue/\(id)/envelope.json.tmp"] + steps)
        #expect(try Envelope.decode(spool.read("queue/\(id)/envelope.json")).attempts == 2)
        #expect(try Envelope.decode(spool.read("queue/\(id)/envelope.json.tmp")).attempts == 1)
    }

    /// A crash-only update skips both fsyncs and still replaces the envelope atomically.
    @Test func lightUpdate() throws {
        var envelope = try spool.plant(.queue)
        envelope.recipients[0].state = .delivered
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.update(envelope, in: .queue, durability: .processCrash)
        #expect(!recorder.calls.contains { $0.hasPrefix("fsync") })
        #expect(try Envelope.decode(spool.read("queue/\(envelope.id)/envelope.json")).recipients[0].state == .delivered)
    }

    /// A move is one rename, then both directories are synced; removal leaves nothing.
    @Test func moveAndRemove() throws {
        let envelope = try spool.plant(.queue)
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.move(envelope.id, from: .queue, to: .hold)
        #expect(recorder.calls == ["rename queue/\(envelope.id) hold/\(envelope.id)", "fsync hold/", "fsync queue/"])
        #expect(try spool.names(.hold) == [envelope.id.rawValue])
        try store.remove(envelope.id, from: .hold)
        #expect(try spool.names(.hold).isEmpty)
    }

    /// An operator's delete takes the message out of its area by one rename into tmp/, fsyncs the area, then removes it: a power loss midway never leaves a half-removed message to quarantine.
    @Test func syncedRemovalLeavesTheAreaFirst() throws {
        let envelope = try spool.plant(.queue)
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.remove(envelope.id, from: .queue, sync: true)
        let id = envelope.id
        #expect(recorder.calls == ["rename queue/\(id) tmp/\(id)", "fsync queue/", "remove tmp/\(id)"])
        #expect(try spool.names(.queue).isEmpty)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// With a leftover tmp/ID in the way, the message is removed where it is, and the area still fsynced.
    @Test func syncedRemovalBesideALeftover() throws {
        let envelope = try spool.plant(.queue)
        let id = envelope.id
        try FileManager.default.createDirectory(atPath: spool.layout.tmp + "/" + id.rawValue + "/x", withIntermediateDirectories: true)
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var store = MessageStore(layout: spool.layout)
        store.fileSystem = recorder
        try store.remove(id, from: .queue, sync: true)
        #expect(recorder.calls == ["remove queue/\(id)", "fsync queue/"])
        #expect(try spool.names(.queue).isEmpty)
    }
}

/// Holding or releasing many messages syncs the two areas once, after every rename.
struct BatchControlTests {
    /// An operator's delete is synced: after a power loss a deleted message
    /// must not come back and be delivered after all.
    @Test func deleteIsDurable() throws {
        let spool = try TemporarySpool()
        let id = try spool.plant(.queue).id
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var control = QueueControl(layout: spool.layout)
        control.store.fileSystem = recorder
        #expect(control.apply(.delete, to: id) == .changed)
        #expect(recorder.calls == ["rename queue/\(id) tmp/\(id)", "fsync queue/", "remove tmp/\(id)"])
        #expect(try spool.names(.queue).isEmpty)
    }

    @Test func holdManySyncsOnce() throws {
        let spool = try TemporarySpool()
        let ids = try (0..<3).map { _ in try spool.plant(.queue).id }
        let recorder = RecordingFileSystem(root: spool.layout.root)
        var control = QueueControl(layout: spool.layout)
        control.store.fileSystem = recorder
        let outcomes = control.apply(.hold(reason: nil), to: ids)
        #expect(outcomes.values.allSatisfy { $0 == .changed } && outcomes.count == 3)
        let calls = recorder.calls
        let renames = calls.indices.filter { calls[$0].hasPrefix("rename") }
        let directorySyncs = calls.indices.filter { calls[$0] == "fsync hold/" || calls[$0] == "fsync queue/" }
        #expect(renames.count == 3)
        #expect(directorySyncs.count == 2)
        #expect(directorySyncs.allSatisfy { $0 > renames.max()! })
        #expect(try spool.names(.hold).sorted() == ids.map(\.rawValue).sorted())
        // Releasing them again: the same shape, back in queue/.
        let release = control.apply(.release, to: ids)
        #expect(release.values.allSatisfy { $0 == .changed })
        #expect(try spool.names(.queue).count == 3)
    }
}
