import Glibc
import PosternBase

/// What the caller may choose, and what it may not.
///
/// Run set-group-ID (real and effective ids differ), the drop trusts nothing
/// its caller controls: every `POSTERN_*` variable and `--spool` are ignored
/// (with one line saying so), and the configuration file is read only if root
/// owns it (spool-layout.md section 3). Run without a set-ID bit, the caller is
/// the one whose privileges are used anyway, and tests and containers may
/// point the drop at another spool and settings.
struct Environment {
    /// Whether the caller's choices count (no set-ID bit in effect).
    let trusted: Bool
    /// The `POSTERN_*` variables set but ignored (set-ID).
    let ignored: [String]
    private let variables: [String: String]

    init() {
        trusted = !User.setID
        var all: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "="), text.hasPrefix("POSTERN_") {
                all[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        ignored = trusted ? [] : all.keys.sorted()
        variables = trusted ? all : [:]
    }

    subscript(name: String) -> String? { variables[name] }
}

/// The invoking user and this machine, from the C library.
enum User {
    /// Whether the real and effective ids differ, as under a set-ID bit.
    static var setID: Bool { getuid() != geteuid() || getgid() != getegid() }

    /// Gives the set-ID group (and user) up for good, or exits.
    static func relinquish() {
        guard setID else { return }
        // setregid with the real id as both also sets the saved id (POSIX).
        guard setregid(getgid(), getgid()) == 0, setreuid(getuid(), getuid()) == 0 else {
            DropProgram.warn("cannot give up set-ID privileges: \(POSIX.errorText(errno))", program: "postern-drop")
            exit(ExitStatus.software.rawValue)
        }
    }

    /// The invoking user's name, or `uidN` when /etc/passwd has no entry.
    static func loginName() -> String {
        passwdEntry()?.name ?? "uid\(getuid())"
    }

    /// The GECOS full name of the invoking user, for a generated `From:`.
    static func fullName() -> String? {
        guard let gecos = passwdEntry()?.gecos else { return nil }
        let name = gecos.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return name.isEmpty ? nil : name
    }

    /// The invoking user's line of /etc/passwd, read directly rather than by
    /// getpwuid(3): in a static executable that would load NSS modules
    /// (libnss_systemd, LDAP...) through dlopen, which static glibc cannot do
    /// safely, and a set-group-ID program should load no code chosen by
    /// configuration anyway. Users known only to a directory service get `uidN`
    /// (and can say who they are with -f).
    static func passwdEntry() -> (name: String, gecos: String)? {
        guard let (fd, _) = try? RegularFile.open("/etc/passwd", singleLink: false) else { return nil }
        defer { close(fd) }
        guard let text = try? RegularFile.read(fd, upTo: 16 << 20) else { return nil }
        let uid = String(getuid())
        for line in text.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard fields.count >= 5, String(decoding: fields[2], as: UTF8.self) == uid else { continue }
            return (String(decoding: fields[0], as: UTF8.self), String(decoding: fields[4], as: UTF8.self))
        }
        return nil
    }

    /// `name` in the directory of this executable (links resolved by the kernel).
    static func siblingExecutable(_ name: String) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "/usr/bin/" + name }
        let path = String(decoding: buffer.prefix(count).map(UInt8.init(bitPattern:)), as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) + "/" + name
    }
}
