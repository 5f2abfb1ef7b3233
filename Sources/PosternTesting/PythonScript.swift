import Foundation

/// Runs a Python 3 program as an independent second opinion: its email and
/// mailbox packages read what Postern wrote, without sharing our parsers.
public enum PythonScript {
    public struct Failure: Error, CustomStringConvertible { public let description: String }

    /// Runs `script` with `arguments`, feeding `input` on standard input;
    /// returns standard output, or throws with standard error on a non-zero exit.
    public static func run(_ script: String, arguments: [String] = [], input: Data? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + arguments
        let inputFile = NSTemporaryDirectory() + "python-input-\(UUID().uuidString)"
        try (input ?? Data()).write(to: URL(fileURLWithPath: inputFile))
        defer { unlink(inputFile) }
        process.standardInput = FileHandle(forReadingAtPath: inputFile)
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Errors are small; read them after the output so neither pipe fills.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "python3 exited \(process.terminationStatus): \(String(decoding: errorData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
