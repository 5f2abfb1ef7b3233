import Glibc
import PosternCore
import Synchronization

/// Delivery into a local Maildir (D. J. Bernstein's maildir specification,
/// https://cr.yp.to/proto/maildir.html): for a mailbox on this machine, or for
/// tests and archives, without an MTA.
///
/// One request makes one file: the message with a `Return-Path:` line for the
/// sender and one `Delivered-To:` line per recipient prepended. A Maildir has
/// no envelope, so these header lines are the only record of who the message
/// was delivered for; writing one file rather than one per recipient keeps a
/// message sent to two addresses of the same mailbox from appearing twice.
///
/// The spec's protocol makes a delivery atomic and safe against crashes:
/// write the file under a unique name in `tmp/`, `fsync` it, link it into
/// `new/` (`link(2)` refuses an existing name, so nothing is ever overwritten),
/// remove the `tmp/` name, and `fsync` `new/` so that the entry itself is on
/// disk before the delivery is reported. A reader sees the whole message or
/// nothing; a crash leaves at most a stray file in `tmp/`, which mail readers
/// clean up after 36 hours. (A crash after the link but before the queue
/// records the result delivers the message again on the next attempt: at
/// least once, as with any MTA.)
///
/// Line endings: the spool stores messages with CRLF (as SMTP sends them);
/// Maildir files are read by local programs, which expect LF, so CRLF becomes
/// LF while copying. A bare CR is left as it is.
///
/// `tmp/`, `new/` and `cur/` are opened relative to the Maildir with
/// `O_NOFOLLOW`, so a symbolic link put in their place is refused rather than
/// followed to somewhere else; the Maildir path itself is configuration and
/// may be a link.
///
/// Every failure is temporary (`.deferred`): a full disk, a missing or
/// unwritable directory, and a refused link are all for the operator to fix
/// while the message waits in the queue.
public struct MaildirTransport: Transport {
    /// The configuration's name of the transport.
    public let name: String
    /// The Maildir (created with `tmp/`, `new/` and `cur/`, mode 0700, when missing;
    /// its parent must exist).
    public let path: String
    /// The host name in unique names (the system's by default).
    public let hostname: String

    /// The block size for copying: messages are streamed, never loaded whole.
    static let blockSize = 64 * 1024

    /// Deliveries made by this process, for the `Q` part of unique names.
    private static let deliveries = Atomic<UInt64>(0)

    public init(name: String = "maildir", path: String, hostname: String? = nil) {
        self.name = name
        var path = path
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        self.path = path
        self.hostname = hostname ?? MaildirTransport.systemHostname()
    }

    public func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport {
        guard !request.recipients.isEmpty else { return AttemptReport(results: []) }
        let started = Deadline.now
        var report: AttemptReport
        do {
            let file = try store(request)
            report = .all(request.recipients, .delivered, text: "delivered to maildir \(file)")
        } catch {
            report = .all(request.recipients, .deferred, text: "maildir \(path): \(error)")
        }
        report.duration = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        return report
    }

    /// Writes the message into `tmp/`, moves it to `new/`, and returns its path there.
    private func store(_ request: DeliveryRequest) throws(MaildirError) -> String {
        let source: Int32
        do {
            source = try RegularFile.open(request.messagePath, expectedSize: request.messageSize).fd
        } catch {
            throw MaildirError(description: "open \(request.messagePath): \(error)")
        }
        defer { close(source) }
        let directories = try MaildirDirectories(path)
        defer { directories.close() }

        let (name, fd) = try createInTmp(directories)
        // The tmp/ name goes in every case: after the link it is the second half of the move.
        defer { unlinkat(directories.tmp, name, 0) }
        do {
            defer { close(fd) }
            let tmpPath = "\(path)/tmp/\(name)"
            try write(header(for: request), to: fd, path: tmpPath)
            try copy(from: source, sourcePath: request.messagePath, to: fd, path: tmpPath)
            guard fsync(fd) == 0 else { throw MaildirError("fsync", tmpPath) }
        }
        guard linkat(directories.tmp, name, directories.new, name, 0) == 0 else {
            throw MaildirError("link to \(path)/new/\(name)", "\(path)/tmp/\(name)")
        }
        guard fsync(directories.new) == 0 else { throw MaildirError("fsync", "\(path)/new") }
        return "\(path)/new/\(name)"
    }

    /// Creates a new file in `tmp/` under a fresh unique name. `O_EXCL` makes a
    /// clash an error rather than a shared file; the next name differs in `Q`.
    private func createInTmp(_ directories: MaildirDirectories) throws(MaildirError) -> (String, Int32) {
        var attempts = 0
        while true {
            let name = uniqueName()
            let fd = openat(directories.tmp, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 { return (name, fd) }
            attempts += 1
            guard errno == EEXIST, attempts < 5 else { throw MaildirError("create", "\(path)/tmp/\(name)") }
        }
    }

    /// `Return-Path:` as final delivery adds it (RFC 5321 section 4.4; `<>` for
    /// the null sender), then one `Delivered-To:` per recipient (qmail's and
    /// Postfix's convention), with LF endings like the rest of the file.
    /// Line breaks are removed from the addresses so they cannot add header lines.
    func header(for request: DeliveryRequest) -> [UInt8] {
        func clean(_ text: String) -> String { String(text.filter { !$0.isNewline }) }
        var text = "Return-Path: <\(clean(request.sender))>\n"
        for recipient in request.recipients {
            text += "Delivered-To: \(clean(recipient))\n"
        }
        return Array(text.utf8)
    }

    /// Streams the message from `source` to `fd` in blocks, CRLF becoming LF.
    private func copy(from source: Int32, sourcePath: String, to fd: Int32, path: String) throws(MaildirError) {
        let input = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.blockSize, alignment: 1)
        defer { input.deallocate() }
        // One more octet than a block: a CR held back from the last block may come out in front.
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.blockSize + 1, alignment: 1)
        defer { output.deallocate() }
        var pendingCR = false
        while true {
            let count: Int
            do throws(SystemCallError) { count = try POSIX.readSome(source, into: input) } catch {
                throw MaildirError("read", sourcePath, code: error.code)
            }
            if count == 0 { break }
            let produced = Self.convertLineEndings(UnsafeRawBufferPointer(rebasing: input[..<count]), into: output, pendingCR: &pendingCR)
            try write(UnsafeRawBufferPointer(rebasing: output[..<produced]), to: fd, path: path)
        }
        if pendingCR { try write([0x0D], to: fd, path: path) }
    }

    /// Copies `input` to `output` with each CRLF made LF, and returns the octets
    /// written. A CR at the end of `input` is held back in `pendingCR` until the
    /// next block shows whether an LF follows; `output` needs `input.count + 1` octets.
    static func convertLineEndings(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
                                   pendingCR: inout Bool) -> Int {
        guard let base = input.baseAddress, input.count > 0 else { return 0 }
        var written = 0
        if pendingCR {
            pendingCR = false
            if input[0] != 0x0A {
                output[0] = 0x0D
                written = 1
            }
        }
        var offset = 0
        while offset < input.count {
            // memchr finds the next CR; the run before it is copied as it is.
            let end = memchr(base + offset, 0x0D, input.count - offset).map { UnsafeRawPointer($0) - base } ?? input.count
            output.baseAddress!.advanced(by: written).copyMemory(from: base + offset, byteCount: end - offset)
            written += end - offset
            guard end < input.count else { break }
            if end + 1 == input.count {
                pendingCR = true
            } else if input[end + 1] != 0x0A {
                output[written] = 0x0D
                written += 1
            }
            offset = end + 1
        }
        return written
    }

    private func write(_ bytes: [UInt8], to fd: Int32, path: String) throws(MaildirError) {
        do throws(SystemCallError) { try POSIX.writeAll(fd, bytes) } catch { throw MaildirError("write", path, code: error.code) }
    }

    private func write(_ bytes: UnsafeRawBufferPointer, to fd: Int32, path: String) throws(MaildirError) {
        do throws(SystemCallError) { try POSIX.writeAll(fd, bytes) } catch { throw MaildirError("write", path, code: error.code) }
    }

    /// `<seconds>.M<microseconds>P<pid>Q<deliveries>.<host>`, the spec's modern
    /// form: unique on this host as long as the clock does not step back within
    /// one process's run, and the `Q` counter covers even that.
    func uniqueName() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let count = Self.deliveries.add(1, ordering: .relaxed).newValue
        return "\(now.tv_sec).M\(now.tv_nsec / 1000)P\(getpid())Q\(count).\(Self.escape(hostname))"
    }

    /// The host name as the spec wants it in a file name: `/` as `\057` and `:`
    /// as `\072` (`:` separates the flags that readers append in `cur/`).
    static func escape(_ hostname: String) -> String {
        var escaped = ""
        for character in hostname {
            switch character {
            case "/": escaped += "\\057"
            case ":": escaped += "\\072"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    /// The machine's own name, as the Maildir specification's "host" is
    /// (not the mail name of /etc/mailname): `SystemHost` documents the order.
    static func systemHostname() -> String {
        SystemHost.name() ?? SystemHost.lastResort
    }
}

/// The Maildir's `tmp/` and `new/`, open, made (with `cur/`) when missing.
private struct MaildirDirectories {
    let tmp: Int32
    let new: Int32

    init(_ path: String) throws(MaildirError) {
        var created = false
        if mkdir(path, 0o700) == 0 {
            // The mode is set explicitly: it must not depend on the daemon's umask.
            guard chmod(path, 0o700) == 0 else { throw MaildirError("chmod", path) }
            created = true
        } else if errno != EEXIST {
            throw MaildirError("create", path)
        }
        let root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { throw MaildirError("open directory", path) }
        var opened: [Int32] = []
        do throws(MaildirError) {
            for sub in ["tmp", "new", "cur"] {
                opened.append(try Self.subdirectory(sub, of: root, path: path, created: &created))
            }
            // New directories are entries in their parents: on disk before anything is put in them.
            if created {
                guard fsync(root) == 0 else { throw MaildirError("fsync", path) }
                let parent = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
                let parentFD = open(parent.isEmpty ? "/" : parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                if parentFD >= 0 {
                    fsync(parentFD)
                    Glibc.close(parentFD)
                }
            }
        } catch {
            opened.forEach { Glibc.close($0) }
            Glibc.close(root)
            throw error
        }
        Glibc.close(opened[2])
        Glibc.close(root)
        self.tmp = opened[0]
        self.new = opened[1]
    }

    /// Opens (creating if missing) `name` in `root`, never through a symbolic link.
    private static func subdirectory(_ name: String, of root: Int32, path: String, created: inout Bool) throws(MaildirError) -> Int32 {
        let made = mkdirat(root, name, 0o700) == 0
        guard made || errno == EEXIST else { throw MaildirError("create", "\(path)/\(name)") }
        let fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            var info = stat()
            if fstatat(root, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFLNK {
                throw MaildirError(description: "\(path)/\(name) is a symbolic link; refusing to follow it")
            }
            throw MaildirError("open directory", "\(path)/\(name)", code: code)
        }
        if made {
            created = true
            guard fchmod(fd, 0o700) == 0 else {
                let error = MaildirError("chmod", "\(path)/\(name)")
                Glibc.close(fd)
                throw error
            }
        }
        return fd
    }

    func close() {
        Glibc.close(tmp)
        Glibc.close(new)
    }
}

/// A failed system call in words: `write /m/tmp/NAME: No space left on device`.
struct MaildirError: Error, CustomStringConvertible {
    let description: String

    init(description: String) {
        self.description = description
    }

    init(_ operation: String, _ path: String, code: Int32 = errno) {
        description = "\(operation) \(path): \(POSIX.errorText(code))"
    }
}
