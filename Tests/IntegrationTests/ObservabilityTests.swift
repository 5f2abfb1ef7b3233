import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing

/// Metrics, logs and `explain` after a scripted sequence: one message
/// delivered, one deferred by a 4xx and then delivered, one failed with a DSN,
/// one held. The numbers scraped from /metrics must be exactly what happened.
@Suite(.serialized)
struct ObservabilityTests {
    init() throws {
        try #require(LocalSink.isAvailable, "smtp-sink is needed (tools/test.sh installs Postfix)")
    }

    /// GET http://127.0.0.1:PORT/PATH through Python's urllib: status, content type, body.
    static func get(port: UInt16, path: String = "/metrics") throws -> (status: Int, type: String, body: String) {
        let output = try PythonScript.run("""
            import json, sys, urllib.request, urllib.error
            try:
                r = urllib.request.urlopen("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=10)
                print(json.dumps([r.status, r.headers["Content-Type"], r.read().decode()]))
            except urllib.error.HTTPError as e:
                print(json.dumps([e.code, e.headers["Content-Type"] or "", ""]))
            """, arguments: ["\(port)", path])
        let array = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [Any])
        return (try #require(array[0] as? Int), array[1] as? String ?? "", array[2] as? String ?? "")
    }

    /// The samples of an exposition: `name{labels}` to value.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            result[String(line[..<space])] = value
        }
        return result
    }

    @Test func scriptedScenario() throws {
        // One connection per message, so that the counts do not depend on timing (reuse has its own tests).
        let fixture = try DaemonFixture(overrides: ["metrics.listen=127.0.0.1:0", "queue.backoff_base=1h", "queue.reuse_max_messages=1"],
                                        config: DSNEndToEndTests.failConfig)
        try fixture.start()
        let port = try #require(fixture.metricsPort)
        let delivered = try fixture.drop(subject: "delivered", to: ["ok@example.net"])
        let retried = try fixture.drop(subject: "retried", to: ["x@later.test"])
        let bounced = try fixture.drop(subject: "bounced", to: ["victim@forbidden.test"])
        let held = try fixture.drop(subject: "held", to: ["y@later.test"])
        #expect(fixture.waitForLog("status=deferred", count: 2))
        #expect(try fixture.postern(["hold", held]).status == 0)
        #expect(try fixture.postern(["kick", "--transport", "relay", retried]).status == 0)
        // ok@, x@ after the kick, and the DSN for the bounce.
        #expect(fixture.waitForSink(3))
        #expect(fixture.waitForLog("status=sent", count: 3))

        // Gauges are published within a second of a change: wait for the final state.
        var metrics: [String: Double] = [:]
        let settled = BackgroundProcess.waitUntil(timeout: 30) {
            metrics = (try? Self.get(port: port)).map { Self.samples($0.body) } ?? [:]
            return metrics["postern_queue_messages{state=\"held\"}"] == 1 && metrics["postern_queue_messages{state=\"queued\"}"] == 0
        }
        #expect(settled, "\(metrics)")
        let expected: [String: Double] = [
            "postern_deliveries_total{result=\"sent\",status_class=\"2\"}": 3,
            "postern_deliveries_total{result=\"deferred\",status_class=\"4\"}": 2,
            "postern_deliveries_total{result=\"bounced\",status_class=\"5\"}": 1,
            "postern_deliveries_total{result=\"expired\",status_class=\"none\"}": 0,
            "postern_dsn_total{kind=\"failed\"}": 1,
            "postern_dsn_total{kind=\"delayed\"}": 0,
            "postern_drops_total{result=\"accepted\",reason=\"\"}": 5,
            "postern_queue_messages{state=\"held\"}": 1,
            "postern_queue_recipients{state=\"held\"}": 1,
            "postern_queue_messages{state=\"queued\"}": 0,
            "postern_queue_oldest_message_age_seconds": 0,
            "postern_queue_connection_total{result=\"ok\"}": 3,
            "postern_queue_connection_total{result=\"error\"}": 0,
            "postern_tls_total{outcome=\"none\",policy=\"none\"}": 3,
            "postern_queue_connection_messages_count": 3,
            "postern_queue_connection_messages_sum": 3,
            "postern_deliveries_in_flight": 0,
            "postern_inotify_overflows_total": 0,
            "postern_queue_delivery_duration_seconds_count{attempt=\"1\",transport=\"relay\",tlsmode=\"opportunistic\",result=\"ok\"}": 2,
            "postern_queue_delivery_duration_seconds_count{attempt=\"2\",transport=\"relay\",tlsmode=\"opportunistic\",result=\"ok\"}": 1,
            "postern_queue_delivery_duration_seconds_count{attempt=\"1\",transport=\"busy\",tlsmode=\"none\",result=\"temperror\"}": 2,
            "postern_queue_delivery_duration_seconds_count{attempt=\"1\",transport=\"forbidden\",tlsmode=\"none\",result=\"permerror\"}": 1,
        ]
        for (name, value) in expected {
            #expect(metrics[name] == value, "\(name)")
        }
        #expect(metrics["postern_rescan_messages"] == 0)
        let response = try Self.get(port: port)
        #expect(response.status == 200 && response.type.hasPrefix("text/plain; version=0.0.4"))
        #expect(try Self.get(port: port, path: "/other").status == 404)

        // Logs: exactly one summary line per recipient and attempt, with stable keys.
        let lines = fixture.log.split(separator: "\n").filter { $0.contains("msg=delivery ") }
        #expect(lines.count == 6)
        #expect(lines.filter { $0.contains("id=\(delivered)") }.map { $0.contains("status=sent") } == [true])
        #expect(lines.filter { $0.contains("id=\(retried)") }.map { $0.contains("status=sent") } == [false, true])
        #expect(lines.filter { $0.contains("id=\(bounced)") }.allSatisfy { $0.contains("status=bounced") && $0.contains("code=554") && $0.contains("enhanced=5.7.1") })
        #expect(lines.allSatisfy { line in ["id=", "recipient=", "domain=", "attempt=", "status=", "transport=", "duration="].allSatisfy(line.contains) })

        // explain: the held message's story and state, in words and JSON.
        let words = try fixture.postern(["explain", held])
        #expect(words.status == 0)
        #expect(words.stdout.contains("held") && words.stdout.contains("451"))
        let json = try fixture.postern(["explain", "--json", held])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["state"] as? String == "held")
        #expect(fixture.stop() == 0)
    }
}

/// `log.format = json`: every line one JSON object with the stable keys.
@Suite(.serialized)
struct JSONLogTests {
    @Test func jsonLines() throws {
        try #require(LocalSink.isAvailable)
        let fixture = try DaemonFixture(overrides: ["log.format=json"])
        try fixture.start()
        let id = try fixture.drop(subject: "json \"quoted\"", to: ["bob@example.net"])
        #expect(fixture.waitForLog(#""status":"sent""#))
        #expect(fixture.stop() == 0)
        let objects = try fixture.log.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "\(line)")
        }
        #expect(objects.allSatisfy { $0["level"] != nil && $0["msg"] != nil && $0["time"]?.hasSuffix("Z") == true })
        let delivery = try #require(objects.first { $0["msg"] == "delivery" })
        #expect(delivery["id"] == id && delivery["recipient"] == "bob@example.net" && delivery["status"] == "sent")
        #expect(delivery["attempt"] == "1" && delivery["transport"] == "relay" && delivery["code"] == "250")
    }
}

/// The kernel's inotify queue overflows: the daemon notices, rescans, and loses nothing.
@Suite(.serialized)
struct InotifyOverflowTests {
    static let limit = "/proc/sys/fs/inotify/max_queued_events"

    init() throws {
        try #require(LocalSink.isAvailable && access(Self.limit, W_OK) == 0, "needs smtp-sink and root (writes \(Self.limit))")
    }

    /// A queue of 16 events (the limit is read when the daemon creates its inotify
    /// instance, so it is set around the start only), a stopped daemon, 40 drops:
    /// overflow, one rescan, all 40 delivered, and the metric counts it.
    @Test func overflowRescans() throws {
        let original = try String(contentsOfFile: Self.limit, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let fixture = try DaemonFixture(overrides: ["metrics.listen=127.0.0.1:0"])
        try "16".write(toFile: Self.limit, atomically: false, encoding: .utf8)
        let started = Result { try fixture.start() }
        try original.write(toFile: Self.limit, atomically: false, encoding: .utf8)
        try started.get()
        let daemon = try #require(fixture.daemon)
        daemon.signal(SIGSTOP)
        for index in 0..<40 { try fixture.drop(subject: "burst-\(index)") }
        daemon.signal(SIGCONT)
        #expect(fixture.waitForLog("inotify overflow or lost watch; rescanning"))
        #expect(fixture.waitForSink(40))
        #expect(fixture.waitForEmptyQueue())
        let port = try #require(fixture.metricsPort)
        var overflows: Double?
        #expect(BackgroundProcess.waitUntil(timeout: 30) {
            overflows = (try? ObservabilityTests.get(port: port)).flatMap { ObservabilityTests.samples($0.body)["postern_inotify_overflows_total"] }
            return (overflows ?? 0) >= 1
        })
        #expect(fixture.log.contains("reason=\"inotify overflow\""))
        #expect(fixture.stop() == 0)
    }
}
