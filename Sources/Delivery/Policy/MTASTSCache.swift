import Glibc
import PosternCore
import SpoolDrop
import Synchronization

/// A fetched MTA-STS policy with its TXT id and its times.
public struct CachedMTASTSPolicy: Sendable, Equatable {
    public var domain: String
    /// The `id` of the `_mta-sts` TXT record it was fetched under (RFC 8461 3.1).
    public var id: String
    public var fetched: Double
    /// The policy text as served; parsed again on load, so one parser decides.
    public var text: String
    public var policy: MTASTSPolicy

    public init(domain: String, id: String, fetched: Double, text: String, policy: MTASTSPolicy) {
        self.domain = domain
        self.id = id
        self.fetched = fetched
        self.text = text
        self.policy = policy
    }

    /// When it stops being honoured: `max_age` after the fetch (RFC 8461 5.1).
    public var expires: Double { fetched + Double(policy.maxAge) }

    /// When a refresh is due although the id did not change (RFC 8461 5.1
    /// "proactively refresh"): a day after the fetch, or half-way to expiry
    /// for shorter policies, so that a working domain never lets one lapse.
    public var refreshDue: Double { fetched + min(86_400, Double(policy.maxAge) / 2) }
}

/// The persistent MTA-STS policy cache: `SPOOL/mta-sts/DOMAIN.json`, one file
/// per policy domain (spool-layout.md 11).
///
/// Written by the atomic protocol (a temporary file written and fsynced, then
/// renamed over the old one), so a reader sees the old policy or the new one,
/// never a mix; one daemon holds the spool lock, and a mutex orders its
/// delivery threads. An unreadable or invalid file counts as no cache entry:
/// the policy is fetched again, which is all it would cost.
public final class MTASTSCache: Sendable {
    public let directory: String
    private let fileSystem: any FileSystem
    private let writing = Mutex<Void>(())
    /// The entries read so far, each with the identity of the file it was
    /// read from: a `load` whose file is unchanged (`lstat`) takes it from
    /// here instead of reading and parsing it again. The file stays what
    /// counts: replaced, edited or removed, it is read again (or is gone).
    private let memo = Mutex<[String: (file: FileIdentity, entry: CachedMTASTSPolicy)]>([:])
    /// Entries remembered at most (then forgotten all at once): a few
    /// kilobytes each, for the domains a server sends to with a policy.
    static let memoLimit = 4096

    /// What tells one version of a file from another.
    struct FileIdentity: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = Int64(info.st_mtim.tv_sec)
            modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
        }
    }

    public init(directory: String, fileSystem: any FileSystem = SystemFileSystem()) {
        self.directory = directory
        self.fileSystem = fileSystem
    }

    /// The file of a domain; nil for a name that could make a path (it was a
    /// recipient domain, but is checked again before it names a file).
    func path(_ domain: String) -> String? {
        Self.fileName(domain).map { directory + "/" + $0 }
    }

    /// `DOMAIN.json` for a lower-case A-label domain; nil for anything else
    /// (spool-layout.md 11). Shared with the TLSRPT counts.
    static func fileName(_ domain: String) -> String? {
        guard !domain.isEmpty, domain.utf8.count <= 253, domain.first != ".",
              domain.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x2E }),
              !domain.contains("..") else { return nil }
        return domain + ".json"
    }

    public func load(_ domain: String) -> CachedMTASTSPolicy? {
        guard let path = path(domain) else { return nil }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            memo.withLock { _ = $0.removeValue(forKey: domain) }
            return nil   // never fetched (or removed by hand)
        }
        if let known = memo.withLock({ $0[domain] }), known.file == FileIdentity(info) { return known.entry }
        guard let (bytes, opened) = Self.readWithStatus(path),
              case .object(let object)? = try? JSONValue.decode(bytes),
              case .string(let id)? = object["id"], case .string(let fetched)? = object["fetched"],
              case .string(let text)? = object["policy"], let time = Timestamp.parseEpochSeconds(fetched),
              let policy = try? MTASTSPolicy.parse(Array(text.utf8)) else {
            return nil   // absent or damaged: as if never fetched (the type's discussion says why)
        }
        let entry = CachedMTASTSPolicy(domain: domain, id: id, fetched: time, text: text, policy: policy)
        memo.withLock { memo in
            if memo.count >= Self.memoLimit { memo.removeAll() }
            memo[domain] = (FileIdentity(opened), entry)
        }
        return entry
    }

    /// The file's bytes, opened as a file someone may have tampered with; nil when unreadable.
    static func read(_ path: String) -> [UInt8]? {
        readWithStatus(path)?.bytes
    }

    /// The file's bytes and its status as opened (`fstat`).
    private static func readWithStatus(_ path: String) -> (bytes: [UInt8], status: stat)? {
        guard let (fd, status) = try? RegularFile.open(path) else { return nil }
        defer { close(fd) }
        // An entry is at most one policy, escaped, and a few short fields.
        guard let bytes = try? RegularFile.read(fd, upTo: MTASTSPolicy.maxSize * 7 + 4096) else { return nil }
        return (bytes, status)
    }

    public func store(_ entry: CachedMTASTSPolicy) throws(SpoolIOError) {
        guard let path = path(entry.domain) else { throw SpoolIOError("store MTA-STS policy", entry.domain, EINVAL) }
        let object: JSONValue = .object([
            "domain": .string(entry.domain), "id": .string(entry.id),
            "fetched": .string(Timestamp.format(epochSeconds: entry.fetched)),
            "expires": .string(Timestamp.format(epochSeconds: entry.expires)),
            "mode": .string(entry.policy.mode.rawValue), "policy": .string(entry.text),
        ])
        try writing.withLock { _ throws(SpoolIOError) in
            try Self.ensureDirectory(directory, fileSystem)
            let temporary = path + ".tmp"
            try? fileSystem.removeFile(temporary)   // a leftover of a crash; absent as a rule
            try fileSystem.writeFile(temporary, object.encodedBytes(), mode: 0o600)
            try fileSystem.replace(temporary, with: path)
        }
    }

    static func ensureDirectory(_ path: String, _ fileSystem: any FileSystem) throws(SpoolIOError) {
        var status = stat()
        if lstat(path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else { throw SpoolIOError("use as a directory", path, ENOTDIR) }
            return
        }
        try fileSystem.makeDirectory(path, mode: 0o700)
    }
}
