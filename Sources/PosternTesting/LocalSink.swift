import Foundation
import Glibc

/// Postfix's `smtp-sink` on a loopback port, dumping every message it accepts
/// into a directory: the far end of the daemon's integration tests.
public final class LocalSink: @unchecked Sendable {
    public let port: UInt16
    /// The loopback address it listens on (any of 127.0.0.0/8).
    public let ip: String
    public let directory: String
    private var process: BackgroundProcess?

    /// Starts a sink; `options` are extra smtp-sink flags (`-r RCPT` answers RCPT
    /// with 4xx, `-w 1` waits a second before answering the final dot).
    public init(options: [String] = [], ip: String = "127.0.0.1", port: UInt16? = nil) throws {
        self.ip = ip
        self.port = try port ?? freeLoopbackPort()
        directory = NSTemporaryDirectory() + "postern-sink-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/dump", withIntermediateDirectories: true)
        chmod(directory + "/dump", 0o777)   // smtp-sink writes as nobody
        try start(options: options)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)   // scratch directory of a test
    }

    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/smtp-sink") }

    /// (Re)starts smtp-sink with `options`, keeping what it received so far.
    public func start(options: [String] = []) throws {
        stop()
        process = try BackgroundProcess(["/usr/sbin/smtp-sink", "-u", "nobody", "-d", directory + "/dump/%M."] + options
                                        + ["\(ip):\(port)", "256"], log: directory + "/sink.log")
        let up = BackgroundProcess.waitUntil(timeout: 10) {
            (try? TCPProbe.connects(ip: ip, port: port)) ?? false
        }
        guard up else { throw POSIXError(.ETIMEDOUT) }
    }

    public func stop() {
        process?.signal(SIGTERM)
        process?.wait()
        process = nil
    }

    /// The messages received so far, as text (smtp-sink's X- lines, then the message).
    ///
    /// smtp-sink creates a message's file at MAIL and writes it as the
    /// transaction goes: a file it still has open is a message not yet
    /// received whole, and is left out (it would be read half written).
    ///
    /// The directory is listed before the open files are read: a file listed
    /// and no longer open has been closed, so it is whole. (The other order let
    /// a file created between the two reads through half written.)
    public func messages() -> [String] {
        let dump = directory + "/dump"
        let listed = (try? FileManager.default.contentsOfDirectory(atPath: dump)) ?? []
        let open = openBySink()
        return listed.filter { !open.contains($0) }.compactMap { try? String(contentsOfFile: dump + "/" + $0, encoding: .utf8) }
    }

    /// Transactions the sink has seen reach MAIL, received whole or not: a
    /// sign that an attempt is under way.
    public func transactions() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/dump")) ?? []).count
    }

    /// Names of the files the running smtp-sink has open.
    private func openBySink() -> Set<String> {
        process.map { Self.namesOpen(by: $0.pid) } ?? []
    }

    /// The last components of the paths process `pid` has open (`/proc/PID/fd`):
    /// smtp-sink's dump files still being written.
    static func namesOpen(by pid: pid_t) -> Set<String> {
        let fm = FileManager.default
        let fds = (try? fm.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return Set(fds.compactMap { try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            .map { URL(fileURLWithPath: $0).lastPathComponent })
    }

    /// Subject lines of the messages received so far, one per message.
    public func subjects() -> [String] {
        messages().compactMap { text in
            text.split(separator: "\n").first { $0.hasPrefix("Subject: ") }.map { String($0.dropFirst(9)) }
        }
    }
}

/// Whether something accepts connections on a loopback port.
enum TCPProbe {
    static func connects(ip: String = "127.0.0.1", port: UInt16) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr(ip)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
