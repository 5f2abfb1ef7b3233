import Glibc

/// This host's names, looked up in one place with one fallback order.
///
/// The name mail carries when the configuration names none (EHLO, the drop's
/// Message-ID and completed addresses, `hostname`'s default) is
/// `defaultMailName()`:
///
/// 1. the first line of `/etc/mailname`, when it is safe and plain (`mailName(path:)`);
/// 2. else the machine's name from gethostname(2) (`name()`);
/// 3. else nil. The daemon's configuration then refuses to start without
///    `hostname` rather than announce a made-up name; a drop or a probe, which
///    must put some name in what it writes, uses `lastResort` ("localhost").
///
/// Maildir file names want the machine itself (the Maildir specification's
/// "host"), not the mail domain: they use `name()`, then `lastResort`.
public enum SystemHost {
    /// The name of last resort, for a program that cannot stop for the lack of one.
    public static let lastResort = "localhost"

    /// The host's mail name by the fallback order above (steps 1 and 2);
    /// the parameters are for tests.
    public static func defaultMailName(mailNamePath: String = "/etc/mailname",
                                       machineName: () -> String? = { name() }) -> String? {
        mailName(path: mailNamePath) ?? machineName()
    }

    /// gethostname(2); nil when the call fails or the name is empty.
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
