import Glibc
import PosternBase
import Synchronization

/// Finished message directories kept, emptied, for the next message to be
/// built in (spool-layout.md 6.4, "Blanks").
///
/// Why: every message costs three inodes (its directory, `message`,
/// `envelope.json`), allocated when it is written and freed when it is
/// delivered. On ext4 without a journal, allocating an inode skips every free
/// one released in the last 60 to 360 seconds (`recently_deleted`, one buffer
/// lookup per free inode), so at a few hundred messages a second each `mkdir`
/// and `open(O_CREAT)` walks thousands of them: that walk was 40% of the
/// daemon's CPU in the SMTP end-to-end benchmark, and grew run after run. A
/// directory that is emptied and reused allocates and frees nothing; on any
/// file system it also saves the kernel the bitmap, inode-table and
/// directory-entry updates of three creations and three removals.
///
/// Only the daemon's own writers use blanks (the SMTP listener and its DSNs),
/// and only the daemon fills the pool, from messages it has finished and
/// renamed into `tmp/` (6.4). A directory is kept only when it and its two
/// files are the spool owner's, private (0700 and 0600), and the files have
/// no other link: no other user could hold them open or reach them, so no one
/// but the spool owner can see what is later written into them. Anything else
/// is removed as before. The pool lives in memory; blanks left by a crash are
/// entries of `tmp/` like any other, removed once old (section 7).
public final class BlankPool: Sendable {
    /// Enough for the messages in flight at a high rate; beyond it, finished
    /// messages are removed as before.
    public static let defaultCapacity = 128

    public let capacity: Int
    private let blanks = Mutex<[String]>([])

    public init(capacity: Int = BlankPool.defaultCapacity) {
        self.capacity = capacity
    }

    /// The blanks ready now.
    public var count: Int { blanks.withLock { $0.count } }

    /// A blank to build the next message in (its path in `tmp/`), or nil.
    public func take() -> String? {
        blanks.withLock { $0.popLast() }
    }

    /// Keeps the finished message directory at `path` (in `tmp/`) as a blank:
    /// when there is room and it passes `empty(_:)`, which truncates its files.
    /// False: the caller removes it.
    public func keep(_ path: String) -> Bool {
        guard count < capacity, Self.empty(path) else { return false }
        return blanks.withLock { blanks in
            guard blanks.count < capacity else { return false }
            blanks.append(path)
            return true
        }
    }

    /// Every blank, taken out of the pool: for removal when the daemon stops.
    public func takeAll() -> [String] {
        blanks.withLock { blanks in
            defer { blanks.removeAll() }
            return blanks
        }
    }

    /// Truncates the two files of a finished message directory, after checking
    /// that it may serve as a blank: a directory of this user, mode 0700 (with
    /// any set-group-ID bit it inherited), holding `message` and
    /// `envelope.json` (an update's leftover `envelope.json.tmp` is removed),
    /// both regular files of this user, mode 0600, with one link. Everything
    /// is reached through the directory's descriptor, no link followed.
    static func empty(_ path: String) -> Bool {
        guard let directory = try? DirectoryHandle(path: path), let info = try? directory.status(),
              info.st_uid == geteuid(), info.st_mode & 0o777 == 0o700,
              var names = try? directory.names() else { return false }
        if names.contains(SpoolLayout.envelopeTemporaryFile) {
            guard (try? directory.removeFile(SpoolLayout.envelopeTemporaryFile)) != nil else { return false }
            names.removeAll { $0 == SpoolLayout.envelopeTemporaryFile }
        }
        guard Set(names) == [SpoolLayout.messageFile, SpoolLayout.envelopeFile] else { return false }
        // Both checked before either is truncated: a refused directory is removed as it is.
        var files: [Int32] = []
        defer { for fd in files { _ = Glibc.close(fd) } }
        for name in names {
            let fd = openat(directory.fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return false }
            files.append(fd)
            guard Self.isPrivateFile(fd) else { return false }
        }
        return files.allSatisfy { ftruncate($0, 0) == 0 }
    }

    /// A regular file of this user, mode 0600, with no other link.
    static func isPrivateFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_uid == geteuid()
            && info.st_mode & 0o7777 == 0o600 && info.st_nlink == 1
    }
}
