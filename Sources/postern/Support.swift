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
/// as it ends any Unix tool: SIGPIPE.
func output(_ bytes: [UInt8]) {
    var written = 0
    while written < bytes.count {
        let result = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress! + written, bytes.count - written) }
        if result < 0 {
            if errno == EINTR { continue }
            return
        }
        written += result
    }
}

extension GlobalOptions {
    var layout: SpoolLayout { SpoolLayout(root: spool) }
}
