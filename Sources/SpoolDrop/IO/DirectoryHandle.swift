import CSysShim
import Glibc
import PosternBase

/// An open directory, and every operation on its entries made through that
/// descriptor (`openat`, `fstatat`, `unlinkat`, `renameat2`).
///
/// Why descriptors: entries of `tmp/` and `drop/` belong to other users, who
/// may rename them or swap them for a symbolic link between two of our calls.
/// A path is looked up again at every call, so a walk by path can be led
/// anywhere (`tmp/X -> ..`); a descriptor stays on the directory that was
/// opened, and every lookup below it refuses to follow a link. Nothing here
/// follows a symbolic link or blocks on a FIFO.
public final class DirectoryHandle {
    public let fd: Int32
    /// The path it was opened by, for error messages only.
    public let path: String

    /// Opens a directory by path, refusing a symbolic link as the last component.
    ///
    /// - Parameter listable: false opens it with `O_PATH`, which needs no read
    ///   permission: enough to reach, stat and remove its entries (a drop-group
    ///   member removing its own `tmp/ID` from a `tmp/` it may not list), not to list it.
    public init(path: String, listable: Bool = true) throws(SpoolIOError) {
        let access = listable ? O_RDONLY : Int32(CSYS_O_PATH)
        let fd = Glibc.open(path, access | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw SpoolIOError("open directory", path) }
        self.fd = fd
        self.path = path
    }

    /// Opens the entry `name` of `parent` as a directory (`ENOTDIR` or `ELOOP`
    /// when it is anything else, a link included).
    public init(_ name: String, in parent: DirectoryHandle) throws(SpoolIOError) {
        let fd = openat(parent.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw SpoolIOError("open directory", parent.path + "/" + name) }
        self.fd = fd
        path = parent.path + "/" + name
    }

    deinit {
        _ = Glibc.close(fd)
    }

    /// `fstat(2)` of the directory itself.
    public func status() throws(SpoolIOError) -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw SpoolIOError("fstat", path) }
        return info
    }

    /// `fstatat(2)` of an entry, never of a link's target; nil when absent.
    public func status(of name: String) -> stat? {
        var info = stat()
        return fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 ? info : nil
    }

    /// The names of the entries, except `.` and `..`, in no particular order.
    public func names() throws(SpoolIOError) -> [String] {
        var names: [String] = []
        try forEachName { names.append(String(decoding: $0, as: UTF8.self)) }
        return names
    }

    /// Calls `body` with the bytes of each entry's name (not `.` or `..`), in
    /// no particular order, without making a `String` of any: for listings of
    /// a million entries, where the names are parsed rather than kept.
    public func forEachName(_ body: (UnsafeBufferPointer<UInt8>) -> Void) throws(SpoolIOError) {
        let reader = try NameReader(self)
        while reader.read(upTo: .max, body) {}
    }

    /// The names of a directory read a batch at a time, in directory order:
    /// a listing that streams starts on the first names instead of waiting
    /// for the last of a million.
    public final class NameReader {
        private let stream: OpaquePointer

        public init(_ directory: DirectoryHandle) throws(SpoolIOError) {
            // fdopendir takes the descriptor it is given; it gets a duplicate,
            // so that closedir leaves the handle's open.
            let copy = fcntl(directory.fd, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0, let stream = fdopendir(copy) else {
                let code = errno
                if copy >= 0 { _ = Glibc.close(copy) }
                throw SpoolIOError("list", directory.path, code)
            }
            rewinddir(stream)
            self.stream = stream
        }

        deinit {
            closedir(stream)
        }

        /// Calls `body` with up to `limit` names (not `.` or `..`); false
        /// once the directory has no more.
        public func read(upTo limit: Int, _ body: (UnsafeBufferPointer<UInt8>) -> Void) -> Bool {
            var given = 0
            while given < limit {
                guard let entry = readdir(stream) else { return false }
                withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                    let bytes = raw.bindMemory(to: UInt8.self)
                    let length = strnlen(raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
                    let name = UnsafeBufferPointer(rebasing: bytes[..<length])
                    let dots = name.count <= 2 && name.allSatisfy { $0 == UInt8(ascii: ".") }
                    if !dots {
                        body(name)
                        given += 1
                    }
                }
            }
            return true
        }
    }

    /// The queue IDs the entries are named by, sorted (oldest first), and the
    /// names that are not queue IDs, sorted: a spool area as the scanner,
    /// the listing and `count` read it, 16 bytes a message and no string.
    public func queueIDs() throws(SpoolIOError) -> (ids: [QueueID], others: [String]) {
        var ids: [QueueID] = []
        var others: [String] = []
        try forEachName { name in
            if let id = QueueID(utf8: name) {
                ids.append(id)
            } else {
                others.append(String(decoding: name, as: UTF8.self))
            }
        }
        return (ids.sorted(), others.sorted())
    }

    /// Opens the entry `name` for reading as a spool file (`RegularFile.open`):
    /// a regular file with one link, never a link's target, never blocking.
    public func openRegularFile(_ name: String, expectedSize: Int? = nil) throws(SpoolIOError) -> (fd: Int32, status: stat) {
        do {
            return try RegularFile.open(name, in: fd, expectedSize: expectedSize)
        } catch {
            throw SpoolIOError("open (\(error.description))", path + "/" + name, error.code)
        }
    }

    /// `unlinkat(2)` of a file or link (never a directory).
    public func removeFile(_ name: String) throws(SpoolIOError) {
        guard unlinkat(fd, name, 0) == 0 else { throw SpoolIOError("unlink", path + "/" + name) }
    }

    /// The deepest tree `removeTree` descends into: drops are two levels deep;
    /// anything deeper was made to exhaust our stack or descriptors.
    public static let maxRemovalDepth = 16

    /// Removes the entry `name` and, for a directory, everything in it, through
    /// descriptors only: a directory is entered by `openat(O_NOFOLLOW)` and
    /// emptied through that descriptor, so a rename or a link swapped in
    /// mid-walk changes nothing but which of the attacker's own entries go.
    ///
    /// - Parameter observe: called with each path after its removal (tests
    ///   use it to race the walk deterministically).
    public func removeTree(_ name: String, observe: (String) -> Void = { _ in }) throws(SpoolIOError) {
        try removeTree(name, depth: 0, observe: observe)
    }

    private func removeTree(_ name: String, depth: Int, observe: (String) -> Void) throws(SpoolIOError) {
        guard let info = status(of: name) else { return }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            guard unlinkat(fd, name, 0) == 0 || errno == ENOENT else { throw SpoolIOError("unlink", path + "/" + name) }
            observe(path + "/" + name)
            return
        }
        guard depth < Self.maxRemovalDepth else { throw SpoolIOError("remove (deeper than \(Self.maxRemovalDepth) levels)", path + "/" + name, ELOOP) }
        do throws(SpoolIOError) {
            let child = try DirectoryHandle(name, in: self)
            for entry in try child.names() {
                try child.removeTree(entry, depth: depth + 1, observe: observe)
            }
        } catch where error.code == ENOENT {
            return   // gone meanwhile
        }
        // If the name now stands for something else (a link swapped in), rmdir
        // fails with ENOTDIR: nothing outside the walked directory is touched.
        guard unlinkat(fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
            throw SpoolIOError("rmdir", path + "/" + name)
        }
        observe(path + "/" + name)
    }
}
