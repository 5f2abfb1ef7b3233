import Foundation
import Glibc
import PosternCore

/// Reads and checks one message directory without following any link.
///
/// Every check here stands for a way a spool can be damaged or attacked: a
/// half-copied backup (size mismatch), a planted symlink (reading through it
/// would disclose or corrupt another file), a drop claiming another user's uid.
public struct MessageDirectory {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    /// What is wrong with an entry, in words for the `reason` file.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The file type of `path` itself (never of a link's target), in words.
    static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFLNK: "a symbolic link"
        case S_IFDIR: "a directory"
        case S_IFREG: "a regular file"
        case S_IFIFO: "a FIFO"
        case S_IFSOCK: "a socket"
        case S_IFCHR, S_IFBLK: "a device"
        default: "of unknown type"
        }
    }

    /// The uids that may own any entry of `layout`'s message directories: root
    /// and the spool's owner (spool-layout.md section 3).
    public static func trustedOwners(of layout: SpoolLayout) -> Set<uid_t> {
        var info = stat()
        return [0, stat(layout.root, &info) == 0 ? info.st_uid : 0]
    }

    /// `lstat(2)`: the entry itself, never a link's target; nil when absent.
    public static func lstatus(_ path: String) -> stat? {
        var info = stat()
        return lstat(path, &info) == 0 ? info : nil
    }

    /// Validates the directory and returns its envelope.
    ///
    /// - Parameters:
    ///   - id: the queue ID its name claims.
    ///   - trustedOwners: uids that may own any entry (root and the spool owner);
    ///     any other owner must be the uid the envelope records.
    ///   - allowStaleUpdate: whether a leftover `envelope.json.tmp` is tolerated
    ///     (it is an update that never committed; the caller removes it).
    public func load(id: QueueID, trustedOwners: Set<uid_t>, allowStaleUpdate: Bool = true) throws(Problem) -> Envelope {
        guard let info = Self.lstatus(path) else { throw Problem("vanished while being read") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw Problem("\(Self.kind(of: info.st_mode)), not a message directory") }
        let owner = info.st_uid
        let names: [String]
        do {
            names = try DirectoryListing.names(in: path)
        } catch {
            throw Problem("cannot be listed: \(error)")
        }
        let expected: Set = [SpoolLayout.messageFile, SpoolLayout.envelopeFile]
        for name in names where !expected.contains(name) {
            if allowStaleUpdate && name == SpoolLayout.envelopeTemporaryFile { continue }
            throw Problem("unexpected entry \"\(name)\"")
        }
        for name in expected.sorted() {
            guard names.contains(name) else { throw Problem("missing \(name)") }
            guard let file = Self.lstatus(path + "/" + name) else { throw Problem("\(name) vanished while being read") }
            guard file.st_mode & S_IFMT == S_IFREG else { throw Problem("\(name) is \(Self.kind(of: file.st_mode))") }
            guard file.st_uid == owner || trustedOwners.contains(file.st_uid) else {
                throw Problem("wrong owner: \(name) belongs to uid \(file.st_uid), the directory to uid \(owner)")
            }
        }
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(try readEnvelopeData())
        } catch let error as EnvelopeError {
            throw Problem(error.description)
        } catch {
            throw Problem("\(error)")
        }
        guard envelope.id == id else {
            throw Problem("envelope id \(envelope.id) does not match the directory name \(id)")
        }
        guard let message = Self.lstatus(path + "/" + SpoolLayout.messageFile) else { throw Problem("message vanished") }
        guard Int(message.st_size) == envelope.size else {
            throw Problem("message has \(message.st_size) octets, the envelope says \(envelope.size)")
        }
        if !trustedOwners.contains(owner), envelope.uid != Int(owner) {
            throw Problem("wrong owner: the directory belongs to uid \(owner) but the envelope claims uid \(envelope.uid)")
        }
        return envelope
    }

    /// The bytes of `envelope.json`, opened without following links and bounded in size.
    public func readEnvelopeData() throws(Problem) -> Data {
        let file = path + "/" + SpoolLayout.envelopeFile
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw Problem("cannot open \(SpoolLayout.envelopeFile): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Problem("\(SpoolLayout.envelopeFile) is not a regular file")
        }
        guard info.st_size <= Envelope.maxEncodedSize else {
            throw Problem("\(SpoolLayout.envelopeFile) is larger than \(Envelope.maxEncodedSize) octets")
        }
        var data = Data(count: Int(info.st_size))
        var offset = 0
        while offset < data.count {
            let count = data.withUnsafeMutableBytes { read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw Problem("cannot read \(SpoolLayout.envelopeFile)") }
            offset += count
        }
        return data
    }
}
