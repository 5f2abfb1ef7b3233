/// Process exit statuses from BSD's `<sysexits.h>`, as sendmail, Postfix and
/// every MTA-facing script expect them.
///
/// Scripts and cron act on the class: 75 (`tempFail`) means "try again later,
/// nothing was lost", every other non-zero status means the input was refused.
public enum ExitStatus: Int32, Sendable, Error {
    case ok = 0
    /// The command was used incorrectly: bad flag, missing argument.
    case usage = 64
    /// The input data was incorrect: bad address, bad headers, no recipients.
    case dataError = 65
    /// An input file did not exist or was not readable, or the message was empty.
    case noInput = 66
    /// An internal software error: a bug.
    case software = 70
    /// A service is unavailable: a server refused for good.
    case unavailable = 69
    /// A system error that is not temporary, such as a missing spool directory.
    case osError = 71
    /// An output file could not be created.
    case cantCreate = 73
    /// An I/O error.
    case ioError = 74
    /// A temporary failure: the spool is full, locked or unwritable; retry later.
    case tempFail = 75
    /// Not permitted: the invoking user may not do this.
    case noPermission = 77
    /// Something was not configured properly.
    case config = 78
}
