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
        /// The check could not be made for a passing reason (no descriptor or
        /// memory left): try again later rather than quarantine.
        public var isTransient = false
        /// The errno of the call that failed, when one did.
        public var code: Int32?
        public init(_ description: String, transient: Bool = false) {
            self.description = description
            isTransient = transient
        }

        /// A call that failed with `code`: transient when the code is.
        init(_ description: String, code: Int32) {
            self.init(description, transient: Self.transient(code))
            self.code = code
        }

        static func transient(_ code: Int32) -> Bool { [EMFILE, ENFILE, ENOMEM, EINTR, EAGAIN].contains(code) }
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
    ///   - allowStaleUpdate: whether an `envelope.json.tmp` is tolerated: the
    ///     envelope the last update replaced (the spare, read only when
    ///     `envelope.json` is damaged), or an update that never committed.
    public func load(id: QueueID, trustedOwners: Set<uid_t>, allowStaleUpdate: Bool = true) throws(Problem) -> Envelope {
        try open(id: id, trustedOwners: trustedOwners, allowStaleUpdate: allowStaleUpdate).envelope
    }

    /// A message directory that passed every check, still open: what was
    /// checked is what the caller goes on to read, whatever happens to the
    /// path meanwhile.
    public struct Opened {
        public let directory: DirectoryHandle
        public let envelope: Envelope
        /// The owner of the directory: who dropped it.
        public let owner: uid_t
        /// The envelope counts an attempt that was registered and never
        /// reported (a crash; `Envelope.recoveringAttempt`), which its file
        /// does not say yet.
        public var recovered = false
        /// Why `envelope.json` could not be read, when the envelope is the
        /// spare it replaced (`envelope.json.tmp`, 6.2): for the log.
        public var damage: String?
    }

    /// Validates the directory through a descriptor and returns it open with its envelope.
    public func open(id: QueueID, trustedOwners: Set<uid_t>, allowStaleUpdate: Bool = true) throws(Problem) -> Opened {
        guard let info = Self.lstatus(path) else { throw Problem("vanished while being read") }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw Problem("\(Self.kind(of: info.st_mode)), not a message directory") }
        let directory: DirectoryHandle
        let names: [String]
        let owner: uid_t
        do {
            directory = try DirectoryHandle(path: path)
            owner = try directory.status().st_uid
            names = try directory.names()
        } catch {
            throw Problem("cannot be listed: \(error)", code: error.code)
        }
        let expected: Set = [SpoolLayout.messageFile, SpoolLayout.envelopeFile]
        for name in names where !expected.contains(name) {
            if allowStaleUpdate && name == SpoolLayout.envelopeTemporaryFile {
                // Removed by name later: it must be a file, never a tree to walk.
                guard let file = directory.status(of: name), file.st_mode & S_IFMT == S_IFREG else {
                    throw Problem("\(name) is not a regular file")
                }
                continue
            }
            throw Problem("unexpected entry \"\(name)\"")
        }
        var message = stat()
        var envelopeStatus = stat()
        for name in expected.sorted() {
            guard names.contains(name) else { throw Problem("missing \(name)") }
            guard let file = directory.status(of: name) else { throw Problem("\(name) vanished while being read") }
            guard file.st_mode & S_IFMT == S_IFREG else { throw Problem("\(name) is \(Self.kind(of: file.st_mode))") }
            guard file.st_nlink == 1 else { throw Problem("\(name) has \(file.st_nlink) links") }
            guard file.st_uid == owner || trustedOwners.contains(file.st_uid) else {
                throw Problem("wrong owner: \(name) belongs to uid \(file.st_uid), the directory to uid \(owner)")
            }
            if name == SpoolLayout.messageFile { message = file } else { envelopeStatus = file }
        }
        var envelope: Envelope
        var damage: String?
        do throws(Problem) {
            envelope = try Self.envelope(SpoolLayout.envelopeFile, in: directory, id: id, messageSize: Int(message.st_size))
        } catch {
            // A power loss after an update without fsync may leave the new
            // envelope torn; the one it replaced is the spare (6.2), and holds.
            let spareName = SpoolLayout.envelopeTemporaryFile
            guard !error.isTransient, names.contains(spareName), let spare = directory.status(of: spareName),
                  spare.st_mode & S_IFMT == S_IFREG, spare.st_nlink == 1,
                  spare.st_uid == owner || trustedOwners.contains(spare.st_uid),
                  let previous = try? Self.envelope(spareName, in: directory, id: id, messageSize: Int(message.st_size))
            else { throw error }
            envelope = previous
            envelopeStatus = spare
            damage = error.description
        }
        if !trustedOwners.contains(owner), envelope.uid != Int(owner) {
            throw Problem("wrong owner: the directory belongs to uid \(owner) but the envelope claims uid \(envelope.uid)")
        }
        var opened = Opened(directory: directory, envelope: envelope, owner: owner, damage: damage)
        if let recovered = envelope.recoveringAttempt(modifiedSeconds: envelopeStatus.st_mtim.tv_sec,
                                                      nanoseconds: envelopeStatus.st_mtim.tv_nsec) {
            opened = Opened(directory: directory, envelope: recovered, owner: owner, recovered: true, damage: damage)
        }
        return opened
    }

    /// The envelope in file `name`, decoded and held to the directory's ID and the message's size.
    static func envelope(_ name: String, in directory: DirectoryHandle, id: QueueID, messageSize: Int) throws(Problem) -> Envelope {
        let envelope: Envelope
        do {
            envelope = try Envelope.decode(try readEnvelope(in: directory, name: name))
        } catch let error as EnvelopeError {
            throw Problem(error.description)
        } catch {
            throw Problem("\(error)")
        }
        guard envelope.id == id else {
            throw Problem("envelope id \(envelope.id) does not match the directory name \(id)")
        }
        guard messageSize == envelope.size else {
            throw Problem("message has \(messageSize) octets, the envelope says \(envelope.size)")
        }
        return envelope
    }

    /// The bytes of `envelope.json`, opened without following links and bounded in size.
    public func readEnvelopeData() throws(Problem) -> Data {
        do {
            return try Self.readEnvelope(in: DirectoryHandle(path: path))
        } catch let problem as Problem {
            throw problem
        } catch {
            throw Problem("cannot open \(SpoolLayout.envelopeFile): \(error)")
        }
    }

    static func readEnvelope(in directory: DirectoryHandle, name: String = SpoolLayout.envelopeFile) throws(Problem) -> Data {
        let fd: Int32
        let info: stat
        do {
            (fd, info) = try directory.openRegularFile(name)
        } catch {
            throw Problem("cannot open \(name): \(POSIX.errorText(error.code))", code: error.code)
        }
        defer { close(fd) }
        guard info.st_size <= Envelope.maxEncodedSize else {
            throw Problem("\(name) is larger than \(Envelope.maxEncodedSize) octets")
        }
        do {
            return Data(try RegularFile.read(fd, upTo: Int(info.st_size)))
        } catch {
            throw Problem("cannot read \(name): \(error)", code: error.code)
        }
    }
}
