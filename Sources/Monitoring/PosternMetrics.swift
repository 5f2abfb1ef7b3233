import Glibc
import PosternCore
import Prometheus
import Synchronization

/// The daemon's metrics, one small typed method per event, rendered by
/// `exposition()` in the Prometheus text format for `/metrics`.
///
/// Why a class with its own registry and not swift-metrics' global
/// `MetricsSystem.bootstrap`: the global system can be bootstrapped once per
/// process, which makes tests share state and run in order; names and labels
/// would be strings at every call site; and nothing else in Postern uses
/// swift-metrics. Here each instance owns a `PrometheusCollectorRegistry`, the
/// label values are enums (see `MetricLabels.swift`), and a test makes its own.
///
/// Every series of the fixed label sets exists from `init` at 0, so a dashboard
/// sees each metric before the first event. The one exception is the delivery
/// histogram: its cross-product (attempt × transport × tlsmode × result) is too
/// large to pre-create, so its series appear with their first observation and
/// until then the exposition carries its `# HELP` and `# TYPE` lines alone.
///
/// Thread-safe: counters and gauges are atomics, histograms and the registry
/// take short locks. Call it from the poll loop and from delivery threads alike.
public final class PosternMetrics: Sendable {
    /// The registry behind the exposition, for a caller that wants to add its
    /// own collectors. Postern's metrics are all created by `init`.
    public let registry: PrometheusCollectorRegistry

    /// mox's delivery-duration buckets, in seconds.
    public static let deliveryDurationBuckets: [Double] = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 20, 30, 60, 120]

    /// Attempts 1...`attemptLabelCap` each have their own `attempt` label value;
    /// later attempts share `"\(attemptLabelCap + 1)+"` (`"9+"`). Eight keeps the
    /// histogram's series bounded while still separating the first attempt
    /// (usually fast) from the retries of the first day of backoff.
    public static let attemptLabelCap = 8

    private let connections: [ConnectionResult: Counter]
    private let messages: [QueueState: Gauge]
    private let recipients: [QueueState: Gauge]
    private let oldestQueuedAge: Gauge
    /// When the oldest queued message arrived (seconds since 1970), so that its
    /// age is computed at each scrape rather than only when the queue changes.
    private let oldestArrival = Mutex<Double?>(nil)
    /// The clock for that age; tests replace it.
    private let clock: @Sendable () -> Double
    private let dropsAccepted: Counter
    private let dropsRejected: [DropRejection: Counter]
    private let deliveries: [DeliveryKey: Counter]
    private let dsns: [DSNKind: Counter]
    private let rescanDuration: Gauge
    private let rescanMessages: Gauge
    private let inotifyOverflows: Counter
    private let inFlight: Gauge
    private let tlsOutcomes: [TLSKey: Counter]
    private let connectionMessagesHistogram: ValueHistogram
    private let doubleBounceCounter: Counter
    private let spoolUnwritable: [SpoolCondition: Gauge]
    private let spoolWriteFailures: [SpoolCondition: Counter]
    public static let connectionMessagesBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]

    private struct TLSKey: Hashable, Sendable {
        var outcome: TLSOutcome
        var policy: TLSPolicy
    }

    private struct DeliveryKey: Hashable, Sendable {
        var result: RecipientResult
        var statusClass: StatusClass
    }

    public init(clock: @escaping @Sendable () -> Double = { PosternMetrics.wallClock() }) {
        self.clock = clock
        let registry = PrometheusCollectorRegistry()
        self.registry = registry

        func counters<Label: RawRepresentable & CaseIterable & Hashable>(
            _ family: MetricFamily, _ label: String, _: Label.Type
        ) -> [Label: Counter] where Label.RawValue == String {
            Dictionary(uniqueKeysWithValues: Label.allCases.map {
                ($0, registry.makeCounter(descriptor: family.descriptor, labels: [(label, $0.rawValue)]))
            })
        }
        func gauges(_ family: MetricFamily) -> [QueueState: Gauge] {
            Dictionary(uniqueKeysWithValues: QueueState.allCases.map {
                ($0, registry.makeGauge(descriptor: family.descriptor, labels: [("state", $0.rawValue)]))
            })
        }

        connections = counters(.connections, "result", ConnectionResult.self)
        messages = gauges(.messages)
        recipients = gauges(.recipients)
        oldestQueuedAge = registry.makeGauge(descriptor: MetricFamily.oldestQueuedAge.descriptor)
        dropsAccepted = registry.makeCounter(descriptor: MetricFamily.drops.descriptor,
                                             labels: [("result", "accepted"), ("reason", "")])
        dropsRejected = Dictionary(uniqueKeysWithValues: DropRejection.allCases.map {
            ($0, registry.makeCounter(descriptor: MetricFamily.drops.descriptor,
                                      labels: [("result", "rejected"), ("reason", $0.rawValue)]))
        })
        var deliveries: [DeliveryKey: Counter] = [:]
        for result in RecipientResult.allCases {
            for statusClass in StatusClass.allCases {
                deliveries[DeliveryKey(result: result, statusClass: statusClass)] = registry.makeCounter(
                    descriptor: MetricFamily.deliveries.descriptor,
                    labels: [("result", result.rawValue), ("status_class", statusClass.rawValue)])
            }
        }
        self.deliveries = deliveries
        dsns = counters(.dsns, "kind", DSNKind.self)
        rescanDuration = registry.makeGauge(descriptor: MetricFamily.rescanDuration.descriptor)
        rescanMessages = registry.makeGauge(descriptor: MetricFamily.rescanMessages.descriptor)
        inotifyOverflows = registry.makeCounter(descriptor: MetricFamily.inotifyOverflows.descriptor)
        inFlight = registry.makeGauge(descriptor: MetricFamily.inFlight.descriptor)
        var tlsOutcomes: [TLSKey: Counter] = [:]
        for outcome in TLSOutcome.allCases {
            for policy in TLSPolicy.allCases {
                tlsOutcomes[TLSKey(outcome: outcome, policy: policy)] = registry.makeCounter(
                    descriptor: MetricFamily.tls.descriptor, labels: [("outcome", outcome.rawValue), ("policy", policy.rawValue)])
            }
        }
        self.tlsOutcomes = tlsOutcomes
        connectionMessagesHistogram = registry.makeValueHistogram(descriptor: MetricFamily.connectionMessages.descriptor,
                                                                  buckets: Self.connectionMessagesBuckets)
        doubleBounceCounter = registry.makeCounter(descriptor: MetricFamily.doubleBounces.descriptor)
        spoolUnwritable = Dictionary(uniqueKeysWithValues: SpoolCondition.allCases.map {
            ($0, registry.makeGauge(descriptor: MetricFamily.spoolUnwritable.descriptor, labels: [("condition", $0.rawValue)]))
        })
        spoolWriteFailures = counters(.spoolWriteFailures, "condition", SpoolCondition.self)
    }

    // MARK: Events

    /// A double bounce was kept in hold/ for the postmaster.
    public func doubleBounce() {
        doubleBounceCounter.increment()
    }

    /// A spool write put off for `condition`.
    public func spoolWriteFailed(_ condition: SpoolCondition) {
        spoolWriteFailures[condition]?.increment()
    }

    /// Whether the spool is unwritable for `condition` now.
    public func setSpoolUnwritable(_ condition: SpoolCondition, _ unwritable: Bool) {
        spoolUnwritable[condition]?.set(to: unwritable ? 1 : 0)
    }

    /// How many messages an SMTP connection carried, when it closed.
    public func connectionMessages(_ count: Int) {
        connectionMessagesHistogram.record(Double(count))
    }

    /// An attempt's SMTP connection ended.
    public func connection(_ result: ConnectionResult) {
        connections[result]!.increment()
    }

    /// A delivery attempt ended after `seconds` (connect to QUIT, all its
    /// recipients). `attempt` is the message's attempt number counting from 1,
    /// labelled as `attemptLabel(_:)` says; `transport` is the transport's
    /// short name (`relay`, `direct`): configured names only, never a domain or
    /// a host, since each value is a new set of series.
    public func deliveryDuration(seconds: Double, attempt: Int, transport: String,
                                 tlsMode: TLSMode, result: AttemptResult) {
        let histogram = registry.makeValueHistogram(
            descriptor: MetricFamily.deliveryDuration.descriptor,
            labels: [("attempt", Self.attemptLabel(attempt)), ("transport", transport),
                     ("tlsmode", tlsMode.rawValue), ("result", result.rawValue)],
            buckets: Self.deliveryDurationBuckets)
        histogram.record(max(0, seconds))
    }

    /// The `attempt` label of an attempt number: `"1"`...`"8"`, then `"9+"`.
    /// Numbers below 1 count as 1.
    public static func attemptLabel(_ attempt: Int) -> String {
        attempt > attemptLabelCap ? "\(attemptLabelCap + 1)+" : String(max(1, attempt))
    }

    /// The queue's messages and recipients by state, as counted now. Both
    /// gauges are set together so that a scrape never sees one updated and
    /// the other not (within one call's few atomic stores).
    public func setQueue(messages: QueueCounts, recipients: QueueCounts) {
        for state in QueueState.allCases {
            self.messages[state]!.set(to: Double(messages[state]))
            self.recipients[state]!.set(to: Double(recipients[state]))
        }
    }

    /// The age in seconds of the oldest message in `queue/` (held ones do not
    /// count); 0 when the queue is empty. Negative ages (a clock stepped back)
    /// read as 0.
    public func setOldestQueuedAge(_ seconds: Double) {
        oldestQueuedAge.set(to: max(0, seconds))
    }

    /// When the oldest message in `queue/` arrived, in seconds since 1970; nil
    /// when the queue is empty. The age is computed at every exposition.
    public func setOldestQueued(arrival: Double?) {
        oldestArrival.withLock { $0 = arrival }
        if arrival == nil { setOldestQueuedAge(0) }
    }

    /// Seconds since 1970 from the system clock.
    public static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// A drop was validated and accepted into the queue.
    public func dropAccepted() {
        dropsAccepted.increment()
    }

    /// A drop was refused at pickup (and quarantined).
    public func dropRejected(reason: DropRejection) {
        dropsRejected[reason]!.increment()
    }

    /// One recipient's outcome of an attempt. `statusClass` is the class of the
    /// reply behind it: `StatusClass(replyCode:)` builds it from a reply code.
    public func delivery(result: RecipientResult, statusClass: StatusClass) {
        deliveries[DeliveryKey(result: result, statusClass: statusClass)]!.increment()
    }

    /// A DSN was written into the queue.
    public func dsn(kind: DSNKind) {
        dsns[kind]!.increment()
    }

    /// The start-up scan of the spool took `seconds` and found `messages`.
    public func rescan(seconds: Double, messages: Int) {
        rescanDuration.set(to: max(0, seconds))
        rescanMessages.set(to: Double(messages))
    }

    /// The kernel dropped inotify events (`IN_Q_OVERFLOW`); the daemon rescans.
    public func inotifyOverflow() {
        inotifyOverflows.increment()
    }

    /// The number of delivery attempts running now.
    public func setInFlight(_ count: Int) {
        inFlight.set(to: Double(count))
    }

    /// A connection reached SMTP (the greeting was read) and ended with this
    /// TLS, under this policy (RFC 7672 DANE, RFC 8461 MTA-STS, or none).
    public func tls(_ outcome: TLSOutcome, policy: TLSPolicy) {
        tlsOutcomes[TLSKey(outcome: outcome, policy: policy)]!.increment()
    }

    // MARK: Exposition

    /// The metrics in the Prometheus text format (version 0.0.4), families
    /// sorted by name, ready to serve as `text/plain; version=0.0.4`.
    public func exposition() -> String {
        if let arrival = oldestArrival.withLock({ $0 }) { setOldestQueuedAge(clock() - arrival) }
        return Exposition.normalize(registry.emitToString(), declaring: MetricFamily.allCases)
    }
}

/// Counts per queue state, for `PosternMetrics.setQueue(messages:recipients:)`.
/// States left out are 0.
public struct QueueCounts: Sendable, Equatable {
    public var queued: Int
    public var held: Int
    public var corrupt: Int
    public var retired: Int

    public init(queued: Int = 0, held: Int = 0, corrupt: Int = 0, retired: Int = 0) {
        self.queued = queued
        self.held = held
        self.corrupt = corrupt
        self.retired = retired
    }

    public subscript(state: PosternMetrics.QueueState) -> Int {
        switch state {
        case .queued: queued
        case .held: held
        case .corrupt: corrupt
        case .retired: retired
        }
    }
}
