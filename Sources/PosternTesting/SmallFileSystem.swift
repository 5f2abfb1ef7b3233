import Foundation
import Glibc
import PosternCore
import Spool

/// A size-limited tmpfs mounted over a test's spool, for the full-disk and
/// read-only tests: filled to the last block, freed, remounted read-only and
/// back, and unmounted (lazily, so a process still inside cannot keep it)
/// when the value goes away. Needs root (tests run as root).
///
/// On tmpfs a directory costs no block, so a full file system still lets the
/// spool make directories and rename: the first write of data is what fails
/// with ENOSPC, as on a real disk whose last free blocks are gone.
public final class SmallFileSystem: @unchecked Sendable {
    public let path: String
    private var filler: Int32 = -1
    private static let fillerName = ".filler"

    /// Mounts a tmpfs of `size` octets at `path` (an existing directory),
    /// hiding what was there.
    public init(at path: String, size: Int) throws {
        self.path = path
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(size),mode=0755") == 0 else {
            throw SpoolIOError("mount tmpfs", path)
        }
    }

    /// Mounts one over `spool`'s root and makes the spool there again, with
    /// `dropGroup` as its drop group.
    public convenience init(over spool: TemporarySpool, size: Int, dropGroup: gid_t? = nil) throws {
        try self.init(at: spool.layout.root, size: size)
        _ = try SpoolInitializer(layout: spool.layout, owner: getuid(), ownerGroup: getgid(), dropGroup: dropGroup).run()
    }

    /// A ramfs over `spool`'s root, with the spool made there again: a file
    /// system without POSIX ACLs (every ACL call fails with EOPNOTSUPP), and
    /// without a size limit, so `fill` must not be used on it.
    public init(withoutACLsOver spool: TemporarySpool) throws {
        path = spool.layout.root
        guard mount("ramfs", path, "ramfs", 0, "mode=0755") == 0 else { throw SpoolIOError("mount ramfs", path) }
        _ = try SpoolInitializer(layout: spool.layout, owner: getuid(), ownerGroup: getgid(), dropGroup: nil).run()
    }

    private var mounted = true

    deinit {
        unmount()
    }

    /// Unmounts, lazily: a daemon or drop that still has a descriptor inside
    /// does not keep the mount. Call it before the spool's directory is
    /// removed, or the directory hidden under the mount stays behind.
    public func unmount() {
        if filler >= 0 {
            close(filler)
            filler = -1
        }
        guard mounted else { return }
        mounted = false
        umount2(path, Int32(MNT_DETACH))
    }

    /// Writes a file until the file system has no block left. Returns the
    /// octets written.
    @discardableResult
    public func fill() throws -> Int {
        if filler < 0 {
            filler = open(path + "/" + Self.fillerName, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard filler >= 0 else { throw SpoolIOError("open", path + "/" + Self.fillerName) }
        }
        let chunk = [UInt8](repeating: 0x46, count: 65536)
        var total = 0
        while true {
            do throws(SystemCallError) {
                try POSIX.writeAll(filler, chunk)
                total += chunk.count
            } catch where error.code == ENOSPC {
                total += error.transferred
                // Then single octets: the last partial page.
                while (chunk.withUnsafeBytes { write(filler, $0.baseAddress, 1) }) == 1 { total += 1 }
                return total
            } catch {
                throw SpoolIOError("write", path + "/" + Self.fillerName, error.code)
            }
        }
    }

    /// Gives the space back.
    public func free() throws {
        if filler >= 0 {
            close(filler)
            filler = -1
        }
        guard unlink(path + "/" + Self.fillerName) == 0 || errno == ENOENT else {
            throw SpoolIOError("unlink", path + "/" + Self.fillerName)
        }
    }

    /// Remounts read-only (`true`) or read-write (`false`), as the kernel does
    /// to a file system with errors=remount-ro.
    public func remount(readOnly: Bool) throws {
        // A file open for writing makes a read-only remount fail with EBUSY.
        if filler >= 0 {
            close(filler)
            filler = -1
        }
        let flags = UInt(MS_REMOUNT) | (readOnly ? UInt(MS_RDONLY) : 0)
        guard mount(nil, path, nil, flags, nil) == 0 else { throw SpoolIOError("remount", path) }
    }
}
