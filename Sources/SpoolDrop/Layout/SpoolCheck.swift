import Glibc
import PosternBase

/// Checks that a directory is a spool this program understands before anything
/// reads or writes it, so that a typo in `--spool` gives one clear line instead
/// of a drop scattered into the wrong place.
public enum SpoolCheck {
    /// Throws unless `layout.root` holds a `VERSION` file with this layout version.
    public static func requireSpool(_ layout: SpoolLayout) throws(SpoolError) {
        var info = stat()
        guard stat(layout.root, &info) == 0 else {
            let code = errno
            if code == EACCES { throw SpoolError(.noPermission, "spool \(layout.root): permission denied") }
            throw SpoolError(.cantCreate, "spool \(layout.root) does not exist; create it with 'postern init'")
        }
        let version: [UInt8]
        do {
            let (fd, _) = try RegularFile.open(layout.versionFile, singleLink: false)
            defer { close(fd) }
            version = try RegularFile.read(fd, upTo: 64)
        } catch where error.code == EACCES {
            throw SpoolError(.noPermission, "\(layout.versionFile): permission denied")
        } catch {
            throw SpoolError(.cantCreate, "\(layout.root) is not a Postern spool (no VERSION file); create it with 'postern init'")
        }
        let text = String(decoding: version, as: UTF8.self).trimmingWhitespace()
        guard text == String(SpoolLayout.version) else {
            throw SpoolError(.config, "\(layout.versionFile) says layout version \"\(text)\"; this program knows version \(SpoolLayout.version)")
        }
    }

    /// Like `requireSpool`, and the drop areas must be writable by this process.
    public static func requireWritable(_ layout: SpoolLayout) throws(SpoolError) {
        try requireSpool(layout)
        // The effective ids decide (AT_EACCESS): a set-group-ID drop program
        // writes with its drop group, which access(2)'s real ids would miss.
        for path in [layout.tmp, layout.directory(.drop)] where faccessat(AT_FDCWD, path, W_OK | X_OK, AT_EACCESS) != 0 {
            let code = errno
            switch code {
            case EACCES, EPERM:
                throw SpoolError(.noPermission, "\(path): not writable by this user (is it in the spool's drop group?)")
            case EROFS:
                throw SpoolError(.tempFail, "\(path): read-only file system")
            default:
                throw SpoolError(.cantCreate, "\(path): \(POSIX.errorText(code))")
            }
        }
    }
}
