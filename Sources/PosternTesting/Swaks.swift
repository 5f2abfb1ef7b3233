import Foundation

/// Runs swaks, the Swiss Army Knife for SMTP (Debian's package, installed by
/// tools/test.sh), as a second independent SMTP client beside Python's
/// smtplib: its own parser of replies, its own PIPELINING, STARTTLS (through
/// Net::SSLeay) and AUTH.
///
/// Its transcript marks each line: `<-` a reply and ` ->` a command in the
/// clear, `<~` and ` ~>` inside TLS, `<**` an error reply, `===` and `***`
/// its own notes. Its exit status says how far it got (0: the message was
/// accepted; 23, 24, 25: refused at MAIL, RCPT, DATA; 28: AUTH failed).
public enum Swaks {
    public static let path = "/usr/bin/swaks"

    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Runs swaks with `arguments`; returns its exit status and the
    /// transcript, standard output and standard error together, in the
    /// order written.
    public static func run(_ arguments: [String], input: Data? = nil) throws -> (status: Int32, transcript: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        // Never a prompt: swaks asks for a missing password on the terminal.
        let inputFile = NSTemporaryDirectory() + "swaks-input-\(UUID().uuidString)"
        try (input ?? Data()).write(to: URL(fileURLWithPath: inputFile))
        defer { unlink(inputFile) }
        process.standardInput = FileHandle(forReadingAtPath: inputFile)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
