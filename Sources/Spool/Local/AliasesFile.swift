import Foundation
import Glibc
import PosternCore

/// The aliases file, read when it changes: the daemon accepts drops one by
/// one, and reading `/etc/aliases` for each would cost a read and a parse per
/// message where one `stat` tells that nothing changed.
///
/// The file is identified by device, inode, size, and modification and change
/// times (one `stat`), so that an editor's rename, a `touch` or an edit within
/// the same second (`ctim` has nanoseconds) is seen. It is bounded (`maxSize`): a file
/// over the bound, or one that cannot be read, counts as no aliases, with a
/// problem reported; a missing file is no aliases and no problem (a machine
/// need not have one). Problems are returned only when the file changed since
/// the last read, so the log says each once rather than once per message.
public final class AliasesFile: @unchecked Sendable {
    /// Far larger than any machine's aliases (Debian's are 300 octets).
    public static let maxSize = 1 << 20

    public let path: String
    private let lock = NSLock()
    private var identity: Identity?
    private var table = AliasTable()

    public init(path: String) {
        self.path = path
    }

    /// What the file held at the last read that found it changed.
    struct Identity: Equatable {
        var device: UInt64 = 0, inode: UInt64 = 0, size: Int64 = 0
        var modified: Int64 = 0, modifiedNanoseconds: Int = 0, changed: Int64 = 0, changedNanoseconds: Int = 0
        /// ENOENT, or the text of another error: read again when it changes.
        var missing = false
        var error: String?
    }

    /// The table now, and the problems of a fresh read (empty when unchanged).
    /// An unchanged file costs one `stat(2)`: the daemon asks once per drop.
    public func load() -> (table: AliasTable, problems: [AliasTable.Problem]) {
        lock.lock()
        defer { lock.unlock() }
        var status = stat()
        var now = Identity()
        if fstatat(AT_FDCWD, path, &status, 0) != 0 {
            if errno == ENOENT || errno == ENOTDIR { now.missing = true } else { now.error = POSIX.errorText(errno) }
        } else {
            now = Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino), size: Int64(status.st_size),
                           modified: Int64(status.st_mtim.tv_sec), modifiedNanoseconds: Int(status.st_mtim.tv_nsec),
                           changed: Int64(status.st_ctim.tv_sec), changedNanoseconds: Int(status.st_ctim.tv_nsec))
        }
        guard now != identity else { return (table, []) }
        identity = now
        table = AliasTable()
        if now.missing { return (table, []) }
        if let error = now.error { return (table, [problem("cannot read it: \(error); no aliases apply")]) }
        guard status.st_mode & S_IFMT == S_IFREG else { return (table, [problem("not a regular file; no aliases apply")]) }
        guard status.st_size <= Self.maxSize else {
            return (table, [problem("\(status.st_size) octets, over the bound of \(Self.maxSize); no aliases apply")])
        }
        // Opened without blocking (a FIFO swapped in after the stat cannot
        // hang the daemon) and read to at most the bound, whatever it is now.
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else {
            // Reported once, as every problem: read again when the file changes
            // (a daemon that may not read it would otherwise log it per message).
            let error = POSIX.errorText(errno)
            return (table, [problem("cannot open it: \(error); no aliases apply")])
        }
        defer { close(fd) }
        let bytes: [UInt8]
        do {
            bytes = try RegularFile.read(fd, upTo: Self.maxSize + 1)
        } catch {
            return (table, [problem("cannot read it: \(error); no aliases apply")])
        }
        guard bytes.count <= Self.maxSize else {
            return (table, [problem("over the bound of \(Self.maxSize) octets; no aliases apply")])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return (table, [problem("not valid UTF-8; no aliases apply")])
        }
        let parsed = AliasTable.parse(text, source: path)
        table = parsed.table
        return (table, parsed.problems)
    }

    private func problem(_ message: String) -> AliasTable.Problem {
        AliasTable.Problem(source: path, line: nil, message: message)
    }
}
