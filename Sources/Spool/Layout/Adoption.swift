import CSysShim
import Foundation
import Glibc
import PosternCore

/// Takes a message away from the user who dropped it (spool-layout.md 6.5).
///
/// A drop's directory and files belong to whoever wrote them. A renamed
/// directory keeps its inode, so a writer who kept a descriptor of `tmp/ID`
/// could still, after acceptance, swap `message` for a link to a file only the
/// daemon may read (and have it returned in a DSN), or for a FIFO that hangs
/// the reader. Renaming cannot end that ownership and only root could `chown`,
/// so, as Postfix's `pickup` and `cleanup` do with `postdrop`'s files, the
/// daemon copies the message into a directory and files of its own, built in
/// `tmp/` and renamed into place in one step, then removes the writer's copy.
///
/// Drops by root and by the spool owner are trusted and only renamed.
public struct Adoption {
    public let layout: SpoolLayout
    public var fileSystem: any FileSystem = SystemFileSystem()
    var ids = QueueIDGenerator()

    /// The mode of an adopted message directory: the owner's alone.
    public static let directoryMode: mode_t = 0o700

    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    /// What an untrusted drop may say: the submission (sender, recipients and
    /// their ORCPT, arrival, size, uid, Message-ID, 8BITMIME, SMTPUTF8,
    /// REQUIRETLS, and RFC 3461's RET and ENVID). Everything else is the
    /// daemon's or the operator's to set: a `transport` would bypass the
    /// routes (and use a smarthost's credentials),
    /// `max_attempts`, delivery state, history and unknown keys are reset.
    /// Returns the fields that were dropped, for the log.
    public static func submitted(_ dropped: Envelope) -> (envelope: Envelope, ignored: [String]) {
        var envelope = Envelope(id: dropped.id, sender: dropped.sender,
                                recipients: dropped.recipients.map { Recipient(address: $0.address, original: $0.original) },
                                arrival: dropped.arrival, size: dropped.size, uid: dropped.uid)
        envelope.messageID = dropped.messageID
        envelope.eightBit = dropped.eightBit
        envelope.smtputf8 = dropped.smtputf8
        envelope.requireTLS = dropped.requireTLS
        // The sender's own DSN choices: they shape only the notices the sender gets.
        envelope.dsnReturn = dropped.dsnReturn
        envelope.envelopeID = dropped.envelopeID
        var ignored = withoutOverrides(dropped).ignored
        if dropped.attempts != 0 || dropped.nextAttempt != nil || dropped.lastResult != nil || !dropped.history.isEmpty
            || dropped.recipients.contains(where: { $0.state != .pending || $0.attempts != 0 || $0.lastResult != nil }) {
            ignored.append("delivery state")
        }
        if !dropped.dialedIPs.isEmpty { ignored.append("dialed_ips") }
        if dropped.holdReason != nil { ignored.append("hold_reason") }
        if dropped.notifyNever { ignored.append("notify") }
        if !dropped.dsnPending.isEmpty { ignored.append("dsn_pending") }
        ignored += dropped.extra.keys.sorted()
        return (envelope, ignored)
    }

    /// `envelope` without `transport` and `max_attempts`, which only root and
    /// the spool owner may set (they choose a smarthost, its credentials, and
    /// how long to try), and which of them it had. For a message adopted where
    /// it is, whose delivery state is the daemon's own record.
    public static func withoutOverrides(_ envelope: Envelope) -> (envelope: Envelope, ignored: [String]) {
        var stripped = envelope
        stripped.transport = nil
        stripped.maxAttempts = nil
        return (stripped, [envelope.transport.map { _ in "transport" }, envelope.maxAttempts.map { _ in "max_attempts" }].compactMap { $0 })
    }

    /// Copies the validated message `opened` (in `source`) with `envelope` into
    /// a new directory owned by this process, and puts it at `destination/ID`:
    /// by `renameat2(RENAME_NOREPLACE)` from `drop/`, or by `RENAME_EXCHANGE`
    /// over the old directory when adopting in place. That rename is the
    /// commit point; the writer's directory is removed after it.
    ///
    /// - Throws: `MessageDirectory.Problem` when the message changed under the
    ///   copy (quarantine it), `SpoolIOError` when the spool failed (retry).
    public func adopt(_ opened: MessageDirectory.Opened, envelope: Envelope,
                      from source: SpoolLayout.Area, to destination: SpoolLayout.Area) throws {
        let stage = layout.tmp + "/" + ids.next().rawValue
        try fileSystem.makeDirectory(stage, mode: Self.directoryMode)
        let target = layout.path(destination, envelope.id)
        do {
            try copyMessage(from: opened.directory, size: envelope.size, to: stage + "/" + SpoolLayout.messageFile)
            // At its resting time, as every writer leaves it (Envelope+Registration).
            try fileSystem.writeFile(stage + "/" + SpoolLayout.envelopeFile, Array(envelope.encoded()), mode: DropWriter.fileMode,
                                     modified: envelope.restingTime.timeIntervalSince1970)
            try fileSystem.syncDirectory(stage)
            if source == destination {
                try fileSystem.exchange(stage, target)
            } else {
                try fileSystem.rename(stage, to: target)
            }
        } catch {
            try? fileSystem.removeTree(stage)   // never visible; the scanner would remove it later too
            throw error
        }
        try fileSystem.syncDirectory(layout.directory(destination))
        // The writer's copy: whatever now stands at its name, removed through
        // descriptors. A failure leaves a duplicate that the scanner quarantines.
        if source == destination {
            try fileSystem.removeTree(stage)
        } else {
            try fileSystem.removeTree(layout.path(source, envelope.id))
        }
    }

    /// Copies exactly `size` octets of the directory's `message` (a regular
    /// file with one link, opened without following links or blocking).
    private func copyMessage(from directory: DirectoryHandle, size: Int, to path: String) throws {
        let (input, info) = try directory.openRegularFile(SpoolLayout.messageFile)
        defer { _ = Glibc.close(input) }
        guard Int(info.st_size) == size else {
            throw MessageDirectory.Problem("message changed while being accepted: \(info.st_size) octets, the envelope says \(size)")
        }
        let output = try fileSystem.createFile(path, mode: DropWriter.fileMode)
        do {
            var copied = 0
            var inKernel = true
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while copied < size {
                let count: Int
                do throws(SystemCallError) {
                    if inKernel {
                        count = try POSIX.uninterrupted { csys_copy_file_range(input, output, UInt(size - copied)) }
                    } else {
                        count = try POSIX.uninterrupted {
                            buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, min($0.count, size - copied)) }
                        }
                    }
                } catch where inKernel && [EXDEV, ENOSYS, EINVAL, EOPNOTSUPP].contains(error.code) {
                    inKernel = false   // another file system or an old kernel: copy through memory
                    continue
                } catch {
                    throw SpoolIOError("copy", directory.path + "/" + SpoolLayout.messageFile, error.code)
                }
                if !inKernel, count > 0 { try fileSystem.write(output, Array(buffer[0..<count]), path: path) }
                guard count > 0 else {
                    throw MessageDirectory.Problem("message changed while being accepted: it ended after \(copied) of \(size) octets")
                }
                copied += count
            }
            try fileSystem.sync(output, path: path)
        } catch {
            fileSystem.close(output)
            throw error
        }
        fileSystem.close(output)
    }
}
