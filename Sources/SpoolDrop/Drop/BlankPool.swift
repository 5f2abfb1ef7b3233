import Glibc
import PosternBase
import Synchronization

/// Finished message directories kept for later messages to be built in
/// (spool-layout.md 6.4, "Blanks").
///
/// Why: every message costs three inodes (its directory, `message`,
/// `envelope.json`), allocated when it is written and freed when it is
/// delivered. On ext4 without a journal, allocating an inode skips every free
/// one released in the last 60 to 360 seconds (`recently_deleted`, one buffer
/// lookup per free inode), so at a few hundred messages a second each `mkdir`
/// and `open(O_CREAT)` walks thousands of them: that walk was 40% of the
/// daemon's CPU in the SMTP end-to-end benchmark, and grew run after run. A
/// directory that is reused allocates and frees nothing; on any
/// file system it also saves the kernel the bitmap, inode-table and
/// directory-entry updates of three creations and three removals. Its files
/// are truncated as the next message opens them (`O_TRUNC`).
///
/// Only the daemon's own SMTP listener builds messages in blanks, and only the
/// daemon fills the pool, from messages it has finished and renamed out of
/// `queue/` into `tmp/` (6.4). A directory is kept only when it and its two
/// files are the spool owner's, private (0700 and 0600), and the files have
/// no other link: no other user could hold them open or reach them, so no one
/// but the spool owner can see what is later written into them. Anything else
/// is removed as before. The pool lives in memory; blanks left by a crash are
/// entries of `tmp/` like any other, removed once old (section 7).
///
/// A blank is handed out only once its removal from `queue/` is durable:
/// after an `fsync` of `queue/` that started after it was kept. Otherwise a
/// power loss could undo the removal of a delivered message while the next
/// message was being written into its files, and bring it back holding another
/// message's bytes, to be delivered again to its recipients. For the same
/// reason nothing is truncated before then: a power loss can only bring a
/// delivered message back whole (6.4), never half emptied. The thread that
/// keeps blanks (the daemon's janitor) makes that `fsync` itself, never on a
/// listener session's way to its 250: when no blank is ready, or once
/// `readyBatch` wait for one (at a high rate, one `fsync` per batch).
public final class BlankPool: Sendable {
    /// Enough for the messages in flight at a high rate; beyond it, finished
    /// messages are removed as before.
    public static let defaultCapacity = 128
    /// Blanks kept, at most, per `fsync` of `queue/` that readies them.
    public static let defaultReadyBatch = 16

    public let capacity: Int
    public let readyBatch: Int
    /// Blanks ready to hand out (the newest last, warmest in the caches),
    /// and those kept since the last `fsync` of `queue/` started.
    private let blanks = Mutex<(ready: [String], waiting: [String])>(([], []))
    private let syncQueue: @Sendable () throws(SpoolIOError) -> Void

    /// - Parameter layout: the spool whose `queue/` the blanks were taken out of.
    public init(layout: SpoolLayout, capacity: Int = BlankPool.defaultCapacity, readyBatch: Int = BlankPool.defaultReadyBatch,
                fileSystem: any FileSystem = SystemFileSystem()) {
        self.capacity = capacity
        self.readyBatch = max(1, readyBatch)
        let queue = layout.directory(.queue)
        syncQueue = { () throws(SpoolIOError) in try fileSystem.syncDirectory(queue) }
    }

    /// The blanks kept, ready or not.
    public var count: Int { blanks.withLock { $0.ready.count + $0.waiting.count } }

    /// A ready blank to build the next message in (its path in `tmp/`), or nil.
    public func take() -> String? {
        blanks.withLock { $0.ready.popLast() }
    }

    /// Keeps the finished message directory at `path`, renamed out of `queue/`
    /// into `tmp/`, as a blank: when there is room and it passes
    /// `isReusable(_:)`. False: the caller removes it. When no blank is
    /// ready, or `readyBatch` wait, it `fsync`s `queue/` and readies those
    /// kept before.
    public func keep(_ path: String) -> Bool {
        guard count < capacity, Self.isReusable(path) else { return false }
        let batch: [String]? = blanks.withLock { blanks in
            blanks.waiting.append(path)
            guard blanks.waiting.count >= readyBatch || blanks.ready.isEmpty else { return nil }
            defer { blanks.waiting.removeAll() }
            return blanks.waiting
        }
        guard let batch else { return true }
        // Started after each of these was renamed out of queue/.
        do throws(SpoolIOError) {
            try syncQueue()
        } catch {
            // Not ready yet: they wait for the next batch's fsync.
            blanks.withLock { $0.waiting.append(contentsOf: batch) }
            return true
        }
        blanks.withLock { $0.ready.append(contentsOf: batch) }
        return true
    }

    /// Every blank, taken out of the pool: for removal when the daemon stops.
    public func takeAll() -> [String] {
        blanks.withLock { blanks in
            defer { blanks = ([], []) }
            return blanks.ready + blanks.waiting
        }
    }

    /// Whether a finished message directory may serve as a blank: a directory
    /// of this user, mode 0700 (with any set-group-ID bit it inherited),
    /// holding `message` and `envelope.json` (an update's leftover
    /// `envelope.json.tmp` is removed), both regular files of this user, mode
    /// 0600, with one link. Everything is reached through the directory's
    /// descriptor, no link followed.
    static func isReusable(_ path: String) -> Bool {
        guard let directory = try? DirectoryHandle(path: path), let info = try? directory.status(),
              info.st_uid == geteuid(), info.st_mode & 0o777 == 0o700,
              var names = try? directory.names() else { return false }
        if names.contains(SpoolLayout.envelopeTemporaryFile) {
            guard (try? directory.removeFile(SpoolLayout.envelopeTemporaryFile)) != nil else { return false }
            names.removeAll { $0 == SpoolLayout.envelopeTemporaryFile }
        }
        guard Set(names) == [SpoolLayout.messageFile, SpoolLayout.envelopeFile] else { return false }
        return names.allSatisfy { name in
            let fd = openat(directory.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { _ = Glibc.close(fd) }
            return Self.isPrivateFile(fd)
        }
    }

    /// A regular file of this user, mode 0600, with no other link.
    static func isPrivateFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_uid == geteuid()
            && info.st_mode & 0o7777 == 0o600 && info.st_nlink == 1
    }
}
