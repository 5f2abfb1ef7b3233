import Foundation
import Glibc
import PosternCore

/// The spool's exclusive lock: `flock(2)` on `SPOOL/lock`.
///
/// Held by the daemon for its whole life and by `postern check` while it
/// repairs, so that only one process ever moves, quarantines or rewrites accepted
/// messages. The kernel drops it when the holder dies, even by SIGKILL, so there
/// are no stale locks to clean up. The holder's pid is written into the file for
/// operators (`cat SPOOL/lock`); the lock, not the pid, is the truth.
public final class SpoolLock {
    private let fd: Int32

    /// Takes the lock or throws at once (it never waits).
    ///
    /// - Throws: `SpoolError` with `.tempFail` when another process holds it.
    public init(layout: SpoolLayout) throws(SpoolError) {
        // Read-only: flock(2) needs no write access, and a file held open for
        // writing for the daemon's whole life would make a read-only remount
        // of the spool's file system (an operator's, or a test's) fail with EBUSY.
        let fd = open(layout.lockFile, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            throw SpoolError(code == EACCES ? .noPermission : .cantCreate,
                             "cannot open \(layout.lockFile): \(POSIX.errorText(code))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            let holder = Self.holder(fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw SpoolError(.tempFail, "spool \(layout.root) is locked by another process\(holder.map { " (pid \($0))" } ?? "")")
            }
            throw SpoolError(.osError, "cannot lock \(layout.lockFile): \(POSIX.errorText(code))")
        }
        self.fd = fd
        let pid = Array("\(getpid())\n".utf8)
        // The pid is informational; failing to write it does not weaken the lock.
        let writer = open(layout.lockFile, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
        if writer >= 0 {
            do throws(SystemCallError) { try POSIX.writeAll(writer, pid) } catch {
                // Informational only (above): the lock holds without it.
            }
            close(writer)
        }
    }

    deinit {
        close(fd)
    }

    private static func holder(_ fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
