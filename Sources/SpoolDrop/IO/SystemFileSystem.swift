import CSysShim
import Glibc
import PosternBase

/// The real file system, through plain system calls.
public struct SystemFileSystem: FileSystem {
    public init() {}

    public func makeDirectory(_ path: String, mode: mode_t) throws(SpoolIOError) {
        // The mode is set explicitly after creation: the contract's modes must not
        // depend on the umask of whoever happens to write. The set-group-ID bit
        // inherited from a set-group-ID parent (tmp/ with a drop group) is kept:
        // it gives the files inside the drop group, whatever the writer's primary
        // group, so that the daemon can read them (spool-layout.md section 3).
        guard mkdir(path, mode) == 0 else { throw SpoolIOError("mkdir", path) }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolIOError("open directory", path) }
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SpoolIOError("fstat", path) }
        guard fchmod(fd, mode | (info.st_mode & S_ISGID)) == 0 else { throw SpoolIOError("chmod", path) }
    }

    public func createFile(_ path: String, mode: mode_t) throws(SpoolIOError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SpoolIOError("create", path) }
        guard fchmod(fd, mode) == 0 else {
            let error = SpoolIOError("chmod", path)
            _ = Glibc.close(fd)
            throw error
        }
        return fd
    }

    public func reuseFile(_ path: String) throws(SpoolIOError) -> Int32 {
        let fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolIOError("open", path) }
        guard BlankPool.isPrivateFile(fd) else {
            _ = Glibc.close(fd)
            throw SpoolIOError("reuse (not a private file of this user)", path, EPERM)
        }
        return fd
    }

    public func grantAccess(_ path: String, to user: uid_t, permissions: mode_t) throws(SpoolIOError) {
        guard csys_grant_user(path, user, UInt32(permissions)) == 0 else {
            let code = errno
            throw SpoolIOError(code == EOPNOTSUPP ? "set a POSIX ACL (the spool's file system has none; mount it with acl) on"
                                                  : "set a POSIX ACL on", path, code)
        }
    }

    public func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError) {
        do throws(SystemCallError) { try POSIX.writeAll(fd, bytes) } catch { throw SpoolIOError("write", path, error.code) }
    }

    public func sync(_ fd: Int32, path: String) throws(SpoolIOError) {
        guard fsync(fd) == 0 else { throw SpoolIOError("fsync", path) }
    }

    public func startWriteback(_ fd: Int32) {
        _ = csys_start_writeback(fd)
    }

    public func close(_ fd: Int32) {
        // close(2) errors after a successful fsync cannot lose data; nothing to do.
        _ = Glibc.close(fd)
    }

    public func syncDirectory(_ path: String) throws(SpoolIOError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolIOError("open directory", path) }
        defer { _ = Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw SpoolIOError("fsync directory", path) }
    }

    public func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError) {
        guard csys_syncfs(directory.fd) == 0 else { throw SpoolIOError("syncfs", directory.path) }
    }

    public func rename(_ source: String, to destination: String) throws(SpoolIOError) {
        guard csys_renameat2(AT_FDCWD, source, AT_FDCWD, destination, UInt32(CSYS_RENAME_NOREPLACE)) == 0 else {
            throw SpoolIOError("rename to \(destination)", source)
        }
    }

    public func exchange(_ first: String, _ second: String) throws(SpoolIOError) {
        guard csys_renameat2(AT_FDCWD, first, AT_FDCWD, second, UInt32(CSYS_RENAME_EXCHANGE)) == 0 else {
            throw SpoolIOError("exchange with \(second)", first)
        }
    }

    public func replace(_ source: String, with destination: String) throws(SpoolIOError) {
        guard Glibc.rename(source, destination) == 0 else {
            throw SpoolIOError("rename to \(destination)", source)
        }
    }

    public func removeTree(_ path: String) throws(SpoolIOError) {
        let (parent, name) = Self.split(path)
        try DirectoryHandle(path: parent, listable: false).removeTree(name)
    }

    public func removeFile(_ path: String) throws(SpoolIOError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw SpoolIOError("unlink", path) }
    }

    public func setModified(_ path: String, epochSeconds: Double) throws(SpoolIOError) {
        let seconds = epochSeconds.rounded(.down)
        // UTIME_OMIT (not imported from C): the access time stays as it is.
        let times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2),
                     timespec(tv_sec: Int(seconds), tv_nsec: Int((epochSeconds - seconds) * 1e9))]
        guard utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) == 0 else { throw SpoolIOError("utimensat", path) }
    }

    /// `/a/b/c` -> (`/a/b`, `c`).
    static func split(_ path: String) -> (parent: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let parent = String(path[..<slash])
        return (parent.isEmpty ? "/" : parent, String(path[path.index(after: slash)...]))
    }
}

/// Reads directory entries without following links.
public enum DirectoryListing {
    /// The names in a directory, except `.` and `..`, in no particular order.
    public static func names(in path: String) throws(SpoolIOError) -> [String] {
        try DirectoryHandle(path: path).names()
    }
}
