import Foundation
import Glibc
import Spool

/// A spool, a sink and `postern run` between them, for the daemon's integration tests.
public final class DaemonFixture: @unchecked Sendable {
    public let spool: TemporarySpool
    public let sink: LocalSink
    public private(set) var daemon: BackgroundProcess?
    /// `-o` settings of the daemon; a test may change them between runs.
    public var overrides: [String]
    /// The configuration file the daemon reads (it need not exist).
    public let configPath: String

    /// A daemon relaying to a fresh smtp-sink, or to `relayPort` (another server) when given;
    /// with `relay: false`, delivering directly (routes and `direct.*` then decide).
    /// `config` is the text of its configuration file: transports and routes.
    public init(sinkOptions: [String] = [], overrides: [String] = [], relayPort: UInt16? = nil, relay: Bool = true,
                config: String? = nil) throws {
        spool = try TemporarySpool()
        sink = try LocalSink(options: sinkOptions)
        let relayOverride = relay ? ["relay=127.0.0.1:\(relayPort ?? sink.port)"] : []
        // Metrics off unless a test asks (`metrics.listen=127.0.0.1:0`): tests run daemons side by side.
        // No aliases unless a test asks: never the machine's /etc/aliases.
        self.overrides = relayOverride + ["queue.jitter=0s", "hostname=mail.postern.test", "metrics.listen=", "local.aliases="] + overrides
        configPath = spool.directory + "/postern.toml"
        if let config { try Data(config.utf8).write(to: URL(fileURLWithPath: configPath)) }
    }

    /// A user to run the daemon as instead of the test's own (root), with
    /// its primary group and supplementary groups (setpriv(1)).
    public struct User: Sendable {
        public let uid: uid_t
        public let gid: gid_t
        public let groups: [gid_t]

        public init(uid: uid_t, gid: gid_t, groups: [gid_t] = []) {
            self.uid = uid
            self.gid = gid
            self.groups = groups
        }

        /// The command prefix that runs a program as this user.
        public var setpriv: [String] {
            ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(gid)"]
                + (groups.isEmpty ? ["--clear-groups"] : ["--groups", groups.map(String.init).joined(separator: ",")]) + ["--"]
        }
    }

    /// More environment for the daemon (NOTIFY_SOCKET, say).
    public var environment: [String: String] = [:]

    /// Who the daemon runs as: `nil` for the test's own user.
    public private(set) var user: User?
    /// The binary the daemon runs: a copy every user can reach when `user` is set.
    public private(set) var binary = PosternProcess.binary

    /// Gives the spool `dropGroup` as its drop group (spool-layout.md section
    /// 3), with `user` as its owner and the daemon run as that user (`nil`:
    /// the test's own), and lets other users reach the spool's directory.
    public func useDropGroup(_ dropGroup: gid_t, daemonUser user: User? = nil) throws {
        self.user = user
        chmod(spool.directory, 0o755)
        _ = try SpoolInitializer(layout: spool.layout, owner: user?.uid ?? getuid(), ownerGroup: user?.gid ?? getgid(),
                                 dropGroup: dropGroup).run()
        guard user != nil else { return }
        binary = try PosternProcess.copyBinaries(to: spool.directory)
    }

    /// Starts the daemon and waits until its index is ready.
    public func start() throws {
        let arguments = (user?.setpriv ?? []) + [binary, "run", "--spool", spool.layout.root] + overrides.flatMap { ["-o", $0] }
        let process = try BackgroundProcess(arguments, log: spool.directory + "/daemon.log",
                                            environment: environment.merging(["POSTERN_CONFIG": configPath]) { $1 })
        daemon = process
        let before = readyCount
        guard BackgroundProcess.waitUntil(timeout: 30, { readyCount > before || daemonExited }) , !daemonExited else {
            throw POSIXError(.ECHILD)
        }
    }

    /// Start-up scans finished, in either log format.
    private var readyCount: Int {
        ["msg=\"index ready\"", "\"msg\":\"index ready\""].map { log.components(separatedBy: $0).count - 1 }.reduce(0, +)
    }
    private var daemonExited: Bool {
        guard let daemon else { return true }
        var status: Int32 = 0
        return waitpid(daemon.pid, &status, WNOHANG) == daemon.pid
    }

    /// SIGTERM, then the exit status.
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM) -> Int32 {
        guard let daemon else { return -1 }
        daemon.signal(signal)
        let status = daemon.wait()
        self.daemon = nil
        return status
    }

    /// The port of the daemon's /metrics endpoint, from its start-up log line.
    public var metricsPort: UInt16? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("msg=\"metrics listening\"") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("listen=") }),
              let colon = field.lastIndex(of: ":") else { return nil }
        return UInt16(field[field.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
    }

    /// The port of the daemon's SMTP listener (`smtp.listen` with port 0),
    /// from the last start-up's log line.
    public var smtpPort: UInt16? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("msg=\"smtp listening\"") }),
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("port=") }) else { return nil }
        return UInt16(field.dropFirst(5))
    }

    /// Everything every daemon of this fixture logged.
    public var log: String { (try? String(contentsOfFile: spool.directory + "/daemon.log", encoding: .utf8)) ?? "" }

    /// Drops a message the way `postern drop` does, in-process (faster than a process each).
    @discardableResult
    public func drop(subject: String, to recipients: [String] = ["bob@example.net"],
                     from sender: String? = "alice@example.org") throws -> String {
        let input = spool.directory + "/input-\(UUID().uuidString)"
        try Data("Subject: \(subject)\nMessage-ID: <\(subject)@test>\n\nbody of \(subject)\n".utf8).write(to: URL(fileURLWithPath: input))
        let fd = open(input, O_RDONLY)
        defer {
            close(fd)
            unlink(input)
        }
        let submission = Submission(sender: try sender.map { try .init(parsing: $0) }, recipients: try recipients.map { try .init(parsing: $0) },
                                    hostname: "test.example", maxSize: 1 << 20, uid: Int(getuid()))
        return try Submitter(layout: spool.layout).submit(submission, input: fd).rawValue
    }

    /// Runs the CLI against this spool.
    public func postern(_ arguments: [String]) throws -> PosternProcess.Result {
        try PosternProcess.run(arguments + ["--spool", spool.layout.root])
    }

    /// Waits until the sink has `count` messages (bounded).
    @discardableResult
    public func waitForSink(_ count: Int, timeout: Double = 60) -> Bool {
        BackgroundProcess.waitUntil(timeout: timeout) { sink.messages().count >= count }
    }

    /// Waits until no message is left in queue/ (bounded).
    @discardableResult
    public func waitForEmptyQueue(timeout: Double = 60) -> Bool {
        BackgroundProcess.waitUntil(timeout: timeout) { ((try? spool.names(.queue)) ?? ["?"]).isEmpty && ((try? spool.names(.drop)) ?? ["?"]).isEmpty }
    }

    /// Waits until the log contains `text` at least `count` times (bounded).
    @discardableResult
    public func waitForLog(_ text: String, count: Int = 1, timeout: Double = 60) -> Bool {
        BackgroundProcess.waitUntil(timeout: timeout) { log.components(separatedBy: text).count - 1 >= count }
    }

    public func envelope(_ id: String, in area: SpoolLayout.Area = .queue) throws -> Envelope {
        try Envelope.decode(spool.read("\(area.rawValue)/\(id)/envelope.json"))
    }
}
