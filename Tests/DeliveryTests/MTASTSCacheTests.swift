import Foundation
import Glibc
import Testing
@testable import Delivery

/// The MTA-STS policy cache's files (`MTASTSCache`, spool-layout.md 11): a
/// file read once is taken from memory while it is unchanged, and read again
/// as soon as it is replaced, edited or removed.
struct MTASTSCacheTests {
    let directory = NSTemporaryDirectory() + "postern-mta-sts-cache-\(UUID().uuidString)"

    static func entry(id: String, mx: String) throws -> CachedMTASTSPolicy {
        let text = "version: STSv1\r\nmode: enforce\r\nmx: \(mx)\r\nmax_age: 86400\r\n"
        return CachedMTASTSPolicy(domain: "example.org", id: id, fetched: 1_764_386_254, text: text,
                                  policy: try MTASTSPolicy.parse(Array(text.utf8)))
    }

    /// Unchanged (same inode, size and modification time), the file is not read
    /// again: bytes changed behind the cache's back with the time put back are
    /// not seen. Replaced by a store, edited with a new time, or removed, it is.
    @Test func unchangedFileIsNotReadAgain() throws {
        let cache = MTASTSCache(directory: directory)
        try cache.store(Self.entry(id: "one", mx: "mx1.example.org"))
        #expect(cache.load("example.org")?.id == "one")

        // The same inode, size and time, other bytes: served from memory.
        let path = directory + "/example.org.json"
        var before = stat()
        #expect(lstat(path, &before) == 0)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let edited = Data(String(decoding: original, as: UTF8.self).replacingOccurrences(of: "\"one\"", with: "\"two\"").utf8)
        #expect(edited.count == original.count)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: edited)
        try handle.close()
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0)
        #expect(cache.load("example.org")?.id == "one")

        // A new time: read again.
        times[1].tv_sec += 1
        #expect(utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0)
        #expect(cache.load("example.org")?.id == "two")

        // Replaced by a store (a new file): read again.
        try cache.store(Self.entry(id: "three", mx: "mx3.example.org"))
        #expect(cache.load("example.org")?.policy.mx == ["mx3.example.org"])

        // Removed by hand: gone, and fetched again by its user.
        #expect(unlink(path) == 0)
        #expect(cache.load("example.org") == nil)
    }
}
