import Foundation
import Glibc
import PosternCore
import Spool

/// A fresh spool in its own temporary directory, made by `postern init`'s code
/// and removed when the value goes away, so tests can run in parallel.
public final class TemporarySpool: @unchecked Sendable {
    public let directory: String
    public let layout: SpoolLayout

    public init() throws {
        var template = Array((NSTemporaryDirectory() + "/postern-test-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw SpoolIOError("mkdtemp", NSTemporaryDirectory()) }
        directory = String(cString: made)
        layout = SpoolLayout(root: directory + "/spool")
        _ = try SpoolInitializer(layout: layout, owner: getuid(), ownerGroup: getgid(), dropGroup: nil).run()
    }

    deinit {
        // Removal of a test's scratch directory; a failure only leaves litter in /tmp.
        _ = try? SystemFileSystem().removeTree(directory)
    }

    /// The names in one area, sorted.
    public func names(_ area: SpoolLayout.Area) throws -> [String] {
        try DirectoryListing.names(in: layout.directory(area)).sorted()
    }

    public func temporaryNames() throws -> [String] {
        try DirectoryListing.names(in: layout.tmp).sorted()
    }

    public func corruptNames() throws -> [String] {
        try DirectoryListing.names(in: layout.corrupt).sorted()
    }

    /// Reads a file in the spool by its path relative to the spool root.
    public func read(_ relative: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: layout.root + "/" + relative))
    }
}

extension TemporarySpool {
    /// Writes a valid message directory straight into `area` (no protocol, no
    /// fsync): a fixture for scanner and listing tests. Returns its envelope.
    @discardableResult
    public func plant(_ area: SpoolLayout.Area, id: QueueID = QueueIDGenerator().next(),
                      message: String = "Subject: test\r\n\r\nbody\r\n",
                      recipients: [String] = ["bob@example.net"],
                      edit: (inout Envelope) -> Void = { _ in }) throws -> Envelope {
        let directory = layout.path(area, id)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try Data(message.utf8).write(to: URL(fileURLWithPath: directory + "/message"))
        var envelope = Envelope(id: id, sender: "alice@example.org", recipients: recipients.map { Recipient(address: $0) },
                                arrival: Date(timeIntervalSince1970: 1_764_386_254), size: message.utf8.count,
                                uid: Int(getuid()))
        edit(&envelope)
        try envelope.encoded().write(to: URL(fileURLWithPath: directory + "/envelope.json"))
        return envelope
    }
}
