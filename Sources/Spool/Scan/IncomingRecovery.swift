import Foundation
import PosternCore
import SpoolDrop

/// What a crash or a power loss left in `incoming/`, resolved before anyone
/// writes there again (spool-layout.md 7, "incoming/"): each sealed message
/// is queued, everything else removed.
///
/// Why: the SMTP listener answers 250 once its message's directory in
/// `incoming/` is durable and sealed (`Seal`), and renames it into `queue/`
/// after. A crash between the two leaves an acknowledged message in
/// `incoming/`, which this queues; a session cut short leaves a message no one
/// was told of, which this removes. A power loss may leave either with
/// anything of what was written since the last `fsync`: only a matching seal
/// tells a whole message from that, and only a whole message can have been
/// acknowledged.
///
/// Only the holder of the spool's lock runs it, before the listener starts
/// (the daemon) or with no daemon running (`postern check`).
public struct IncomingRecovery {
    public struct Report: Sendable, Equatable {
        /// Sealed messages moved into `queue/`.
        public var queued: [QueueID] = []
        /// Entries removed, each with why it was not a sealed message.
        public var removed: [(name: String, reason: String)] = []
        /// Entries that could be neither queued nor removed, with the error.
        public var failed: [(name: String, error: String)] = []

        public init() {}

        public static func == (lhs: Report, rhs: Report) -> Bool {
            lhs.queued == rhs.queued && lhs.removed.map(\.name) == rhs.removed.map(\.name)
                && lhs.removed.map(\.reason) == rhs.removed.map(\.reason) && lhs.failed.map(\.name) == rhs.failed.map(\.name)
        }
    }

    public let layout: SpoolLayout
    let fileSystem: any FileSystem

    public init(layout: SpoolLayout, fileSystem: any FileSystem = SystemFileSystem()) {
        self.layout = layout
        self.fileSystem = fileSystem
    }

    /// Queues each sealed message of `incoming/` and removes the rest; then
    /// `queue/` and `incoming/` are fsynced once, before it returns. A spool
    /// without `incoming/` has nothing to recover.
    public func recover() -> Report {
        var report = Report()
        let incoming: DirectoryHandle
        do {
            incoming = try DirectoryHandle(path: layout.incoming)
        } catch {
            if error.code != ENOENT { report.failed.append((layout.incoming, "\(error)")) }
            return report
        }
        let names: [String]
        do {
            names = try incoming.names().sorted()
        } catch {
            report.failed.append((layout.incoming, "\(error)"))
            return report
        }
        let trusted = MessageDirectory.trustedOwners(of: layout)
        for name in names {
            guard let id = QueueID(name) else {
                remove(name, in: incoming, reason: "not a queue ID", into: &report)
                continue
            }
            if let problem = Self.problem(MessageDirectory(path: layout.incoming + "/" + name), id: id, trustedOwners: trusted) {
                remove(name, in: incoming, reason: problem, into: &report)
                continue
            }
            do {
                try fileSystem.rename(layout.incoming + "/" + name, to: layout.path(.queue, id))
                report.queued.append(id)
            } catch where error.code == EEXIST {
                remove(name, in: incoming, reason: "queue/\(name) exists already", into: &report)
            } catch {
                report.failed.append((name, "\(error)"))
            }
        }
        guard !report.queued.isEmpty || !report.removed.isEmpty else { return report }
        for directory in [layout.directory(.queue), layout.incoming] {
            do {
                try fileSystem.syncDirectory(directory)
            } catch {
                report.failed.append((directory, "\(error)"))
            }
        }
        return report
    }

    /// Why the entry is not a sealed message, or nil when it is one: a
    /// directory of root or the spool owner holding `message` and
    /// `envelope.json` (checked as the scanner checks `queue/`, no link
    /// followed), the envelope of this ID and the message's size, and a seal
    /// that matches both. The seal may be in the spare, `envelope.json.tmp`:
    /// the daemon's first update of a message renamed into `queue/` swaps the
    /// sealed envelope there, and a power loss may then undo the rename but
    /// keep the update (6.2).
    static func problem(_ entry: MessageDirectory, id: QueueID, trustedOwners: Set<uid_t>) -> String? {
        let opened: MessageDirectory.Opened
        do {
            opened = try entry.open(id: id, trustedOwners: trustedOwners)
        } catch {
            return error.description
        }
        guard trustedOwners.contains(opened.owner) else { return "owned by uid \(opened.owner)" }
        var problem = "no seal, or one that does not match: never written whole, never acknowledged"
        for name in [SpoolLayout.envelopeFile, SpoolLayout.envelopeTemporaryFile] {
            do {
                if try sealMatches(envelope: name, in: opened.directory) { return nil }
            } catch {
                if name == SpoolLayout.envelopeFile { problem = "cannot be read: \(error)" }
            }
        }
        return problem
    }

    /// Whether the envelope in file `name` carries a seal that matches the message.
    private static func sealMatches(envelope name: String, in directory: DirectoryHandle) throws -> Bool {
        let envelope = [UInt8](try MessageDirectory.readEnvelope(in: directory, name: name))
        let (fd, _) = try directory.openRegularFile(SpoolLayout.messageFile)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        return try Seal.matches(envelope: envelope) { (hasher: inout XXH64) throws(SystemCallError) in
            while true {
                let count = try POSIX.readSome(fd, into: &buffer)
                if count == 0 { break }
                hasher.update(buffer[..<count])
            }
        }
    }

    private func remove(_ name: String, in incoming: DirectoryHandle, reason: String, into report: inout Report) {
        do {
            try incoming.removeTree(name)
            report.removed.append((name, reason))
        } catch {
            report.failed.append((name, "\(error)"))
        }
    }
}
