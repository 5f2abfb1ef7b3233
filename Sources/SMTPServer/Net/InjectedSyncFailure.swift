import Glibc
import PosternCore
import SpoolDrop

/// The listener's file system with one fault made on purpose, for the
/// integration tests only: every `fsync` of the directory named by
/// `POSTERN_TEST_FAIL_SYNC_OF` (an area: `queue`, `drop`) fails with `EIO`.
///
/// Why: a commit that fails after its rename leaves the message in `queue/`
/// while the client is told 451, the one case the daemon cannot learn from
/// the listener (`QueueHandoff.unsure`: it looks at the spool). Nothing else
/// can make a real `fsync` fail on demand. The variable costs nothing when
/// unset, and set it only makes messages be answered 451 (and delivered).
struct InjectedSyncFailure: FileSystem {
    let base: any FileSystem
    let failing: String

    /// The file system to use: `base`, or `base` with the fault when the variable names an area.
    static func wrapping(_ base: any FileSystem, layout: SpoolLayout) -> any FileSystem {
        guard let name = getenv("POSTERN_TEST_FAIL_SYNC_OF").map({ String(cString: $0) }),
              let area = SpoolLayout.Area(rawValue: name) else { return base }
        return InjectedSyncFailure(base: base, failing: layout.directory(area))
    }

    func syncDirectory(_ path: String) throws(SpoolIOError) {
        if path == failing { throw SpoolIOError("fsync directory (POSTERN_TEST_FAIL_SYNC_OF)", path, EIO) }
        try base.syncDirectory(path)
    }

    func makeDirectory(_ path: String, mode: mode_t) throws(SpoolIOError) { try base.makeDirectory(path, mode: mode) }
    func createFile(_ path: String, mode: mode_t) throws(SpoolIOError) -> Int32 { try base.createFile(path, mode: mode) }
    func reuseFile(_ path: String) throws(SpoolIOError) -> Int32 { try base.reuseFile(path) }
    func grantAccess(_ path: String, to user: uid_t, permissions: mode_t) throws(SpoolIOError) {
        try base.grantAccess(path, to: user, permissions: permissions)
    }
    func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws(SpoolIOError) { try base.write(fd, bytes, path: path) }
    func sync(_ fd: Int32, path: String) throws(SpoolIOError) { try base.sync(fd, path: path) }
    func startWriteback(_ fd: Int32) { base.startWriteback(fd) }
    func close(_ fd: Int32) { base.close(fd) }
    func syncFileSystem(_ directory: DirectoryHandle) throws(SpoolIOError) { try base.syncFileSystem(directory) }
    func rename(_ source: String, to destination: String) throws(SpoolIOError) { try base.rename(source, to: destination) }
    func exchange(_ first: String, _ second: String) throws(SpoolIOError) { try base.exchange(first, second) }
    func replace(_ source: String, with destination: String) throws(SpoolIOError) { try base.replace(source, with: destination) }
    func removeTree(_ path: String) throws(SpoolIOError) { try base.removeTree(path) }
    func removeFile(_ path: String) throws(SpoolIOError) { try base.removeFile(path) }
    func setModified(_ path: String, epochSeconds: Double) throws(SpoolIOError) { try base.setModified(path, epochSeconds: epochSeconds) }
}
