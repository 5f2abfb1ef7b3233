import Foundation
import CSysShim
import Glibc
import PosternCore

/// Runs the built `postern` binary as a child process, as users and scripts do.
public struct PosternProcess {
    public struct Result: Sendable {
        public let status: Int32
        /// The signal that ended the process, if one did.
        public let signal: Int32?
        public let stdout: String
        public let stderr: String
    }

    /// The `postern` binary beside the test bundle (`.build/debug/postern`).
    public static var binary: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("postern").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return bundle.appendingPathComponent("postern").path
    }

    /// `postern-drop` beside `postern`: the drop program that `postern drop` runs.
    public static var dropBinary: String {
        URL(fileURLWithPath: binary).deletingLastPathComponent().appendingPathComponent("postern-drop").path
    }

    /// Copies `postern` and `postern-drop` into `directory` (mode 0755), for users
    /// who cannot reach the build directory; returns the copy of `postern`.
    @discardableResult
    public static func copyBinaries(to directory: String) throws -> String {
        try copyBinary(dropBinary, to: directory + "/postern-drop")
        try copyBinary(binary, to: directory + "/postern")
        return directory + "/postern"
    }

    /// Copies the binary to `path` (mode 0755), for users who cannot reach the
    /// build directory. Written through a close-on-exec descriptor: a plain
    /// copy's descriptor could leak into a child another test spawns meanwhile,
    /// and exec would then fail with ETXTBSY ("text file busy").
    public static func copyBinary(_ source: String = binary, to path: String, mode: mode_t = 0o755) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: source))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fchmod(fd, mode) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    }

    /// Runs `postern` (or the binary under another name, through a symlink made
    /// for the call, when `program` is given) with `arguments`, `input` on stdin.
    /// `command`, when given, replaces the binary: a wrapper such as `setpriv`
    /// followed by the program to run.
    public static func run(_ arguments: [String], input: Data = Data(), inputFile: String? = nil,
                           environment: [String: String] = [:], program: String? = nil,
                           command: [String]? = nil) throws -> Result {
        var executable = binary
        var linkDirectory: String?
        if let program {
            let directory = NSTemporaryDirectory() + "/postern-link-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            executable = directory + "/" + program
            try FileManager.default.createSymbolicLink(atPath: executable, withDestinationPath: binary)
            linkDirectory = directory
        }
        defer { if let linkDirectory { try? FileManager.default.removeItem(atPath: linkDirectory) } }

        var env = ProcessInfo.processInfo.environment
        env["POSTERN_HOSTNAME"] = "test.example"
        env["POSTERN_CONFIG"] = "/nonexistent/postern.toml"   // hermetic: never the machine's configuration
        env.removeValue(forKey: "POSTERN_SPOOL")
        for (key, value) in environment { env[key] = value }

        let stdinPipe = try makePipe(), stdoutPipe = try makePipe(), stderrPipe = try makePipe()
        var inputFD = stdinPipe.read
        if let inputFile {
            inputFD = open(inputFile, O_RDONLY | O_CLOEXEC)
            guard inputFD >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inputFD, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2)
        let words = (command ?? [executable]) + arguments
        executable = words[0]
        let argv = words.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        for fd in [stdinPipe.read, stdoutPipe.write, stderrPipe.write] { close(fd) }
        if inputFile != nil { close(inputFD) }
        guard spawned == 0 else {
            for fd in [stdinPipe.write, stdoutPipe.read, stderrPipe.read] { close(fd) }
            throw POSIXError(.init(rawValue: spawned) ?? .EIO)
        }
        // Output is drained on other threads so a chatty child cannot block on a full pipe.
        let outData = Drain(stdoutPipe.read)
        let errData = Drain(stderrPipe.read)
        // A child that exits before reading everything closes the pipe: EPIPE, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        do throws(SystemCallError) { try POSIX.writeAll(stdinPipe.write, Array(input)) } catch {
            // EPIPE: the child stopped reading; its status and output tell the test why.
        }
        close(stdinPipe.write)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signaled = status & 0x7f != 0
        return Result(status: signaled ? -1 : (status >> 8) & 0xff,
                      signal: signaled ? status & 0x7f : nil,
                      stdout: String(decoding: outData.wait(), as: UTF8.self),
                      stderr: String(decoding: errData.wait(), as: UTF8.self))
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard csys_pipe2(&fds, O_CLOEXEC) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return (fds[0], fds[1])
    }
}

/// Reads a pipe to its end on a thread of its own.
final class Drain: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ fd: Int32) {
        Thread.detachNewThread {
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            self.data = handle.readDataToEndOfFile()
            self.done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
