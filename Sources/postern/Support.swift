import ArgumentParser
import Foundation
import PosternCore
import Spool

/// Writes one line to standard error, prefixed with the program name, as Unix tools do.
/// Messages quote untrusted text (envelope fields, server replies), so terminal
/// controls are escaped; newlines and tabs, which some messages lay out, are kept.
func warn(_ message: String, program: String = "postern") {
    let safe = TerminalText.safe(message, keeping: ["\n", "\t"])
    FileHandle.standardError.write(Data("\(program): \(safe)\n".utf8))
}

/// Reports a failure and turns it into the exit status it stands for.
func failure(_ error: SpoolError, program: String = "postern") -> ExitCode {
    warn(error.message, program: program)
    return ExitCode(error.status.rawValue)
}

/// Writes text to standard output.
func output(_ text: String) {
    output(Array(text.utf8))
}

/// Writes bytes to standard output with write(2), all of them (a pipe may
/// take them in parts). A reader that went away (`| head`) ends the program
/// as it ends any Unix tool: SIGPIPE. Any other failure (a full disk under
/// `> file`) ends it with one line and EX_IOERR, as coreutils do, rather
/// than a silently cut listing and a status of success.
func output(_ bytes: [UInt8]) {
    do throws(SystemCallError) {
        try POSIX.writeAll(STDOUT_FILENO, bytes)
    } catch {
        warn("cannot write to standard output: \(error)")
        exit(ExitStatus.ioError.rawValue)
    }
}

extension GlobalOptions {
    var layout: SpoolLayout { SpoolLayout(root: spool) }
}
