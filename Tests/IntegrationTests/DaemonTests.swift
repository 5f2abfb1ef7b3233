import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// The real `postern run` against Postfix's smtp-sink on loopback.
@Suite(.serialized)
struct DaemonTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// 500 messages dropped while the daemon runs all arrive, and the spool is empty afterwards.
    @Test func fiveHundredMessages() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        for index in 0..<500 { try fixture.drop(subject: "bulk-\(index)", to: ["r\(index % 7)@d\(index % 5).example"]) }
        #expect(fixture.waitForSink(500, timeout: 120), "\(fixture.sink.messages().count) of 500 arrived")
        #expect(fixture.waitForEmptyQueue())
        #expect(Set(fixture.sink.subjects()) == Set((0..<500).map { "bulk-\($0)" }))
        #expect(try fixture.postern(["count"]).stdout == "0\n")
        #expect(fixture.stop() == 0)
    }

    /// A drop is picked up through inotify and delivered at once, not after a polling interval.
    @Test func promptPickup() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        let id = try fixture.drop(subject: "prompt")
        // Far below any polling interval an MTA would use, far above what inotify needs.
        #expect(fixture.waitForSink(1, timeout: 10))
        #expect(fixture.log.contains("msg=accepted id=\(id)"))
        #expect(fixture.stop() == 0)
    }

    /// A 4xx leaves the message queued with one attempt, the next one backoff later and the reply recorded; kick then delivers it.
    @Test func temporaryFailureThenKick() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"])
        try fixture.start()
        let before = Date()
        let id = try fixture.drop(subject: "deferred")
        #expect(fixture.waitForLog("status=deferred"))
        let envelope = try fixture.envelope(id)
        #expect(envelope.attempts == 1)
        #expect(envelope.recipients[0].state == .pending)
        #expect(envelope.recipients[0].lastResult?.code.map { (400..<500).contains($0) } == true)
        let next = try #require(envelope.nextAttempt)
        #expect(next.timeIntervalSince(before) >= 449 && next.timeIntervalSince(Date()) <= 451)
        #expect(envelope.history.count == 1)

        try fixture.sink.start()
        let kick = try fixture.postern(["kick", id])
        #expect(kick.status == 0, "\(kick.stderr)")
        #expect(kick.stdout.contains("\(id): changed"))
        #expect(fixture.waitForSink(1))
        #expect(fixture.waitForEmptyQueue())
        #expect(fixture.stop() == 0)
    }

    /// A held message is not delivered while a due one is; released, it is delivered.
    @Test func holdAndRelease() throws {
        let fixture = try DaemonFixture()
        let held = try fixture.drop(subject: "held")
        try MessageStore(layout: fixture.spool.layout).move(QueueID(held)!, from: .drop, to: .queue)
        let hold = try fixture.postern(["hold", "--reason", "testing", held])
        #expect(hold.status == 0 && hold.stdout.contains("\(held): changed"), "\(hold.stderr)")
        #expect(try fixture.envelope(held, in: .hold).holdReason == "testing")
        try fixture.drop(subject: "canary")
        try fixture.start()
        #expect(fixture.waitForSink(1))
        #expect(fixture.sink.subjects() == ["canary"])
        #expect(try fixture.postern(["kick", held]).stdout.contains("unchanged (held; release it first)"))
        let release = try fixture.postern(["release", held])
        #expect(release.stdout.contains("\(held): changed"), "\(release.stdout)\(release.stderr)")
        #expect(fixture.waitForSink(2))
        #expect(Set(fixture.sink.subjects()) == ["canary", "held"])
        #expect(fixture.stop() == 0)
    }

    /// An operator's plain mv into hold/ is honoured, and mv back releases.
    @Test func plainMoveHolds() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"], overrides: ["queue.backoff_base=1s"])
        try fixture.start()
        let id = try fixture.drop(subject: "moved")
        #expect(fixture.waitForLog("status=deferred"))
        let layout = fixture.spool.layout
        #expect(rename(layout.path(.queue, QueueID(id)!), layout.path(.hold, QueueID(id)!)) == 0)
        try fixture.sink.start()
        // Retries come every second; the held message must not be among them.
        let kick = try fixture.postern(["kick", id])
        #expect(kick.stdout.contains("unchanged (held"), "\(kick.stdout)")
        #expect(rename(layout.path(.hold, QueueID(id)!), layout.path(.queue, QueueID(id)!)) == 0)
        #expect(fixture.waitForSink(1))
        #expect(fixture.stop() == 0)
    }

    /// A second daemon on the same spool exits at once with EX_TEMPFAIL and a clear message.
    @Test func oneDaemonPerSpool() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        let second = try PosternProcess.run(["run", "--spool", fixture.spool.layout.root, "-o", "relay=127.0.0.1:1"],
                                            environment: ["POSTERN_CONFIG": "/nonexistent"])
        #expect(second.status == 75)
        #expect(second.stderr.contains("locked by another process"))
        #expect(fixture.stop() == 0)
    }

    /// A corrupt envelope, a symlink and a half-written drop planted while running are quarantined; the rest is delivered.
    @Test func badInputWhileRunning() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        let layout = fixture.spool.layout
        // A corrupt envelope moved into the queue.
        let corrupt = QueueIDGenerator().next()
        let scratch = fixture.spool.directory + "/scratch-\(corrupt)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        try Data("body\r\n".utf8).write(to: URL(fileURLWithPath: scratch + "/message"))
        try Data("{broken".utf8).write(to: URL(fileURLWithPath: scratch + "/envelope.json"))
        #expect(rename(scratch, layout.path(.queue, corrupt)) == 0)
        // A symlink in the drop area.
        let link = QueueIDGenerator().next()
        try FileManager.default.createSymbolicLink(atPath: layout.path(.drop, link), withDestinationPath: "/etc")
        // A half-written drop (no envelope) renamed in.
        let half = QueueIDGenerator().next()
        let partial = fixture.spool.directory + "/partial-\(half)"
        try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: false)
        try Data("half".utf8).write(to: URL(fileURLWithPath: partial + "/message"))
        #expect(rename(partial, layout.path(.drop, half)) == 0)
        try fixture.drop(subject: "good")
        #expect(fixture.waitForSink(1))
        #expect(fixture.waitForLog("msg=quarantined", count: 3))
        let reasons = try fixture.spool.corruptNames().map { try String(decoding: fixture.spool.read("corrupt/\($0)/reason"), as: UTF8.self) }
        #expect(reasons.contains { $0.contains("from: queue/\(corrupt)") && $0.contains("not valid JSON") })
        #expect(reasons.contains { $0.contains("from: drop/\(link)") && $0.contains("symbolic link") })
        #expect(reasons.contains { $0.contains("from: drop/\(half)") && $0.contains("missing envelope.json") })
        #expect(fixture.stop() == 0)
    }

    /// SIGTERM lets the attempt in progress finish, records it, and exits 0.
    @Test func gracefulShutdown() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-w", "2"])
        try fixture.start()
        try fixture.drop(subject: "slow")
        // Stopped once the attempt is under way (the sink has its transaction).
        #expect(BackgroundProcess.waitUntil(timeout: 30) { fixture.sink.transactions() >= 1 })
        #expect(fixture.stop(SIGTERM) == 0)
        #expect(fixture.log.contains("status=sent"))
        #expect(fixture.sink.subjects() == ["slow"])
    }
}

/// Queue control through a running daemon: the command hands the request over and reports the daemon's answer.
@Suite(.serialized)
struct DaemonControlTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// fail through the daemon fails the recipients, queues a failure DSN to the sender, and removes the message.
    @Test func failThroughDaemon() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"])
        try fixture.start()
        let id = try fixture.drop(subject: "to-fail")
        #expect(fixture.waitForLog("status=deferred"))
        let result = try fixture.postern(["fail", "--reason", "operator says no", id])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("\(id): changed"))
        #expect(fixture.waitForLog("kind=failed"))
        // The sink still defers everything, so the DSN waits in the queue: from <> to the sender.
        let queued = BackgroundProcess.waitUntil(timeout: 30) {
            let names = (try? fixture.spool.names(.queue)) ?? []
            return !names.contains(id) && names.count == 1
        }
        #expect(queued)
        let dsnID = try #require(try fixture.spool.names(.queue).first)
        let dsn = try fixture.envelope(dsnID)
        #expect(dsn.sender == nil && dsn.recipients.map(\.address) == ["alice@example.org"])
        #expect(fixture.stop() == 0)
    }

    /// requiretls and delete through the daemon change the envelope and the spool as asked.
    @Test func requireTLSAndDeleteThroughDaemon() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"])
        try fixture.start()
        let id = try fixture.drop(subject: "controlled")
        #expect(fixture.waitForLog("status=deferred"))
        #expect(try fixture.postern(["requiretls", "yes", id]).stdout.contains("\(id): changed"))
        #expect(try fixture.envelope(id).requireTLS == true)
        #expect(try fixture.postern(["delete", id]).stdout.contains("\(id): changed"))
        #expect(try fixture.spool.names(.queue).isEmpty)
        #expect(try fixture.postern(["count"]).stdout == "0\n")
        #expect(fixture.stop() == 0)
    }
}

/// Shutdown, reload and retirement of the daemon.
@Suite(.serialized)
struct DaemonLifecycleTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// After the grace period, attempts still in progress are aborted and recorded as temporary failures; exit 0.
    @Test func abortAfterGrace() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-w", "20"], overrides: ["queue.shutdown_grace=0s"])
        try fixture.start()
        let id = try fixture.drop(subject: "aborted")
        // The attempt is under way once the sink has its transaction (it then
        // waits 20 s before answering the final dot).
        #expect(BackgroundProcess.waitUntil(timeout: 30) { fixture.sink.transactions() >= 1 })
        #expect(fixture.stop(SIGTERM) == 0)
        #expect(fixture.log.contains("grace period over"))
        #expect(fixture.log.contains("status=deferred"))
        let envelope = try fixture.envelope(id)
        #expect(envelope.attempts == 1 && envelope.recipients[0].state == .pending)
        #expect(envelope.recipients[0].lastResult != nil)
    }

    /// SIGHUP re-reads the configuration; a broken file is refused and the running one kept.
    @Test func reloadOnHangup() throws {
        let fixture = try DaemonFixture()
        try fixture.start()
        let config = fixture.configPath
        try Data("[queue]\nmax_concurrent = 3\n".utf8).write(to: URL(fileURLWithPath: config))
        fixture.daemon?.signal(SIGHUP)
        #expect(fixture.waitForLog("msg=\"configuration reloaded\""))
        try Data("[queue]\nmax_concurrent = \"many\"\n".utf8).write(to: URL(fileURLWithPath: config))
        fixture.daemon?.signal(SIGHUP)
        #expect(fixture.waitForLog("configuration not reloaded"))
        try fixture.drop(subject: "after-reload")
        #expect(fixture.waitForSink(1))
        #expect(fixture.stop() == 0)
    }

    /// With queue.keep_retired, a finished message's envelope stays in retired/ and list --retired shows it.
    @Test func keepsRetired() throws {
        let fixture = try DaemonFixture(overrides: ["queue.keep_retired=1h"])
        try fixture.start()
        let id = try fixture.drop(subject: "retired")
        #expect(fixture.waitForSink(1))
        #expect(fixture.waitForEmptyQueue())
        #expect(fixture.waitForLog("msg=removed"))
        let layout = fixture.spool.layout
        #expect(FileManager.default.fileExists(atPath: layout.retired + "/\(id)/envelope.json"))
        #expect(!FileManager.default.fileExists(atPath: layout.retired + "/\(id)/message"))
        let list = try fixture.postern(["list", "--retired"])
        #expect(list.stdout.contains("\(id) retired"))
        #expect(list.stdout.contains("bob@example.net (delivered, 1 attempt)"))
        #expect(fixture.stop() == 0)
    }
}

extension DaemonLifecycleTests {
    /// A recipient that keeps failing temporarily expires at queue.max_attempts: failed, a failure DSN due, the message gone.
    @Test func expiresAtMaxAttempts() throws {
        let fixture = try DaemonFixture(sinkOptions: ["-r", "RCPT"], overrides: ["queue.max_attempts=2", "queue.backoff_base=1s"])
        try fixture.start()
        let id = try fixture.drop(subject: "expiring")
        #expect(fixture.waitForLog("status=expired"))
        #expect(fixture.waitForLog("kind=failed"))
        #expect(fixture.waitForEmptyQueue())
        #expect(fixture.log.components(separatedBy: "id=\(id)").count >= 3)
        #expect(fixture.log.contains("attempt=2") && fixture.log.contains("status=deferred"))
        #expect(fixture.stop() == 0)
    }
}

/// The daemon without a relay: MX lookups through a DNS server on loopback, delivery to the MX host.
@Suite(.serialized)
struct DaemonDirectDeliveryTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// Mail for a domain goes to its MX host's address; a domain that does not exist bounces at once.
    @Test func deliversToMX() throws {
        let dns = try FakeDNSServer(zone: .init(records: ["example.net": [.mx(10, "mx.example.net")],
                                                          "mx.example.net": [.a("127.0.0.1")],
                                                          "nullmx.example": [.mx(0, "")]]))
        defer { dns.stop() }
        let fixture = try DaemonFixture()
        let direct = try DaemonFixture(overrides: ["relay=", "direct.port=\(fixture.sink.port)", "dns.nameserver=127.0.0.1:\(dns.port)"])
        try direct.start()
        try direct.drop(subject: "direct", to: ["bob@example.net"])
        #expect(BackgroundProcess.waitUntil(timeout: 30) { fixture.sink.subjects() == ["direct"] })
        #expect(direct.waitForLog("host=mx.example.net"))
        let nowhere = try direct.drop(subject: "nowhere", to: ["bob@nowhere.example"])
        #expect(direct.waitForLog("status=bounced"))
        #expect(direct.log.contains("NXDOMAIN"))
        let nullMX = try direct.drop(subject: "nullmx", to: ["bob@nullmx.example"])
        #expect(direct.waitForLog("null MX, RFC 7505"))
        // Each bounce sends its sender a failure DSN at once, whatever the cause.
        #expect(direct.waitForLog("id=\(nowhere) kind=failed"))
        #expect(direct.waitForLog("id=\(nullMX) kind=failed"))
        #expect(direct.stop() == 0)
    }
}

extension DaemonTests {
    /// Issue #15: the start-up scan streams into the index, and the first message is delivered while the
    /// scan is still reading the rest (made slow by a debug hook: 10 ms per message, 3 s for 300).
    @Test func deliversWhileScanning() throws {
        var fixture = try DaemonFixture()
        for index in 0..<300 {
            try fixture.spool.plant(.queue, message: "Subject: scan-\(index)\r\n\r\nbody\r\n", recipients: ["r\(index)@example.net"])
        }
        fixture.environment["POSTERN_DEBUG_SCAN_DELAY_MS"] = "10"
        try fixture.start()
        #expect(fixture.waitForLog("index ready"))
        let lines = fixture.log.split(separator: "\n")
        let firstSent = try #require(lines.firstIndex { $0.contains("msg=delivery") && $0.contains("status=sent") }, "\(fixture.log)")
        let ready = try #require(lines.firstIndex { $0.contains("index ready") })
        #expect(firstSent < ready, "the first delivery came after the scan")
        #expect(fixture.waitForSink(300, timeout: 60))
        #expect(fixture.waitForEmptyQueue())
        #expect(fixture.stop() == 0)
    }
}
