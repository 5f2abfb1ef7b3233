import Glibc

/// This machine's host name, as gethostname(2) gives it: the default for
/// `hostname`, EHLO names and Maildir file names, in one place.
public enum SystemHost {
    /// nil when the call fails or the name is empty: each caller decides
    /// whether to fall back ("localhost") or ask for `hostname` in the file.
    public static func name() -> String? {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return nil }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
        return name.isEmpty ? nil : name
    }

    /// The mail name Debian's MTAs use when none is configured: the first line
    /// of `/etc/mailname` (Debian policy 11.6), when root owns the file, no one
    /// else may write it, and it holds a plain host name; nil otherwise.
    public static func mailName(path: String = "/etc/mailname") -> String? {
        guard let (fd, status) = try? RegularFile.open(path, singleLink: false) else { return nil }
        defer { close(fd) }
        guard status.st_uid == 0, status.st_mode & 0o022 == 0, let bytes = try? RegularFile.read(fd, upTo: 512) else { return nil }
        let line = String(decoding: bytes.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let name = line.trimmingWhitespace()
        return isPlainHostName(name) ? name : nil
    }

    /// Letters, digits and hyphens in dot-separated labels of 1 to 63, at most
    /// 253 in all, no trailing dot: what EHLO and Message-IDs can carry as is.
    static func isPlainHostName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                  label.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
            else { return false }
        }
        return true
    }
}
