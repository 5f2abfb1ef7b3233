import Glibc

/// Opening and reading a file that someone else may have put in place: a
/// spool file another user wrote, a configuration file, /etc/passwd.
///
/// One way for all of them: `O_NOFOLLOW` (no link followed), `O_NONBLOCK` (a
/// FIFO swapped in cannot hang the reader), then `fstat` on what was opened:
/// a regular file, with one link where a second would mean someone kept
/// another name for it, and of the size the caller was told, if told.
public enum RegularFile {
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        /// errno, or EINVAL for a file of the wrong kind or size.
        public let code: Int32
        public let description: String
    }

    /// Opens `name` (relative to the directory descriptor `directory`, or a
    /// path with the default `AT_FDCWD`) for reading; the caller closes it.
    public static func open(_ name: String, in directory: Int32 = AT_FDCWD, singleLink: Bool = true,
                            expectedSize: Int? = nil) throws(Refusal) -> (fd: Int32, status: stat) {
        let fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw Refusal(code: errno, description: POSIX.errorText(errno)) }
        var info = stat()
        let problem: String? = if fstat(fd, &info) != 0 {
            POSIX.errorText(errno)
        } else if info.st_mode & S_IFMT != S_IFREG {
            "not a regular file"
        } else if singleLink && info.st_nlink != 1 {
            "has \(info.st_nlink) links"
        } else if let expectedSize, Int(info.st_size) != expectedSize {
            "has \(info.st_size) octets, not \(expectedSize)"
        } else {
            nil
        }
        if let problem {
            close(fd)
            throw Refusal(code: EINVAL, description: problem)
        }
        return (fd, info)
    }

    /// Reads from `fd` until its end or `limit` octets, whichever comes first.
    public static func read(_ fd: Int32, upTo limit: Int) throws(Refusal) -> [UInt8] {
        do throws(SystemCallError) {
            return try POSIX.read(fd, upTo: limit)
        } catch {
            throw Refusal(code: error.code, description: error.description)
        }
    }
}
