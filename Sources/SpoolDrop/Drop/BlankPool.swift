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
/// A blank is handed out only once its removal from `queue/` is durable: after
/// an `fsync` of `queue/` that started after it was kept (`follow`; the
/// listener's group commit makes one for every batch of messages). Otherwise a
/// power loss could undo the removal of a delivered message while the next
/// message was being written into its files, and bring it back holding another
/// message's bytes, to be delivered again to its recipients. For the same
/// reason nothing is truncated before then: a power loss can only bring a
/// delivered message back whole (6.4), never half emptied.
///
/// When none is ready, the pool asks its `BlankMaker` for a batch of new,
/// empty ones (`makeAhead`), ready as soon as they are durable. A kept one
/// that is ready is still handed out first: it allocates nothing.
public final class BlankPool: Sendable {
    /// Enough for the messages in flight at a high rate; beyond it, finished
    /// messages are removed as before.
    public static let defaultCapacity = 128

    public let capacity: Int
    private struct Blank {
        /// Its path in `tmp/`.
        let path: String
        /// The number of the `fsync` of `queue/` after which it is ready: 0
        /// for one made ahead, which was never in `queue/`.
        let readyAfter: Int
        var made: Bool { readyAfter == 0 }
    }

    /// The made blanks first, then the kept ones in the order kept (so the
    /// numbers never decrease, and the ready ones are a prefix).
    private let blanks = Mutex<[Blank]>([])
    private let queueSync = Mutex<DropGroupCommit?>(nil)
    /// What makes blanks when none is ready (`makeAhead`), until `takeAll`.
    private let maker = Mutex<BlankMaker?>(nil)

    public init(capacity: Int = BlankPool.defaultCapacity) {
        self.capacity = capacity
    }

    /// The group commit whose `fsync`s of `queue/` make removals durable.
    /// Until one is followed, no blank is handed out.
    public func follow(_ commit: DropGroupCommit) {
        precondition(commit.area == .queue, "blanks wait for fsyncs of queue/")
        queueSync.withLock { $0 = commit }
    }

    /// From now until `takeAll`, makes a batch of new blanks in `layout`'s
    /// `tmp/` whenever a message finds none ready, or the made ones run low
    /// (`BlankMaker`); `made` is told the size of each batch taken in.
    public func makeAhead(layout: SpoolLayout, fileSystem: any FileSystem,
                          made: @escaping @Sendable (Int) -> Void = { _ in }) {
        let new = BlankMaker(tmp: layout.tmp, fileSystem: fileSystem)
        guard maker.withLock({ maker in
            guard maker == nil else { return false }
            maker = new
            return true
        }) else { return }
        new.start { [weak self] paths in
            guard self?.add(made: paths) == true else { return false }
            made(paths.count)
            return true
        }
    }

    /// Takes in blanks the maker made, ready at once. False once the pool
    /// takes none (`takeAll`): the maker removes them. (Any taken in before
    /// are in `takeAll`'s answer, which waits for the maker to end.)
    private func add(made paths: [String]) -> Bool {
        guard maker.withLock({ $0 != nil }) else { return false }
        blanks.withLock { $0.insert(contentsOf: paths.map { Blank(path: $0, readyAfter: 0) }, at: 0) }
        return true
    }

    /// The blanks kept, ready or not.
    public var count: Int { blanks.withLock { $0.count } }

    /// A ready blank to build the next message in (its path in `tmp/`), or nil.
    public func take() -> String? {
        guard let done = queueSync.withLock({ $0?.syncCount }) else { return nil }
        let (taken, madeLeft) = blanks.withLock { blanks -> (String?, Int) in
            // The newest ready one: a kept one if any, the warmest in the caches.
            let taken = blanks.lastIndex(where: { $0.readyAfter <= done }).map { blanks.remove(at: $0).path }
            // The made ones are the first (`add`).
            return (taken, blanks.prefix(while: \.made).count)
        }
        if let maker = maker.withLock({ $0 }), taken == nil || madeLeft < maker.batch / 2 { maker.want() }
        return taken
    }

    /// Keeps the finished message directory at `path`, renamed out of `queue/`
    /// into `tmp/`, as a blank: when there is room and it passes
    /// `isReusable(_:)`. False: the caller removes it.
    public func keep(_ path: String) -> Bool {
        guard let commit = queueSync.withLock({ $0 }), count < capacity else { return false }
        // Any fsync of queue/ that starts from now on started after the removal's rename.
        let readyAfter = commit.shared.startedCount + 1
        guard Self.isReusable(path) else { return false }
        return blanks.withLock { blanks in
            guard blanks.count < capacity else { return false }
            blanks.append(Blank(path: path, readyAfter: readyAfter))
            return true
        }
    }

    /// Every blank, taken out of the pool, once the maker has ended: for
    /// removal when the daemon stops.
    public func takeAll() -> [String] {
        let ending = maker.withLock { maker in
            defer { maker = nil }
            return maker
        }
        ending?.close()
        return blanks.withLock { blanks in
            defer { blanks.removeAll() }
            return blanks.map(\.path)
        }
    }

    /// Whether a finished message directory may serve as a blank: a directory
    /// of this user, mode 0700 (with any set-group-ID bit it inherited),
    /// holding `message` and `envelope.json` (an update's leftover
    /// `envelope.json.tmp` is removed), both regular files of this user, mode
    /// 0600, with one link. Everything is reached through the directory's
    /// descriptor, no link followed.
    ///
    /// A blank's entries are durable when it is kept, so that the message
    /// later built in it needs no `fsync` of its directory (spool-layout.md
    /// 6.1 step 4): its files are opened truncated, and no entry is made or
    /// removed. They are unless envelope updates swapped the envelope with its
    /// spare (6.2, without `fsync`): then the spare is removed and the
    /// directory fsynced here, on the janitor's thread.
    static func isReusable(_ path: String) -> Bool {
        guard let directory = try? DirectoryHandle(path: path), let info = try? directory.status(),
              info.st_uid == geteuid(), info.st_mode & 0o777 == 0o700,
              var names = try? directory.names() else { return false }
        let updated = names.contains(SpoolLayout.envelopeTemporaryFile)
        if updated {
            guard (try? directory.removeFile(SpoolLayout.envelopeTemporaryFile)) != nil else { return false }
            names.removeAll { $0 == SpoolLayout.envelopeTemporaryFile }
        }
        guard Set(names) == [SpoolLayout.messageFile, SpoolLayout.envelopeFile] else { return false }
        let intact = names.allSatisfy { name in
            let fd = openat(directory.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { _ = Glibc.close(fd) }
            return Self.isPrivateFile(fd)
        }
        return intact && (!updated || fsync(directory.fd) == 0)
    }

    /// A regular file of this user, mode 0600, with no other link.
    static func isPrivateFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_uid == geteuid()
            && info.st_mode & 0o7777 == 0o600 && info.st_nlink == 1
    }
}
