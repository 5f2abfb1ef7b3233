import PosternCore
import Synchronization
import Testing
@testable import Monitoring

/// The exposition of `PosternMetrics`: every series, its value and its type,
/// checked line by line after a known sequence of events.
@Suite struct PosternMetricsTests {
    typealias M = PosternMetrics

    /// Every series that exists before any event, with its value: counters
    /// print as integers, gauges as doubles.
    static func initialSamples() -> [String: String] {
        var samples: [String: String] = [:]
        for result in M.ConnectionResult.allCases {
            samples["postern_queue_connection_total{result=\"\(result.rawValue)\"}"] = "0"
        }
        for state in M.QueueState.allCases {
            samples["postern_queue_messages{state=\"\(state.rawValue)\"}"] = "0.0"
            samples["postern_queue_recipients{state=\"\(state.rawValue)\"}"] = "0.0"
        }
        samples["postern_queue_oldest_message_age_seconds"] = "0.0"
        samples["postern_drops_total{result=\"accepted\",reason=\"\"}"] = "0"
        for reason in M.DropRejection.allCases {
            samples["postern_drops_total{result=\"rejected\",reason=\"\(reason.rawValue)\"}"] = "0"
        }
        for result in M.RecipientResult.allCases {
            for statusClass in M.StatusClass.allCases {
                samples["postern_deliveries_total{result=\"\(result.rawValue)\",status_class=\"\(statusClass.rawValue)\"}"] = "0"
            }
        }
        for kind in M.DSNKind.allCases {
            samples["postern_dsn_total{kind=\"\(kind.rawValue)\"}"] = "0"
        }
        samples["postern_rescan_duration_seconds"] = "0.0"
        samples["postern_rescan_messages"] = "0.0"
        samples["postern_inotify_overflows_total"] = "0"
        samples["postern_deliveries_in_flight"] = "0.0"
        for outcome in TLSOutcome.allCases {
            for policy in TLSPolicy.allCases {
                samples["postern_tls_total{outcome=\"\(outcome.rawValue)\",policy=\"\(policy.rawValue)\"}"] = "0"
            }
        }
        for le in ["1.0", "2.0", "5.0", "10.0", "20.0", "50.0", "100.0", "200.0", "500.0", "1000.0", "+Inf"] {
            samples["postern_queue_connection_messages_bucket{le=\"\(le)\"}"] = "0"
        }
        samples["postern_queue_connection_messages_sum"] = "0.0"
        samples["postern_queue_connection_messages_count"] = "0"
        samples["postern_double_bounces_total"] = "0"
        for condition in ["no_space", "no_descriptors", "read_only"] {
            samples["postern_spool_unwritable{condition=\"\(condition)\"}"] = "0.0"
            samples["postern_spool_write_failures_total{condition=\"\(condition)\"}"] = "0"
        }
        return samples
    }

    static let types = [
        "postern_queue_connection_total": "counter",
        "postern_queue_delivery_duration_seconds": "histogram",
        "postern_queue_messages": "gauge",
        "postern_queue_recipients": "gauge",
        "postern_queue_oldest_message_age_seconds": "gauge",
        "postern_drops_total": "counter",
        "postern_deliveries_total": "counter",
        "postern_dsn_total": "counter",
        "postern_rescan_duration_seconds": "gauge",
        "postern_rescan_messages": "gauge",
        "postern_inotify_overflows_total": "counter",
        "postern_deliveries_in_flight": "gauge",
        "postern_tls_total": "counter",
        "postern_queue_connection_messages": "histogram",
        "postern_double_bounces_total": "counter",
        "postern_spool_unwritable": "gauge",
        "postern_spool_write_failures_total": "counter",
        "postern_smtp_sessions_total": "counter",
        "postern_smtp_sessions_active": "gauge",
        "postern_smtp_messages_total": "counter",
        "postern_smtp_received_bytes_total": "counter",
        "postern_smtp_blanks_made_total": "counter",
    ]

    @Test func everyMetricShowsBeforeTheFirstEvent() {
        let parsed = ParsedExposition(M().exposition())
        #expect(parsed.types == Self.types)
        #expect(parsed.helps == Set(Self.types.keys))
        #expect(parsed.samples == Self.initialSamples())
        #expect(parsed.duplicates.isEmpty)
    }

    @Test func aKnownSequenceOfEventsGivesExactlyTheseSamples() {
        let metrics = M()
        metrics.connection(.ok)
        metrics.connection(.ok)
        metrics.connection(.timeout)
        metrics.deliveryDuration(seconds: 0.25, attempt: 1, transport: "relay", tlsMode: .opportunistic, result: .ok)
        metrics.deliveryDuration(seconds: 2.5, attempt: 1, transport: "relay", tlsMode: .opportunistic, result: .ok)
        metrics.deliveryDuration(seconds: 45, attempt: 12, transport: "direct", tlsMode: .required, result: .tempError)
        metrics.setQueue(messages: QueueCounts(queued: 3, held: 1, corrupt: 2),
                         recipients: QueueCounts(queued: 7, held: 1, corrupt: 2, retired: 4))
        metrics.setOldestQueuedAge(125.5)
        for _ in 0..<3 { metrics.dropAccepted() }
        metrics.dropRejected(reason: .badName)
        metrics.dropRejected(reason: .invalid)
        metrics.dropRejected(reason: .invalid)
        metrics.delivery(result: .sent, statusClass: .success)
        metrics.delivery(result: .sent, statusClass: M.StatusClass(replyCode: 250))
        metrics.delivery(result: .deferred, statusClass: M.StatusClass(replyCode: 451))
        metrics.delivery(result: .bounced, statusClass: M.StatusClass(replyCode: 550))
        metrics.delivery(result: .expired, statusClass: M.StatusClass(replyCode: nil))
        metrics.dsn(kind: .failed)
        metrics.dsn(kind: .postmaster)
        metrics.rescan(seconds: 0.75, messages: 42)
        metrics.inotifyOverflow()
        metrics.setInFlight(3)
        metrics.tls(.pkix, policy: .mtaSTSEnforce)
        metrics.tls(.pkix, policy: .mtaSTSEnforce)
        metrics.tls(.plaintext, policy: .noPolicy)
        metrics.connectionMessages(1)
        metrics.connectionMessages(37)
        metrics.doubleBounce()
        metrics.spoolWriteFailed(.noSpace)
        metrics.spoolWriteFailed(.noSpace)
        metrics.setSpoolUnwritable(.noSpace, true)
        metrics.setSpoolUnwritable(.readOnly, true)
        metrics.setSpoolUnwritable(.readOnly, false)

        var expected = Self.initialSamples()
        // 1 and 37: le is inclusive, so 1 is in every bucket and 37 from 50 on.
        for (le, count) in zip(["1.0", "2.0", "5.0", "10.0", "20.0", "50.0", "100.0", "200.0", "500.0", "1000.0", "+Inf"],
                               [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]) {
            expected["postern_queue_connection_messages_bucket{le=\"\(le)\"}"] = String(count)
        }
        expected["postern_queue_connection_messages_sum"] = "38.0"
        expected["postern_queue_connection_messages_count"] = "2"
        expected["postern_double_bounces_total"] = "1"
        expected["postern_spool_write_failures_total{condition=\"no_space\"}"] = "2"
        expected["postern_spool_unwritable{condition=\"no_space\"}"] = "1.0"
        expected["postern_queue_connection_total{result=\"ok\"}"] = "2"
        expected["postern_queue_connection_total{result=\"timeout\"}"] = "1"
        expected["postern_queue_messages{state=\"queued\"}"] = "3.0"
        expected["postern_queue_messages{state=\"held\"}"] = "1.0"
        expected["postern_queue_messages{state=\"corrupt\"}"] = "2.0"
        expected["postern_queue_recipients{state=\"queued\"}"] = "7.0"
        expected["postern_queue_recipients{state=\"held\"}"] = "1.0"
        expected["postern_queue_recipients{state=\"corrupt\"}"] = "2.0"
        expected["postern_queue_recipients{state=\"retired\"}"] = "4.0"
        expected["postern_queue_oldest_message_age_seconds"] = "125.5"
        expected["postern_drops_total{result=\"accepted\",reason=\"\"}"] = "3"
        expected["postern_drops_total{result=\"rejected\",reason=\"bad_name\"}"] = "1"
        expected["postern_drops_total{result=\"rejected\",reason=\"invalid\"}"] = "2"
        expected["postern_deliveries_total{result=\"sent\",status_class=\"2\"}"] = "2"
        expected["postern_deliveries_total{result=\"deferred\",status_class=\"4\"}"] = "1"
        expected["postern_deliveries_total{result=\"bounced\",status_class=\"5\"}"] = "1"
        expected["postern_deliveries_total{result=\"expired\",status_class=\"none\"}"] = "1"
        expected["postern_dsn_total{kind=\"failed\"}"] = "1"
        expected["postern_dsn_total{kind=\"postmaster\"}"] = "1"
        expected["postern_rescan_duration_seconds"] = "0.75"
        expected["postern_rescan_messages"] = "42.0"
        expected["postern_inotify_overflows_total"] = "1"
        expected["postern_deliveries_in_flight"] = "3.0"
        expected["postern_tls_total{outcome=\"pkix\",policy=\"mta-sts-enforce\"}"] = "2"
        expected["postern_tls_total{outcome=\"none\",policy=\"none\"}"] = "1"

        let les = ["0.01", "0.05", "0.1", "0.5", "1.0", "5.0", "10.0", "20.0", "30.0", "60.0", "120.0", "+Inf"]
        func histogram(_ labels: String, buckets: [Int], sum: String, count: Int) {
            let name = "postern_queue_delivery_duration_seconds"
            for (le, n) in zip(les, buckets + [count]) {
                expected["\(name)_bucket{\(labels),le=\"\(le)\"}"] = String(n)
            }
            expected["\(name)_sum{\(labels)}"] = sum
            expected["\(name)_count{\(labels)}"] = String(count)
        }
        // 0.25 s and 2.5 s: in every bucket from 0.5 and from 5 on (le is inclusive).
        histogram(#"attempt="1",transport="relay",tlsmode="opportunistic",result="ok""#,
                  buckets: [0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2], sum: "2.75", count: 2)
        // Attempt 12 is labelled 9+; 45 s falls in 60 and 120.
        histogram(#"attempt="9+",transport="direct",tlsmode="required",result="temperror""#,
                  buckets: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1], sum: "45.0", count: 1)

        let parsed = ParsedExposition(metrics.exposition())
        #expect(parsed.duplicates.isEmpty)
        #expect(parsed.types == Self.types)
        #expect(Set(parsed.samples.keys).subtracting(expected.keys).sorted() == [], "unexpected series")
        #expect(Set(expected.keys).subtracting(parsed.samples.keys).sorted() == [], "missing series")
        for (series, value) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(parsed.samples[series] == value, "\(series)")
        }
    }

    /// Families sorted by name, series sorted within them, a histogram series'
    /// lines together in bucket order: the same text for the same events, in
    /// any process.
    @Test func theExpositionIsSortedAndStable() {
        func run() -> String {
            let metrics = M()
            metrics.deliveryDuration(seconds: 1, attempt: 2, transport: "relay", tlsMode: .implicit, result: .ok)
            metrics.deliveryDuration(seconds: 1, attempt: 1, transport: "relay", tlsMode: .implicit, result: .ok)
            metrics.connection(.error)
            return metrics.exposition()
        }
        let text = run()
        #expect(text == run())
        #expect(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n")
        let families = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(families == families.sorted())
        #expect(families.count == Self.types.count)

        let histogram = lines.filter { $0.hasPrefix("postern_queue_delivery_duration_seconds") }
        #expect(histogram.count == 2 * 14)
        #expect(histogram[0].hasPrefix(#"postern_queue_delivery_duration_seconds_bucket{attempt="1","#))
        #expect(histogram[0].hasSuffix(#"le="0.01"} 0"#))
        #expect(histogram[11].hasSuffix(#"le="+Inf"} 1"#))
        #expect(histogram[12].hasPrefix(#"postern_queue_delivery_duration_seconds_sum{attempt="1","#))
        #expect(histogram[13].hasPrefix(#"postern_queue_delivery_duration_seconds_count{attempt="1","#))
        #expect(histogram[14].hasPrefix(#"postern_queue_delivery_duration_seconds_bucket{attempt="2","#))
    }

    @Test func attemptLabelsAreCapped() {
        #expect(M.attemptLabel(0) == "1")
        #expect(M.attemptLabel(1) == "1")
        #expect(M.attemptLabel(8) == "8")
        #expect(M.attemptLabel(9) == "9+")
        #expect(M.attemptLabel(1000) == "9+")
    }

    @Test func statusClassOfAReplyCode() {
        #expect(M.StatusClass(replyCode: 250) == .success)
        #expect(M.StatusClass(replyCode: 421) == .transient)
        #expect(M.StatusClass(replyCode: 554) == .permanent)
        #expect(M.StatusClass(replyCode: 354) == .noReply)
        #expect(M.StatusClass(replyCode: nil) == .noReply)
    }

    @Test func negativeDurationsAndAgesReadAsZero() {
        let metrics = M()
        metrics.setOldestQueuedAge(-3)
        metrics.rescan(seconds: -1, messages: 0)
        let parsed = ParsedExposition(metrics.exposition())
        #expect(parsed.samples["postern_queue_oldest_message_age_seconds"] == "0.0")
        #expect(parsed.samples["postern_rescan_duration_seconds"] == "0.0")
    }

    /// The oldest message's age is computed at each scrape from its arrival, on the metrics' clock.
    @Test func oldestAgeGrowsBetweenScrapes() {
        let now = Mutex(1000.0)
        let metrics = M(clock: { now.withLock { $0 } })
        metrics.setOldestQueued(arrival: 940)
        #expect(ParsedExposition(metrics.exposition()).samples["postern_queue_oldest_message_age_seconds"] == "60.0")
        now.withLock { $0 = 1030 }
        #expect(ParsedExposition(metrics.exposition()).samples["postern_queue_oldest_message_age_seconds"] == "90.0")
    }

    /// Events from many threads at once all count (the counters are atomics).
    @Test func concurrentEventsAllCount() async {
        let metrics = M()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<1000 { metrics.connection(.ok) }
                    for _ in 0..<10 {
                        metrics.deliveryDuration(seconds: 0.2, attempt: 1, transport: "relay", tlsMode: .required, result: .ok)
                    }
                }
            }
        }
        let parsed = ParsedExposition(metrics.exposition())
        #expect(parsed.samples["postern_queue_connection_total{result=\"ok\"}"] == "8000")
        #expect(parsed.samples[#"postern_queue_delivery_duration_seconds_count{attempt="1",transport="relay",tlsmode="required",result="ok"}"#] == "80")
    }
}
