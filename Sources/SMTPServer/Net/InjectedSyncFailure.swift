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
struct InjectedSyncFailure: FileSystemDecorator {
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
}
