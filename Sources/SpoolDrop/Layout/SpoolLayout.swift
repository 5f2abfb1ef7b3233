import PosternBase

/// Where things are in a spool. `spool-layout.md` is the contract; this type
/// only names its paths.
///
/// ```
/// SPOOL/VERSION        layout version ("1")
/// SPOOL/lock           flock(2)ed by the daemon and by `postern check`
/// SPOOL/tmp/ID/        a drop being written (private to its writer)
/// SPOOL/drop/ID/       complete drops, not yet accepted by the daemon
/// SPOOL/queue/ID/      accepted messages
/// SPOOL/hold/ID/       accepted messages held by an operator
/// SPOOL/corrupt/NAME/  quarantine: `reason` and the entry itself
/// SPOOL/control/       queue-control requests to a running daemon, and its answers
/// SPOOL/retired/ID/    envelopes of finished messages, kept for `queue.keep_retired`
/// SPOOL/mta-sts/       the MTA-STS policy cache, one DOMAIN.json per policy domain
/// SPOOL/tlsrpt/DAY/    TLSRPT result counts, one DOMAIN.json per policy domain and UTC day
/// ```
public struct SpoolLayout: Sendable, Equatable {
    /// The layout version in `VERSION`; a spool with another version is refused.
    public static let version = 1
    public static let messageFile = "message"
    public static let envelopeFile = "envelope.json"
    /// The temporary name for an envelope update inside a message directory.
    public static let envelopeTemporaryFile = "envelope.json.tmp"

    /// The places a message can be, and so its state.
    public enum Area: String, Sendable, CaseIterable, Comparable {
        /// Dropped and complete, not yet accepted by a daemon.
        case drop
        /// Accepted and waiting for (or in) delivery.
        case queue
        /// Accepted, but held by an operator.
        case hold

        /// The state name that listings show.
        public var state: String {
            switch self {
            case .drop: "dropped"
            case .queue: "queued"
            case .hold: "held"
            }
        }

        public static func < (lhs: Area, rhs: Area) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    public let root: String

    public init(root: String) {
        var path = root
        while path.count > 1, path.hasSuffix("/") { path.removeLast() }
        self.root = path
    }

    public var tmp: String { root + "/tmp" }
    public var corrupt: String { root + "/corrupt" }
    public var control: String { root + "/control" }
    public var retired: String { root + "/retired" }
    public var mtaSTSCache: String { root + "/mta-sts" }
    public var tlsReports: String { root + "/tlsrpt" }
    public var versionFile: String { root + "/VERSION" }
    public var lockFile: String { root + "/lock" }

    public func directory(_ area: Area) -> String { root + "/" + area.rawValue }
    public func path(_ area: Area, _ id: QueueID) -> String { directory(area) + "/" + id.rawValue }
    public func temporaryPath(_ id: QueueID) -> String { tmp + "/" + id.rawValue }
}
