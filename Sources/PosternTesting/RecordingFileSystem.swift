import Glibc
import Synchronization
import Spool

/// A `FileSystem` that performs every call on the real file system and records
/// it, with paths relative to a root, so a test can compare the order of
/// durable operations with the one `spool-layout.md` states.
public final class RecordingFileSystem: FileSystem {
    private let real = SystemFileSystem()
    private let root: String
    private let log = Mutex<[String]>([])
    private let paths = Mutex<[Int32: String]>([:])

    public init(root: String) {
        self.root = root
    }

    /// The calls so far, e.g. `mkdir tmp/ID`, `write tmp/ID/message` (consecutive
    /// writes to one file are recorded once), `fsync tmp/ID/message`.
    public var calls: [String] { log.withLock { $0 } }

    private func relative(_ path: String) -> String {
        path.hasPrefix(root + "/") ? String(path.dropFirst(root.count + 1)) : path
    }

    private func record(_ call: String) {
        log.withLock { log in
            if log.last != call || !call.hasPrefix("write ") { log.append(call) }
        }
    }

    public func makeDirectory(_ path: String, mode: mode_t) throws(SpoolIOError) {
        try real.makeDirectory(path, mode: mode)
        record("mkdir \(relative(path))")
    }

    public func createFile(_ path: String, mode: mode_t) throws(SpoolIOError) -> Int32 {
        let fd = try real.createFile(path, mode: mode)
        paths.withLock { $0[fd] = path }
        record("create \(relative(path))")
        return fd
    }

    public func reuseFile(_ path: String) throws(SpoolIOError) -> Int32 {
        let fd = try real.reuseFile(path)
        paths.withLock { $0[fd] = path }
        record("reuse \(relative(path))")
        return fd
    }

    public func grantAccess(_ path: String, to user: uid_t, permissions: mode_t) throws(SpoolIOError) {
        try real.grantAccess(path, to: user, permissions: permissions)
        record("acl \(relative(path)) user:\(user):\(String(permissions, radix: 8))")
    }

    public func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError) {
        try real.write(fd, bytes, path: path)
        record("write \(relative(path))")
    }

    public func sync(_ fd: Int32, path: String) throws(SpoolIOError) {
        try real.sync(fd, path: path)
        record("fsync \(relative(path))")
    }

    public func close(_ fd: Int32) {
        real.close(fd)
        let path = paths.withLock { $0.removeValue(forKey: fd) } ?? "?"
        record("close \(relative(path))")
    }

    public func syncDirectory(_ path: String) throws(SpoolIOError) {
        try real.syncDirectory(path)
        record("fsync \(relative(path))/")
    }

    public func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError) {
        try real.syncFileSystem(directory)
        record("syncfs \(relative(directory.path))/")
    }

    public func rename(_ source: String, to destination: String) throws(SpoolIOError) {
        try real.rename(source, to: destination)
        record("rename \(relative(source)) \(relative(destination))")
    }

    public func exchange(_ first: String, _ second: String) throws(SpoolIOError) {
        try real.exchange(first, second)
        record("exchange \(relative(first)) \(relative(second))")
    }

    public func replace(_ source: String, with destination: String) throws(SpoolIOError) {
        try real.replace(source, with: destination)
        record("replace \(relative(source)) \(relative(destination))")
    }

    public func removeTree(_ path: String) throws(SpoolIOError) {
        try real.removeTree(path)
        record("remove \(relative(path))")
    }

    public func removeFile(_ path: String) throws(SpoolIOError) {
        try real.removeFile(path)
        record("unlink \(relative(path))")
    }

    public func setModified(_ path: String, epochSeconds: Double) throws(SpoolIOError) {
        try real.setModified(path, epochSeconds: epochSeconds)
        record("utimensat \(relative(path))")
    }
}
