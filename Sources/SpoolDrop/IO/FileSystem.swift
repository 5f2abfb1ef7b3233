import Glibc
import PosternBase

/// A file-system call that failed: which call, on which path, and errno.
public struct SpoolIOError: Error, Sendable, Equatable, CustomStringConvertible {
    public let operation: String
    public let path: String
    public let code: Int32

    public init(_ operation: String, _ path: String, _ code: Int32 = errno) {
        self.operation = operation
        self.path = path
        self.code = code
    }

    public var description: String {
        "\(operation) \(path): \(POSIX.errorText(code))"
    }

    /// The sysexits status a command reports for this failure: a full or
    /// read-only disk, a lock or a quota is temporary (the caller should retry),
    /// a permission problem is `EX_NOPERM`, a missing spool is `EX_CANTCREAT`.
    public var exitStatus: ExitStatus {
        switch code {
        // EOPNOTSUPP: a spool on a file system without POSIX ACLs, which a drop
        // by another user than the spool owner needs (spool-layout.md section 3):
        // the caller keeps the message and retries once the admin has fixed it.
        case ENOSPC, EDQUOT, EROFS, EAGAIN, EINTR, EMFILE, ENFILE, ENOMEM, EBUSY, EOPNOTSUPP: .tempFail
        case EACCES, EPERM: .noPermission
        case ENOENT, ENOTDIR: .cantCreate
        default: .ioError
        }
    }
}

/// The file-system calls that the spool's durable write protocols are made of.
///
/// Everything that writes the spool goes through this protocol, so that a test
/// can record the exact sequence of durable operations and compare it with
/// `spool-layout.md`. Paths are absolute; no call follows a symbolic link.
public protocol FileSystem: Sendable {
    /// `mkdir(2)`; fails if the path exists.
    func makeDirectory(_ path: String, mode: mode_t) throws(SpoolIOError)
    /// Creates a new regular file for writing (`O_CREAT|O_EXCL|O_NOFOLLOW`).
    func createFile(_ path: String, mode: mode_t) throws(SpoolIOError) -> Int32
    /// Opens an existing file of a blank for writing, truncated
    /// (`O_WRONLY|O_TRUNC|O_NOFOLLOW`), after checking that it is still a
    /// private regular file of this user with one link (`BlankPool`).
    func reuseFile(_ path: String) throws(SpoolIOError) -> Int32
    /// Gives `user` the access `permissions` (0 to 7: read, write, search) to
    /// a file or directory this process owns, by a POSIX access ACL that
    /// leaves its owner's mode bits and gives its group and others nothing
    /// (`lsetxattr(2)` of `system.posix_acl_access`; no link followed). How a
    /// drop lets the spool owner, and no other member of the drop group, in
    /// (spool-layout.md section 3). `EOPNOTSUPP` on a file system without ACLs.
    func grantAccess(_ path: String, to user: uid_t, permissions: mode_t) throws(SpoolIOError)
    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError)
    /// `fsync(2)` of an open file.
    func sync(_ fd: Int32, path: String) throws(SpoolIOError)
    /// Starts writing an open file's data to the disk without waiting
    /// (`sync_file_range(2)` with `SYNC_FILE_RANGE_WRITE`): a hint that
    /// promises nothing and fails silently. Started for every file before
    /// the first `sync`, it lets one journal commit make them all durable.
    func startWriteback(_ fd: Int32)
    func close(_ fd: Int32)
    /// Opens the directory without following links and `fsync(2)`s it, making
    /// the creation, rename or removal of its entries durable.
    func syncDirectory(_ path: String) throws(SpoolIOError)
    /// `syncfs(2)` on the file system holding an open directory: for a writer
    /// that may not open a parent directory to `fsync` it. The directory is
    /// opened beforehand because, once renamed into `drop/`, it may be moved
    /// on by the daemon at any moment.
    func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError)
    /// `renameat2(2)` with `RENAME_NOREPLACE`: never overwrites an existing entry.
    func rename(_ source: String, to destination: String) throws(SpoolIOError)
    /// `renameat2(2)` with `RENAME_EXCHANGE`: swaps two existing entries in one
    /// step, for replacing a message directory without a moment of absence.
    func exchange(_ first: String, _ second: String) throws(SpoolIOError)
    /// `rename(2)` that replaces the destination, for `envelope.json` updates.
    func replace(_ source: String, with destination: String) throws(SpoolIOError)
    /// Removes a file, a link, or a directory tree, without following links,
    /// through directory descriptors (`DirectoryHandle.removeTree`).
    func removeTree(_ path: String) throws(SpoolIOError)
    /// Removes a file or a link; refuses a directory (`EISDIR`). For names that
    /// must be files, such as a leftover `envelope.json.tmp`.
    func removeFile(_ path: String) throws(SpoolIOError)
    /// Sets the modification time of a file, without following a link
    /// (`utimensat(2)` with `AT_SYMLINK_NOFOLLOW`); the access time is left
    /// alone. Envelopes carry their next attempt time so (spool-layout.md 6.2).
    func setModified(_ path: String, epochSeconds: Double) throws(SpoolIOError)
}

extension FileSystem {
    /// Writes all of `data` to an open file.
    public func write(_ fd: Int32, _ data: [UInt8], path: String) throws(SpoolIOError) {
        // Array.withUnsafeBytes rethrows untyped errors; carry the typed one out by hand.
        var failure: SpoolIOError?
        data.withUnsafeBytes { bytes in
            do throws(SpoolIOError) { try write(fd, bytes, path: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// No hint by default: test doubles record the durable steps only.
    public func startWriteback(_ fd: Int32) {}

    /// Writes all of `data` to a new file, `fsync`s and closes it; with
    /// `modified`, its modification time is set first, and synced with it;
    /// with `reader`, that user may read it (`grantAccess`), synced with it too.
    public func writeFile(_ path: String, _ data: [UInt8], mode: mode_t, modified: Double? = nil,
                          reader: uid_t? = nil) throws(SpoolIOError) {
        let fd = try createFile(path, mode: mode)
        do throws(SpoolIOError) {
            if let reader { try grantAccess(path, to: reader, permissions: 0o4) }
            try write(fd, data, path: path)
            if let modified { try setModified(path, epochSeconds: modified) }
            try sync(fd, path: path)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
    }
}
