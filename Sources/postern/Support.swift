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

/// Writes bytes to standard output.
func output(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

extension GlobalOptions {
    var layout: SpoolLayout { SpoolLayout(root: spool) }
}
