import Foundation
import PosternCore
import TOMLKit

/// A transport's AUTH secret, read from the file its `credentials` key names:
///
///     username = "me@example.net"
///     password = "secret"
///
/// The secret never sits in the main configuration (which admins paste into
/// bug reports) or on a command line (which every user can read in /proc). Like
/// ssh with its keys, Postern refuses a file that others could read: mode 0600
/// or stricter, owned by the user reading it (the daemon's) or by root, a
/// regular file reached without a symbolic link at the end.
public struct CredentialsSecret: Sendable, CustomStringConvertible {
    public let username: String
    public let password: String

    /// Never the password: this value may end up interpolated into a log line.
    public var description: String { "credentials for \(username)" }
}

public enum CredentialsFile {
    static let sizeLimit = 64 * 1024

    /// Reads and checks the file; every refusal says what to fix.
    public static func load(_ path: String) throws(ConfigurationError) -> CredentialsSecret {
        func fail(_ message: String) -> ConfigurationError {
            ConfigurationError(source: path, message: message)
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            if code == ELOOP { throw fail("the credentials file is a symbolic link; name the file itself") }
            throw fail("cannot open the credentials file: \(POSIX.errorText(code))")
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw fail("cannot stat the credentials file: \(POSIX.errorText(errno))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw fail("the credentials file is not a regular file") }
        guard status.st_uid == geteuid() || status.st_uid == 0 else {
            throw fail("the credentials file belongs to uid \(status.st_uid); it must belong to the daemon's user (uid \(geteuid())) or root")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw fail("the credentials file is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard status.st_size <= sizeLimit else { throw fail("the credentials file is larger than \(sizeLimit) bytes") }
        let bytes: [UInt8]
        do throws(SystemCallError) {
            bytes = try POSIX.read(fd, upTo: Int(status.st_size))
        } catch {
            throw fail("cannot read the credentials file: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self), !text.utf8.contains(0) else {
            throw fail("the credentials file is not UTF-8 text")
        }
        return try parse(text, source: path)
    }

    /// `username` and `password`, both non-empty strings, nothing else.
    static func parse(_ text: String, source: String) throws(ConfigurationError) -> CredentialsSecret {
        let table: TOMLTable
        // A header such as `[!]` or an array such as `[}]` would abort the process inside toml++.
        if let trap = TOMLTrapCheck.firstTrap(in: text) {
            throw ConfigurationError(source: source, line: trap.line, message: "TOML syntax error in the credentials file")
        }
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            // The message of a syntax error could quote the password: the line only.
            throw ConfigurationError(source: source, line: error.source.begin.line, message: "TOML syntax error in the credentials file")
        } catch {
            throw ConfigurationError(source: source, message: "the credentials file is not TOML")
        }
        for key in table.keys where key != "username" && key != "password" {
            throw ConfigurationError(source: source, key: key, message: "unknown key; a credentials file has username and password only")
        }
        guard let username = table["username"]?.string, !username.isEmpty,
              let password = table["password"]?.string, !password.isEmpty else {
            throw ConfigurationError(source: source, message: "needs username = \"...\" and password = \"...\", both non-empty strings")
        }
        return CredentialsSecret(username: username, password: password)
    }
}

extension Configuration {
    /// Each credentials file that cannot be used (transports' and
    /// `smtp.users`), as an error: `config check` reports them, the daemon
    /// refuses to start on them.
    public func credentialProblems() -> [ConfigurationError] {
        (transports.compactMap(\.credentials) + smtp.users).compactMap { path in
            do throws(ConfigurationError) {
                _ = try CredentialsFile.load(path)
                return nil
            } catch {
                return error
            }
        }
    }
}
