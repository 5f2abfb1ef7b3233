import Foundation
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// The listing's order and completeness (issue #15): an area of at most `sortLimit` entries in
/// queue-ID order, a bigger one in directory order as its names are read, every message once,
/// names that are not queue IDs last, each as a problem.
struct SpoolListingTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    /// Every item of a listing, in the order emitted (IDs, or `problem:ORIGIN`).
    func listed(_ areas: [SpoolLayout.Area], sortLimit: Int, threads: Int = 3) throws -> [String] {
        var listing = SpoolListing(layout: spool.layout, areas: areas)
        listing.sortLimit = sortLimit
        listing.threads = threads
        var out: [String] = []
        try listing.run(window: 4, process: { items in
            items.map { item in
                switch item {
                case .message(_, let summary): summary.id.rawValue
                case .problem(let origin, _): "problem:" + origin
                }
            }
        }, emit: { out += $0 })
        return out
    }

    /// The names of an area as `getdents` returns them, queue IDs only.
    func directoryOrder(_ area: SpoolLayout.Area) throws -> [String] {
        try DirectoryHandle(path: spool.layout.directory(area)).names().filter { QueueID($0) != nil }
    }

    @Test func smallAreasComeInIDOrder() throws {
        let queued = try (0..<300).map { _ in try spool.plant(.queue).id.rawValue }
        let held = try (0..<40).map { _ in try spool.plant(.hold).id.rawValue }
        #expect(try listed([.queue, .hold], sortLimit: 300) == queued.sorted() + held.sorted())
    }

    /// Over the limit, queue/ comes as the directory lists it (chunks of 32 and 256 span the
    /// batches of names), hold/ still sorted: 700 and 20 with a limit of 100.
    @Test func bigAreasStreamInDirectoryOrder() throws {
        for _ in 0..<700 { try spool.plant(.queue) }
        let held = try (0..<20).map { _ in try spool.plant(.hold).id.rawValue }
        let order = try directoryOrder(.queue)
        #expect(order.count == 700)
        #expect(order != order.sorted(), "the file system happens to list in ID order; the test proves nothing")
        #expect(try listed([.queue, .hold], sortLimit: 100) == order + held.sorted())
        #expect(try listed([.queue, .hold], sortLimit: 100, threads: 1) == order + held.sorted())
    }

    @Test func strangersComeLastAsProblems() throws {
        let ids = try (0..<50).map { _ in try spool.plant(.queue).id.rawValue }
        try FileManager.default.createDirectory(atPath: spool.layout.directory(.queue) + "/zz-not-an-id",
                                                withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: spool.layout.directory(.hold) + "/also-not",
                                                withIntermediateDirectories: false)
        let out = try listed([.queue, .hold], sortLimit: 10)
        #expect(Array(out.prefix(50)).sorted() == ids.sorted())
        #expect(Array(out.dropFirst(50)) == ["problem:queue/zz-not-an-id", "problem:hold/also-not"])
    }

    /// A torn `envelope.json` beside the spare an update kept is listed from the
    /// spare, as every reader takes it (spool-layout.md 6.2); with no good spare, a problem.
    @Test func tornEnvelopeIsListedFromTheSpare() throws {
        var envelope = try spool.plant(.queue)
        envelope.attempts = 1
        try MessageStore(layout: spool.layout).update(envelope, in: .queue, durability: .processCrash)
        let path = spool.layout.path(.queue, envelope.id)
        try Data().write(to: URL(fileURLWithPath: path + "/envelope.json"))
        #expect(try listed([.queue], sortLimit: 10) == [envelope.id.rawValue])
        try Data("{".utf8).write(to: URL(fileURLWithPath: path + "/envelope.json.tmp"))
        #expect(try listed([.queue], sortLimit: 10) == ["problem:queue/\(envelope.id)"])
    }

    @Test func emptyAreasListNothing() throws {
        #expect(try listed([.queue, .hold, .drop], sortLimit: 0).isEmpty)
        #expect(try listed([.queue], sortLimit: 10_000).isEmpty)
    }
}
