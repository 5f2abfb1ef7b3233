import Foundation
import Glibc
import PosternTesting
import Spool
import Testing

/// Issue #17, a full disk: the spool on a 2 MiB tmpfs (SmallFileSystem),
/// filled to the last block, remounted read-only, and given back. The drop
/// refuses with a temporary status and leaves nothing behind; the daemon
/// keeps every message as it was, says so once per condition (log and
/// metrics), delivers what needs no space, and recovers by itself.
@Suite(.serialized) struct FullDiskTests {
    static let size = 2 << 20
    static let member = DaemonFixture.User(uid: 65534, gid: 65534)

    /// Drops one message with `command` (nil: `postern drop` as root).
    static func drop(_ spool: TemporarySpool, command: [String]? = nil) throws -> PosternProcess.Result {
        try PosternProcess.run(["drop", "--spool", spool.layout.root, "bob@example.net"],
                               input: Data("Subject: full\n\n\(String(repeating: "line of the body\n", count: 100))".utf8),
                               command: command)
    }

    static func expectNothingLeft(_ spool: TemporarySpool, _ comment: Comment) throws {
        #expect(try spool.temporaryNames().isEmpty, comment)
        #expect(try spool.names(.drop).isEmpty, comment)
        #expect(try spool.names(.queue).isEmpty, comment)
    }

    /// `postern drop` by root and by a drop-group member, and the
    /// set-group-ID `postern-drop` by an outsider: EX_TEMPFAIL on a full disk
    /// and on a read-only one, nothing left in tmp/ or drop/; once space is
    /// back, the same drops succeed.
    @Test func dropRefusesOnAFullOrReadOnlyDisk() throws {
        try #require(getuid() == 0, "needs root to mount and to change users")
        let spool = try TemporarySpool()
        chmod(spool.directory, 0o755)
        let small = try SmallFileSystem(over: spool, size: Self.size, dropGroup: 65534)
        defer { small.unmount() }
        let binary = try PosternProcess.copyBinaries(to: spool.directory)
        let installed = spool.directory + "/postern-drop-sgid"
        try PosternProcess.copyBinary(PosternProcess.dropBinary, to: installed)
        #expect(chown(installed, 0, 65534) == 0 && chmod(installed, 0o2755) == 0)
        try FileManager.default.createDirectory(atPath: "/var/spool/postern", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/etc/postern", withIntermediateDirectories: true)
        let outsider = DaemonFixture.User(uid: 65533, gid: 65533)
        let setGroupID = ["/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                          #"mount --bind "$1" /var/spool/postern && mount -t tmpfs none /etc/postern && shift && exec "$@""#,
                          "sh", spool.layout.root] + outsider.setpriv + [installed]
        let droppers: [(String, [String]?)] = [("root", nil), ("member", Self.member.setpriv + [binary]),
                                               ("set-group-ID outsider", setGroupID)]

        try small.fill()
        for (who, command) in droppers {
            let result = try Self.drop(spool, command: command)
            #expect(result.status == 75, "\(who) on a full disk: \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("No space left on device"), "\(who): \(result.stderr)")
            try Self.expectNothingLeft(spool, "\(who) on a full disk")
        }
        try small.free()
        try small.remount(readOnly: true)
        for (who, command) in droppers {
            let result = try Self.drop(spool, command: command)
            #expect([75, 73].contains(result.status), "\(who) on a read-only disk: \(result.status) \(result.stderr)")
            #expect(result.stderr.lowercased().contains("read-only file system"), "\(who): \(result.stderr)")
            try Self.expectNothingLeft(spool, "\(who) on a read-only disk")
        }
        try small.remount(readOnly: false)
        for (who, command) in droppers {
            let result = try Self.drop(spool, command: command)
            #expect(result.status == 0, "\(who) with space again: \(result.stderr)")
        }
        #expect(try spool.names(.drop).count == droppers.count)
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// later.test defers (451), forbidden.test bounces (554).
    static let config = DSNEndToEndTests.failConfig

    /// Messages queued before the disk filled: the ones for the good server go
    /// out (delivering needs no new block); the deferred and the bounced ones,
    /// whose envelope update and DSN cannot be written, keep their old
    /// envelope and stay queued, nothing is quarantined, the condition is
    /// logged once (four failed writes, one line) and shown in the metrics.
    /// When space returns the daemon notices by itself, writes what it owes
    /// (the DSNs go out) and says so once.
    @Test func daemonKeepsStateOnAFullDiskAndRecovers() throws {
        try #require(getuid() == 0, "needs root to mount")
        let fixture = try DaemonFixture(overrides: ["metrics.listen=127.0.0.1:0", "queue.backoff_base=1h"], config: Self.config)
        let small = try SmallFileSystem(over: fixture.spool, size: Self.size)
        var held: [Int32] = []
        defer {
            for fd in held { close(fd) }
            fixture.stop()
            small.unmount()
        }
        var later: [String] = []
        for index in 0..<2 {
            let good = try fixture.drop(subject: "good-\(index)", to: ["bob@example.net"])
            // Held open, the good messages' blocks stay in use after the daemon
            // removes them: the disk stays full whatever is delivered first.
            for file in ["message", "envelope.json"] {
                let fd = open(fixture.spool.layout.root + "/drop/\(good)/\(file)", O_RDONLY | O_CLOEXEC)
                try #require(fd >= 0)
                held.append(fd)
            }
            later.append(try fixture.drop(subject: "later-\(index)", to: ["patient@later.test"]))
            try fixture.drop(subject: "bounced-\(index)", to: ["victim@forbidden.test"])
        }
        try small.fill()
        try fixture.start()
        let port = try #require(fixture.metricsPort)
        #expect(fixture.waitForSink(2))
        #expect(fixture.waitForLog("status=bounced", count: 2))
        #expect(fixture.waitForLog("status=deferred", count: 2))
        #expect(fixture.waitForLog("msg=\"spool not writable\""))
        let full = BackgroundProcess.waitUntil(timeout: 30) {
            Self.metric(port, "postern_spool_unwritable{condition=\"no_space\"}") == 1
                && Self.metric(port, "postern_spool_write_failures_total{condition=\"no_space\"}") ?? 0 >= 4
        }
        #expect(full, "the metrics show the full disk and the four writes put off")
        #expect(fixture.log.components(separatedBy: "msg=\"spool not writable\"").count - 1 == 1, "\(fixture.log)")
        for line in ["cannot record the attempt", "cannot drop a DSN", "cannot register attempt"] {
            #expect(!fixture.log.contains(line), "\(line)")
        }
        #expect(fixture.sink.messages().count == 2)
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(try fixture.spool.names(.queue).count == 4)
        for id in try fixture.spool.names(.queue) {
            // The old state: no result recorded, the recipient still pending.
            let envelope = try fixture.envelope(id)
            #expect(envelope.recipients.allSatisfy { $0.state == .pending && $0.lastResult == nil }, "\(envelope)")
        }

        try small.free()
        // Probed every 5 s: noticed without anything else happening.
        #expect(fixture.waitForLog("msg=\"spool writable again\"", timeout: 30))
        // The DSNs for the two bounces, on top of the two good messages;
        // the bounced messages then leave, the deferred ones wait for their backoff.
        #expect(fixture.waitForSink(4, timeout: 30), "\(fixture.log)")
        #expect(BackgroundProcess.waitUntil(timeout: 30) { (try? fixture.spool.names(.queue)) == later.sorted() })
        for id in later {
            #expect(try fixture.envelope(id).recipients.allSatisfy { $0.state == .pending })
        }
        #expect(BackgroundProcess.waitUntil(timeout: 30) { Self.metric(port, "postern_spool_unwritable{condition=\"no_space\"}") == 0 })
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(try fixture.spool.temporaryNames().isEmpty)
        #expect(fixture.log.components(separatedBy: "msg=\"spool not writable\"").count - 1 == 1)
        #expect(fixture.stop() == 0)
    }

    /// A member's drop waiting when the disk is full: its adoption (a copy
    /// into the daemon's own directory) cannot be written, so it stays in
    /// drop/, said once; it used to wait for the next rescan (a restart), and
    /// is now accepted and delivered at the probe that finds space again.
    @Test func dropWaitingOnAFullDiskIsAcceptedWhenSpaceReturns() throws {
        try #require(getuid() == 0, "needs root to mount and to change users")
        let fixture = try DaemonFixture()
        chmod(fixture.spool.directory, 0o755)
        let small = try SmallFileSystem(over: fixture.spool, size: Self.size, dropGroup: 65534)
        defer {
            fixture.stop()
            small.unmount()
        }
        let binary = try PosternProcess.copyBinaries(to: fixture.spool.directory)
        let dropped = try Self.drop(fixture.spool, command: Self.member.setpriv + [binary])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        try small.fill()
        try fixture.start()
        #expect(fixture.waitForLog("msg=\"spool not writable\" condition=no_space"), "\(fixture.log)")
        #expect(try fixture.spool.names(.drop).count == 1)
        #expect(!fixture.log.contains("cannot accept a drop now"))
        try small.free()
        #expect(fixture.waitForSink(1, timeout: 30), "\(fixture.log)")
        #expect(try fixture.spool.names(.drop).isEmpty)
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(fixture.stop() == 0)
    }

    /// Two messages deferred every second; then `condition` begins (by
    /// `begin`) for long enough that each is due again: said once, shown in
    /// the metrics when they can be served, nothing quarantined, the envelopes
    /// as they were; when it ends (`end`), the daemon notices within a probe
    /// and the messages go on being attempted and recorded.
    ///
    /// Without descriptors the metrics server cannot accept a scrape: it
    /// fails, and serves again on its port once the condition ends.
    func survives(_ condition: String, scrape: Bool, begin: (DaemonFixture, SmallFileSystem) throws -> Void,
                  end: (DaemonFixture, SmallFileSystem) throws -> Void) throws {
        // A fixed port: the metrics server listens on it again after a failure.
        let fixture = try DaemonFixture(overrides: ["metrics.listen=127.0.0.1:\(try freeLoopbackPort())", "queue.backoff_base=1s",
                                                    "queue.backoff_factor=1"],
                                        config: Self.config)
        let small = try SmallFileSystem(over: fixture.spool, size: Self.size)
        defer {
            fixture.stop()
            small.unmount()
        }
        try fixture.start()
        let port = try #require(fixture.metricsPort)
        let ids = try (0..<2).map { try fixture.drop(subject: "later-\($0)", to: ["patient@later.test"]) }
        #expect(fixture.waitForLog("status=deferred", count: 2))
        try begin(fixture, small)
        #expect(fixture.waitForLog("msg=\"spool not writable\" condition=\(condition)"), "\(fixture.log)")
        let before = try ids.map { try fixture.envelope($0) }
        if scrape {
            #expect(BackgroundProcess.waitUntil(timeout: 30) {
                Self.metric(port, "postern_spool_unwritable{condition=\"\(condition)\"}") == 1
            })
        } else {
            #expect(Self.metric(port, "postern_spool_unwritable{condition=\"\(condition)\"}") == nil)
        }
        // While it lasts, writes fail and are counted (where a scrape can
        // see it: not without descriptors, whose one failure is the log line
        // above); the messages keep their state and wait for the probe.
        if scrape {
            #expect(BackgroundProcess.waitUntil(timeout: 30) {
                Self.metric(port, "postern_spool_write_failures_total{condition=\"\(condition)\"}") ?? 0 >= 2
            }, "\(fixture.log)")
        }
        #expect(try ids.map { try fixture.envelope($0) } == before)
        #expect(try fixture.spool.corruptNames().isEmpty)
        try end(fixture, small)
        #expect(fixture.waitForLog("msg=\"spool writable again\" condition=\(condition)", timeout: 30), "\(fixture.log)")
        let deferred = fixture.log.components(separatedBy: "status=deferred").count - 1
        #expect(fixture.waitForLog("status=deferred", count: deferred + 2))
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            ids.allSatisfy { ((try? fixture.envelope($0).attempts) ?? 0) >= 2 }
        })
        #expect(fixture.log.components(separatedBy: "msg=\"spool not writable\"").count - 1 == 1, "\(fixture.log)")
        #expect(try fixture.spool.corruptNames().isEmpty)
        #expect(try fixture.spool.names(.queue) == ids.sorted())
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            Self.metric(port, "postern_spool_unwritable{condition=\"\(condition)\"}") == 0
                && Self.metric(port, "postern_spool_write_failures_total{condition=\"\(condition)\"}") ?? 0 >= 2
        }, "the metrics are served again and show the condition over")
        #expect(fixture.stop() == 0)
    }

    /// A read-only remount (errors=remount-ro) under the running daemon.
    @Test func daemonSurvivesAReadOnlyRemount() throws {
        try #require(getuid() == 0, "needs root to mount")
        try survives("read_only", scrape: true,
                     begin: { _, small in try small.remount(readOnly: true) },
                     end: { _, small in try small.remount(readOnly: false) })
    }

    /// The daemon's descriptor limit lowered under it (prlimit(1)) so that
    /// every open fails with EMFILE, then raised again.
    @Test func daemonSurvivesRunningOutOfDescriptors() throws {
        try #require(getuid() == 0, "needs root to change another process's limits")
        var ours = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &ours)
        // Soft limit 3: with 0, 1 and 2 open, no new descriptor fits.
        func limit(_ fixture: DaemonFixture, _ soft: rlim_t) throws {
            let pid = try #require(fixture.daemon?.pid)
            let result = try PosternProcess.run([], command: ["/usr/bin/prlimit", "--pid", "\(pid)", "--nofile=\(soft):\(ours.rlim_max)"])
            #expect(result.status == 0, "\(result.stderr)")
        }
        try survives("no_descriptors", scrape: false, begin: { fixture, _ in try limit(fixture, 3) },
                     end: { fixture, _ in try limit(fixture, ours.rlim_cur) })
    }

    static func metric(_ port: UInt16, _ series: String) -> Double? {
        ((try? ObservabilityTests.get(port: port)).map { ObservabilityTests.samples($0.body) } ?? [:])[series]
    }
}
