import Prometheus

/// Postern's metric families: names, help texts and types in one place, so the
/// exposition can declare a family that has no series yet.
///
/// The names are whole (`postern_..._total`): `MetricNameDescriptor`'s
/// namespace/subsystem/unit pieces would only spread a name grep must find.
enum MetricFamily: String, CaseIterable, Sendable {
    case connections = "postern_queue_connection_total"
    case deliveryDuration = "postern_queue_delivery_duration_seconds"
    case messages = "postern_queue_messages"
    case recipients = "postern_queue_recipients"
    case oldestQueuedAge = "postern_queue_oldest_message_age_seconds"
    case drops = "postern_drops_total"
    case deliveries = "postern_deliveries_total"
    case dsns = "postern_dsn_total"
    case rescanDuration = "postern_rescan_duration_seconds"
    case rescanMessages = "postern_rescan_messages"
    case inotifyOverflows = "postern_inotify_overflows_total"
    case inFlight = "postern_deliveries_in_flight"
    case tls = "postern_tls_total"
    case connectionMessages = "postern_queue_connection_messages"
    case doubleBounces = "postern_double_bounces_total"
    case spoolUnwritable = "postern_spool_unwritable"
    case spoolWriteFailures = "postern_spool_write_failures_total"
    case smtpSessions = "postern_smtp_sessions_total"
    case smtpSessionsActive = "postern_smtp_sessions_active"
    case smtpMessages = "postern_smtp_messages_total"
    case smtpBytes = "postern_smtp_received_bytes_total"
    case smtpBlanksMade = "postern_smtp_blanks_made_total"

    var name: String { rawValue }

    var type: String {
        switch self {
        case .connections, .drops, .deliveries, .dsns, .inotifyOverflows, .tls, .doubleBounces, .spoolWriteFailures,
             .smtpSessions, .smtpMessages, .smtpBytes, .smtpBlanksMade: "counter"
        case .deliveryDuration, .connectionMessages: "histogram"
        case .messages, .recipients, .oldestQueuedAge, .rescanDuration, .rescanMessages, .inFlight, .spoolUnwritable,
             .smtpSessionsActive: "gauge"
        }
    }

    /// Plain ASCII with no backslash or line feed: written as is on `# HELP`.
    var help: String {
        switch self {
        case .connections: "SMTP connections of delivery attempts, by result (ok, timeout, canceled, error)."
        case .deliveryDuration: "Duration of delivery attempts in seconds, by attempt number, transport, TLS mode and result."
        case .messages: "Messages in the spool by state (queued, held, corrupt = quarantined, retired)."
        case .recipients: "Pending recipients of the messages in the spool by state; a message indexed at start-up counts one until its envelope is read when due."
        case .oldestQueuedAge: "Age in seconds of the oldest queued message; 0 when the queue is empty."
        case .drops: "Drops picked up by the daemon: accepted, or rejected with a reason."
        case .deliveries: "Recipient outcomes by result and SMTP status class (2, 4, 5, none)."
        case .dsns: "Delivery status notifications written, by kind (failed, delayed, postmaster)."
        case .rescanDuration: "Duration in seconds of the last start-up scan of the spool."
        case .rescanMessages: "Messages found by the last start-up scan of the spool."
        case .inotifyOverflows: "Times the kernel dropped inotify events and the spool was rescanned."
        case .inFlight: "Delivery attempts in progress now."
        case .tls: "Connections that reached SMTP, by the TLS they ended with and the TLS policy that applied."
        case .connectionMessages: "Messages each SMTP connection carried, observed when it closed (connection reuse)."
        case .doubleBounces: "Undeliverable bounces with no one to notify, kept in hold/ for the postmaster."
        case .spoolUnwritable: "1 while the spool cannot be written for this reason (full, out of descriptors, read-only), else 0."
        case .spoolWriteFailures: "Spool writes the daemon put off for a condition of the file system, by condition."
        case .smtpSessions: "Sessions of the SMTP listener, by how they ended (quit, disconnected, timeout, errors, refused, tls_failed)."
        case .smtpSessionsActive: "Sessions of the SMTP listener open now."
        case .smtpMessages: "Messages the SMTP listener received: accepted, or rejected with a reason."
        case .smtpBytes: "Octets of messages the SMTP listener accepted, as stored."
        case .smtpBlanksMade: "Message directories made ahead for the SMTP listener, when no delivered message left one to reuse (delivery slower than injection, or paused)."
        }
    }

    var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// Makes the registry's text stable and complete.
///
/// `PrometheusCollectorRegistry` keeps families and series in dictionaries, so
/// its output order changes from process to process (Swift seeds its hashing
/// per process). Prometheus does not care, but a person running `curl` twice,
/// or diffing two scrapes, does. `normalize` sorts the families by name and
/// the series within each family, keeping each histogram series' lines together
/// and in bucket order. It also declares (`# HELP`, `# TYPE`) the families that
/// have no series yet, so that every metric of Postern shows from the start.
enum Exposition {
    private struct Family {
        var name: String
        var header: [Substring] = []
        var type: Substring = "untyped"
        var samples: [Substring] = []
    }

    static func normalize(_ text: String, declaring declared: [MetricFamily]) -> String {
        var families: [String: Family] = [:]
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard fields.count >= 4 else { continue }
                let name = String(fields[2])
                families[name, default: Family(name: name)].header.append(line)
                if fields[1] == "TYPE" { families[name]!.type = fields[3] }
                current = name
            } else if line.hasPrefix("#") {
                continue
            } else if let current {
                families[current]!.samples.append(line)
            }
        }
        for family in declared where families[family.name] == nil {
            families[family.name] = Family(name: family.name,
                                           header: ["# HELP \(family.name) \(family.help)", "# TYPE \(family.name) \(family.type)"],
                                           type: Substring(family.type))
        }

        var out = ""
        out.reserveCapacity(text.utf8.count + 1024)
        for family in families.values.sorted(by: { $0.name < $1.name }) {
            for line in family.header { out += line; out += "\n" }
            for line in sortedSamples(family) { out += line; out += "\n" }
        }
        return out
    }

    /// A counter's or gauge's lines sort as they are (one line per series). A
    /// histogram's series is a block of lines (buckets, `+Inf`, `_sum`) that the
    /// registry closes with its `_count` line; the blocks sort by that line,
    /// which holds the series' labels and nothing else.
    private static func sortedSamples(_ family: Family) -> [Substring] {
        guard family.type == "histogram" else { return family.samples.sorted() }
        let countPrefix = family.name + "_count"
        var blocks: [[Substring]] = []
        var block: [Substring] = []
        for line in family.samples {
            block.append(line)
            if line.hasPrefix(countPrefix) {
                blocks.append(block)
                block = []
            }
        }
        if !block.isEmpty { blocks.append(block) }
        return blocks.sorted { ($0.last ?? "") < ($1.last ?? "") }.flatMap { $0 }
    }
}
