import Glibc
import PosternBase

/// The steps of the drop protocol (`spool-layout.md`, "Writing a drop"), in order.
///
/// Each is a point after which a crash leaves a defined state; the crash tests
/// kill a real process after each one in turn.
public enum DropStep: String, Sendable, CaseIterable {
    case directoryCreated = "mkdir"
    case messageWritten = "message-write"
    case messageSynced = "message-fsync"
    case envelopeSynced = "envelope-fsync"
    case directorySynced = "directory-fsync"
    /// The commit point: the drop is visible in `drop/`.
    case renamed = "rename"
    case dropAreaSynced = "drop-fsync"
}

/// Writes one drop by the durable protocol: build the message directory in
/// `tmp/`, write and `fsync` both files, `fsync` the directory, rename it into
/// `drop/` and `fsync` `drop/`.
///
/// The rename is the commit point. Before it, a crash leaves only an entry in
/// `tmp/` that the scanner removes once it is old; after it, the drop is
/// complete, because everything in it was made durable before it became visible.
public final class DropWriter {
    /// Modes of what a drop creates: its writer's alone, so that no other
    /// member of the drop group can list, read or change it. A writer that is
    /// not the spool owner adds the spool owner by an ACL entry (`ownerAccess`;
    /// spool-layout.md section 3). The directory keeps the set-group-ID bit it
    /// inherits from `tmp/` (see `SystemFileSystem.makeDirectory`).
    public static let directoryMode: mode_t = 0o700
    public static let fileMode: mode_t = 0o600
    /// What the spool owner gets on another writer's drop: read, write and
    /// search on the directory (to validate it, remove its entries, and move
    /// it, which rewrites its `..`), read on its files. Nothing more: the
    /// daemon copies what it accepts (spool-layout.md 6.5).
    public static let ownerAccess: (directory: mode_t, file: mode_t) = (0o7, 0o4)
    public static let bufferSize = 64 << 10

    public let id: QueueID
    public private(set) var size = 0
    private let layout: SpoolLayout
    private let fileSystem: any FileSystem
    private let observe: (DropStep) -> Void
    /// Where the message is built: `tmp/ID`, or a blank under its old name.
    private let directory: String
    /// The spool owner, when this process is someone else: the one user the
    /// drop's ACL lets in.
    private let reader: uid_t?
    private var messageFD: Int32 = -1
    private var buffer: [UInt8] = []
    private var committed = false
    /// The message directory, open from just before the rename to the end.
    private var handle: DirectoryHandle?
    /// Whether the directory is a blank (`BlankPool`): its files exist, and are truncated as they are opened.
    private var reused = false

    /// Starts a drop: creates `tmp/ID/` and `tmp/ID/message`, or takes a blank
    /// and opens its `message` (spool-layout.md 6.1 steps 1 and 2).
    ///
    /// - Parameters:
    ///   - spoolOwner: the spool owner's uid when the caller knows it (a
    ///     long-running writer looks it up once); nil looks it up here.
    ///   - blanks: where the daemon keeps finished message directories for
    ///     reuse; used only by the spool owner.
    ///   - observe: called after each completed step; the hidden crash hook.
    public init(layout: SpoolLayout, id: QueueID, fileSystem: any FileSystem = SystemFileSystem(),
                spoolOwner: uid_t? = nil, blanks: BlankPool? = nil,
                observe: @escaping (DropStep) -> Void = { _ in }) throws(SpoolIOError) {
        self.layout = layout
        self.id = id
        self.fileSystem = fileSystem
        self.observe = observe
        let owner: uid_t
        if let spoolOwner { owner = spoolOwner } else { owner = try Self.spoolOwner(layout) }
        reader = owner == geteuid() ? nil : owner
        buffer.reserveCapacity(Self.bufferSize)
        // A blank is built in under the name it has in tmp/: the commit's
        // rename names it, and no other rename is needed (or could be lost).
        var blank: (path: String, fd: Int32)?
        if reader == nil, let path = blanks?.take() {
            do throws(SpoolIOError) {
                blank = (path, try fileSystem.reuseFile(path + "/" + SpoolLayout.messageFile))
            } catch {
                _ = try? fileSystem.removeTree(path)   // removed as old meanwhile: a new directory serves
            }
        }
        if let blank {
            directory = blank.path
            messageFD = blank.fd
            reused = true
        } else {
            directory = layout.temporaryPath(id)
            try fileSystem.makeDirectory(directory, mode: Self.directoryMode)
        }
        observe(.directoryCreated)
        do throws(SpoolIOError) {
            let messagePath = directory + "/" + SpoolLayout.messageFile
            if let reader { try fileSystem.grantAccess(directory, to: reader, permissions: Self.ownerAccess.directory) }
            if !reused { messageFD = try fileSystem.createFile(messagePath, mode: Self.fileMode) }
            if let reader { try fileSystem.grantAccess(messagePath, to: reader, permissions: Self.ownerAccess.file) }
        } catch {
            abandon()
            throw error
        }
    }

    deinit {
        if !committed { abandon() }
    }

    /// Appends bytes to the message file (buffered).
    public func write(_ bytes: some Collection<UInt8>) throws(SpoolIOError) {
        buffer.append(contentsOf: bytes)
        size += bytes.count
        if buffer.count >= Self.bufferSize { try flush() }
    }

    private func flush() throws(SpoolIOError) {
        guard !buffer.isEmpty else { return }
        let path = directory + "/" + SpoolLayout.messageFile
        try fileSystem.write(messageFD, buffer, path: path)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Finishes the drop with `envelope` and makes it visible in `drop/`.
    ///
    /// On error nothing is left in `drop/` and the temporary directory is removed.
    ///
    /// `arrival` (epoch seconds) becomes the envelope's modification time, its
    /// resting time before any attempt (spool-layout.md 6.2): a drop whose
    /// input took long to read must not look like a registered attempt.
    ///
    /// With `group`, step 6 is shared with concurrent writers
    /// (`DropGroupCommit`): the area is made durable by one `fsync` that
    /// starts after this drop's rename and serves every rename before it.
    /// The group also names the area: `drop/`, or `queue/` for the daemon's
    /// own listener.
    public func commit(envelopeBytes envelope: [UInt8], arrival: Double? = nil,
                       group: DropGroupCommit? = nil) throws(SpoolIOError) {
        precondition(!committed, "a drop is committed once")
        let messagePath = directory + "/" + SpoolLayout.messageFile
        let envelopePath = directory + "/" + SpoolLayout.envelopeFile
        var envelopeFD: Int32 = -1
        defer { if envelopeFD >= 0 { fileSystem.close(envelopeFD) } }
        do throws(SpoolIOError) {
            try flush()
            observe(.messageWritten)
            envelopeFD = reused ? try fileSystem.reuseFile(envelopePath) : try fileSystem.createFile(envelopePath, mode: Self.fileMode)
            if let reader { try fileSystem.grantAccess(envelopePath, to: reader, permissions: Self.ownerAccess.file) }
            try fileSystem.write(envelopeFD, envelope, path: envelopePath)
            if let arrival { try fileSystem.setModified(envelopePath, epochSeconds: arrival) }
            // Both files on their way to the disk before the first wait: on a
            // journaling file system the message's fsync then commits the
            // envelope's blocks too, and the next two fsyncs find nothing left
            // to commit (one journal commit per drop instead of three).
            fileSystem.startWriteback(messageFD)
            fileSystem.startWriteback(envelopeFD)
            try fileSystem.sync(messageFD, path: messagePath)
            fileSystem.close(messageFD)
            messageFD = -1
            observe(.messageSynced)
            try fileSystem.sync(envelopeFD, path: envelopePath)
            fileSystem.close(envelopeFD)
            envelopeFD = -1
            observe(.envelopeSynced)
            // A blank's entries are durable since it was kept (`BlankPool`):
            // its files were opened truncated, no entry was made.
            if !reused { try fileSystem.syncDirectory(directory) }
            observe(.directorySynced)
            // Opened before the rename: once in drop/, the daemon may move it
            // on at any moment, and a path would then lead nowhere.
            handle = try DirectoryHandle(path: directory)
            try fileSystem.rename(directory, to: layout.path(group?.area ?? .drop, id))
        } catch {
            abandon()
            throw error
        }
        committed = true
        observe(.renamed)
        // The drop is committed. A failure to make the rename durable is still
        // reported (exit 75): the message is there and will be delivered unless
        // the machine loses power, and the caller's retry at worst duplicates it.
        do {
            if let group {
                try group.shared.sync()
            } else {
                try fileSystem.syncDirectory(layout.directory(.drop))
            }
        } catch where error.code == EACCES {
            // A drop-group member may write drop/ but not open it (no read
            // permission, so it cannot list others' drops). syncfs(2) through its
            // own message directory commits the rename with the rest of the file system.
            try fileSystem.syncFileSystem(handle!)
        }
        handle = nil
        observe(.dropAreaSynced)
    }

    /// The spool owner's uid: the owner of `tmp/`, as of every directory of
    /// the layout (`postern init`).
    public static func spoolOwner(_ layout: SpoolLayout) throws(SpoolIOError) -> uid_t {
        var info = stat()
        guard stat(layout.tmp, &info) == 0 else { throw SpoolIOError("stat", layout.tmp) }
        return info.st_uid
    }

    /// Removes the temporary directory; used on every failure path.
    public func abandon() {
        if messageFD >= 0 {
            fileSystem.close(messageFD)
            messageFD = -1
        }
        committed = true
        // Best effort: a leftover in tmp/ is removed by the scanner later.
        _ = try? fileSystem.removeTree(directory)
    }
}
