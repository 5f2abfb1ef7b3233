import Glibc
import PosternCore

/// Creates a spool, or repairs the modes and owners of an existing one
/// (`postern init`). Running it twice changes nothing the second time.
///
/// The permission model (`spool-layout.md`, "Permissions"):
/// - the daemon's user (`owner`) owns everything and alone can enter `queue/`,
///   `hold/` and `corrupt/` (0700);
/// - members of the drop group (in practice the set-group-ID `postern` binary,
///   as Postfix's `postdrop`) may create entries in `tmp/` and rename them into
///   `drop/`, but may not list either (mode 1730 and 3730: write and search for
///   the group, no read), so no one can find or read another user's drop;
/// - without a drop group, only the owner (and root) can drop.
public struct SpoolInitializer {
    public let layout: SpoolLayout
    public let owner: uid_t
    public let ownerGroup: gid_t
    public let dropGroup: gid_t?
    public var fileSystem: any FileSystem = SystemFileSystem()

    public init(layout: SpoolLayout, owner: uid_t, ownerGroup: gid_t, dropGroup: gid_t?) {
        self.layout = layout
        self.owner = owner
        self.ownerGroup = ownerGroup
        self.dropGroup = dropGroup
    }

    /// Each directory of the layout with its group and mode.
    var directories: [(path: String, group: gid_t, mode: mode_t)] {
        // setgid on tmp/ makes every drop directory inherit the drop group, so
        // the daemon (a member) can accept it whoever wrote it; sticky bits keep
        // writers from renaming or removing each other's entries.
        let dropAreaGroup = dropGroup ?? ownerGroup
        return [
            (layout.root, ownerGroup, 0o755),
            (layout.tmp, dropAreaGroup, dropGroup == nil ? 0o700 : 0o3730),
            (layout.directory(.drop), dropAreaGroup, dropGroup == nil ? 0o700 : 0o1730),
            (layout.directory(.queue), ownerGroup, 0o700),
            (layout.directory(.hold), ownerGroup, 0o700),
            (layout.corrupt, ownerGroup, 0o700),
            (layout.control, ownerGroup, 0o700),
        ]
    }

    /// Creates what is missing and fixes what differs. Returns what it did, one line each.
    public func run() throws(SpoolError) -> [String] {
        var actions: [String] = []
        do {
            for (path, group, mode) in directories {
                var info = stat()
                if lstat(path, &info) != 0 {
                    try makeParents(of: path, actions: &actions)
                    try fileSystem.makeDirectory(path, mode: mode)
                    // A new directory's entry is durable only once its parent is synced.
                    try fileSystem.syncDirectory(parent(of: path))
                    actions.append("created \(path)")
                } else if info.st_mode & S_IFMT != S_IFDIR {
                    throw SpoolError(.cantCreate, "\(path) exists and is not a directory")
                }
                try apply(path, group: group, mode: mode, actions: &actions)
            }
            try writeVersion(actions: &actions)
            try touchLock(actions: &actions)
        } catch let error as SpoolIOError {
            throw SpoolError(error.exitStatus, "\(error)")
        } catch let error as SpoolError {
            throw error
        } catch {
            throw SpoolError(.software, "\(error)")
        }
        return actions
    }

    private func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    private func makeParents(of path: String, actions: inout [String]) throws(SpoolIOError) {
        let up = parent(of: path)
        var info = stat()
        guard lstat(up, &info) != 0 else { return }
        try makeParents(of: up, actions: &actions)
        try fileSystem.makeDirectory(up, mode: 0o755)
        try fileSystem.syncDirectory(parent(of: up))
        actions.append("created \(up)")
    }

    private func apply(_ path: String, group: gid_t, mode: mode_t, actions: inout [String]) throws(SpoolIOError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw SpoolIOError("lstat", path) }
        if info.st_uid != owner || info.st_gid != group {
            guard lchown(path, owner, group) == 0 else { throw SpoolIOError("chown", path) }
            actions.append("owner of \(path) set to \(owner):\(group)")
        }
        // chown clears set-id bits, so the mode is applied after it.
        guard lstat(path, &info) == 0 else { throw SpoolIOError("lstat", path) }
        if info.st_mode & 0o7777 != mode {
            guard chmod(path, mode) == 0 else { throw SpoolIOError("chmod", path) }
            actions.append("mode of \(path) set to \(String(mode, radix: 8))")
        }
    }

    private func writeVersion(actions: inout [String]) throws {
        let path = layout.versionFile
        var info = stat()
        if lstat(path, &info) == 0 {
            // An existing spool of another version is never overwritten.
            try SpoolCheck.requireSpool(layout)
        } else {
            let temporary = path + ".tmp"
            try? fileSystem.removeTree(temporary)   // a leftover of an interrupted init; absent is fine
            try fileSystem.writeFile(temporary, Array("\(SpoolLayout.version)\n".utf8), mode: 0o644)
            try fileSystem.replace(temporary, with: path)
            try fileSystem.syncDirectory(layout.root)
            actions.append("wrote \(path)")
        }
        try apply(path, group: ownerGroup, mode: 0o644, actions: &actions)
    }

    private func touchLock(actions: inout [String]) throws {
        var info = stat()
        if lstat(layout.lockFile, &info) != 0 {
            let fd = try fileSystem.createFile(layout.lockFile, mode: 0o600)
            fileSystem.close(fd)
            try fileSystem.syncDirectory(layout.root)
            actions.append("created \(layout.lockFile)")
        }
        try apply(layout.lockFile, group: ownerGroup, mode: 0o600, actions: &actions)
    }
}
