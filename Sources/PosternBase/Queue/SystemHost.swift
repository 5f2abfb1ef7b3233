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
}
