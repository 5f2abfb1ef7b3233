import CSysShim
import Glibc

/// A file's POSIX access ACL as the kernel stores it (the extended attribute
/// `system.posix_acl_access`: a little-endian version 2 header, then tag,
/// permissions and id per entry), read without libacl, for the tests that
/// check who a drop lets in (spool-layout.md section 3).
public enum FileACL {
    /// The named users (ACL_USER entries) with their permissions; [:] when
    /// the file has no ACL beyond its mode. No link is followed.
    public static func users(_ path: String) -> [uid_t: mode_t] {
        var raw = [UInt8](repeating: 0, count: 1024)
        let count = Int(csys_lgetxattr(path, "system.posix_acl_access", &raw, UInt(raw.count)))
        guard count >= 4 else { return [:] }
        func number(_ offset: Int, _ width: Int) -> UInt32 {
            (0..<width).reduce(UInt32(0)) { $0 | UInt32(raw[offset + $1]) << (8 * $1) }
        }
        var users: [uid_t: mode_t] = [:]
        var offset = 4
        while offset + 8 <= count {
            if number(offset, 2) == 0x02 { users[number(offset + 4, 4)] = mode_t(number(offset + 2, 2)) }
            offset += 8
        }
        return users
    }
}
