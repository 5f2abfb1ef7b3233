import Foundation
import Glibc
import PosternCore
import SpoolDrop
import Synchronization
import TLS

/// TLSRPT results (RFC 8460): successful and failed sessions counted per
/// policy domain and UTC day in `SPOOL/tlsrpt/DAY/DOMAIN.json`
/// (spool-layout.md 11), which `postern tlsrpt` prints as the RFC's JSON.
///
/// Counts are kept in memory and written behind: a day's file of a domain is
/// rewritten by the atomic protocol (write `.tmp`, rename over), without
/// fsync, at its first count and then at most once per `writeInterval` while
/// counts come; counts that have waited that long are written by `writeDue()`,
/// which the daemon calls at least once a minute whether counts come or not,
/// and every pending count at `flush()` (the daemon's stop, a reload). Why: a
/// delivery to a domain with a policy is counted, and at a few hundred
/// deliveries a second to one large provider a file rewrite each (read,
/// parse, encode, write, rename, under one lock) would be on every delivery's
/// path. A count lost to a crash (at most the last minute's) or a power
/// failure makes a report a few sessions short, which TLSRPT tolerates (its
/// counts are statistics, RFC 8460 4.4) and no mail depends on.
public final class TLSReportCounter: Sendable {
    /// RFC 8460 4.3: the result types this sender can observe.
    public enum Failure: Sendable, Equatable {
        case starttlsNotSupported
        case certificateHostMismatch
        case certificateExpired
        case certificateNotTrusted
        case validationFailure(String)
        case tlsaInvalid(String)
        case daneRequired
        case stsPolicyFetchError(String)
        case stsWebPKIInvalid

        public var resultType: String {
            switch self {
            case .starttlsNotSupported: "starttls-not-supported"
            case .certificateHostMismatch: "certificate-host-mismatch"
            case .certificateExpired: "certificate-expired"
            case .certificateNotTrusted: "certificate-not-trusted"
            case .validationFailure: "validation-failure"
            case .tlsaInvalid: "tlsa-invalid"
            case .daneRequired: "dane-required"
            case .stsPolicyFetchError: "sts-policy-fetch-error"
            case .stsWebPKIInvalid: "sts-webpki-invalid"
            }
        }
    }

    /// One session's result, for one policy domain.
    public struct Event: Sendable, Equatable {
        public var domain: String
        public var policy: TLSPolicy
        public var host: String?
        public var ip: String?
        /// nil: a successful session.
        public var failure: Failure?

        public init(domain: String, policy: TLSPolicy, host: String? = nil, ip: String? = nil, failure: Failure? = nil) {
            self.domain = domain
            self.policy = policy
            self.host = host
            self.ip = ip
            self.failure = failure
        }
    }

    /// The longest a count waits in memory while more come.
    public static let defaultWriteInterval: TimeInterval = 10

    public let directory: String
    public let clock: any WallClock
    public let writeInterval: TimeInterval
    private let fileSystem: any FileSystem
    /// Each day's counts of a domain seen by this process, by file path:
    /// read from the file at the first count, then kept here.
    private let days = Mutex<[String: Day]>([:])

    struct Day {
        var counts: TLSReportDay
        /// When the file was last written; nil: never by this process.
        var written: Date?
        var pending = false
    }

    public init(directory: String, clock: any WallClock = SystemClock(), writeInterval: TimeInterval = TLSReportCounter.defaultWriteInterval,
                fileSystem: any FileSystem = SystemFileSystem()) {
        self.directory = directory
        self.clock = clock
        self.writeInterval = writeInterval
        self.fileSystem = fileSystem
    }

    /// The RFC 8460 policy type of a policy: `tlsa`, `sts`, `no-policy-found`.
    static func policyType(_ policy: TLSPolicy) -> String {
        switch policy {
        case .dane: "tlsa"
        case .mtaSTSEnforce, .mtaSTSTesting: "sts"
        case .noPolicy: "no-policy-found"
        }
    }

    /// The UTC day of a time: `2026-12-04`.
    static func day(_ date: Date) -> String {
        String(Timestamp.format(epochSeconds: date.timeIntervalSince1970).prefix(10))
    }

    /// Counts one session. A failure to write it (a full disk) is dropped on
    /// purpose: counts are statistics, and delivery must not wait on them.
    public func count(_ event: Event?) {
        guard let event, let file = MTASTSCache.fileName(event.domain) else { return }
        let now = clock.now
        let day = Self.day(now)
        let path = directory + "/" + day + "/" + file
        days.withLock { days in
            var entry = days[path] ?? Day(counts: TLSReportDay.load(path) ?? TLSReportDay(domain: event.domain, day: day))
            entry.counts.add(event)
            entry.pending = true
            if let written = entry.written, now.timeIntervalSince(written) < writeInterval {
                days[path] = entry
                return
            }
            write(&entry, to: path, now: now)
            days[path] = entry
            // A day that is over takes no more counts: its last ones are written, and it is forgotten.
            for (other, old) in days where old.counts.day != day {
                var old = old
                if old.pending { write(&old, to: other, now: now) }
                days[other] = nil
            }
        }
    }

    /// Writes every count still in memory.
    public func flush() {
        writePending(now: clock.now) { _ in true }
    }

    /// Writes the counts that have waited `writeInterval` or longer: a
    /// domain's last counts of a burst, with no count after them to write
    /// them (the daemon calls this now and then, off its event loop).
    public func writeDue() {
        let now = clock.now
        writePending(now: now) { entry in entry.written.map { now.timeIntervalSince($0) >= writeInterval } ?? true }
    }

    private func writePending(now: Date, _ due: (Day) -> Bool) {
        days.withLock { days in
            for (path, entry) in days where entry.pending && due(entry) {
                var entry = entry
                write(&entry, to: path, now: now)
                days[path] = entry
            }
        }
    }

    /// Rewrites one day's file of a domain; on failure the counts stay pending.
    private func write(_ entry: inout Day, to path: String, now: Date) {
        let dayDirectory = directory + "/" + entry.counts.day
        do throws(SpoolIOError) {
            try MTASTSCache.ensureDirectory(directory, fileSystem)
            try MTASTSCache.ensureDirectory(dayDirectory, fileSystem)
            let temporary = path + ".tmp"
            try? fileSystem.removeFile(temporary)   // a leftover of a crash; absent as a rule
            let fd = try fileSystem.createFile(temporary, mode: 0o600)
            defer { fileSystem.close(fd) }
            try fileSystem.write(fd, entry.counts.json.encodedBytes(), path: temporary)
            try fileSystem.replace(temporary, with: path)
            entry.pending = false
            entry.written = now
        } catch {
            // Kept pending for the next write, as said above.
        }
    }

    /// The session a report of `SMTPSession` stands for, or nil when there
    /// is nothing to report: no session (a connection refused), or no policy.
    /// Sessions without a policy are not counted: TLSRPT is for domains that
    /// publish one (RFC 8460 3), and counting every ordinary delivery would
    /// put a file write on its path.
    static func result(of report: AttemptReport, domain: String, host: String, plan: TLSPlan) -> Event? {
        guard let outcome = report.tlsOutcome, plan.policy != .noPolicy else { return nil }
        var event = Event(domain: domain, policy: plan.policy, host: host, ip: report.ip)
        // A failed handshake's reason is in the recipients' text; an unenforced failure in the TLS summary.
        let detail = outcome == .failed ? report.results.first?.text ?? "TLS failed" : report.tls ?? ""
        switch (outcome, plan.verification.mode) {
        case (.dane, _), (.pkix, _):
            break
        case (.opportunistic, .unverified):
            break
        case (.plaintext, _):
            event.failure = .starttlsNotSupported
        case (.failed, .dane), (.opportunistic, .dane):
            event.failure = .validationFailure(detail)
        case (.failed, .pkix), (.opportunistic, .pkix):
            event.failure = Self.pkixFailure(report.verificationFailure, detail: detail)
        case (.failed, .unverified):
            event.failure = .validationFailure(detail)
        }
        return event
    }

    /// RFC 8460 4.3's certificate result types, from the TLS layer's own
    /// classification of the failure; any other is a validation failure.
    static func pkixFailure(_ failure: VerificationFailure?, detail: String) -> Failure {
        switch failure?.reason {
        case .expired: .certificateExpired
        case .wrongName: .certificateHostMismatch
        case .untrusted: .certificateNotTrusted
        case .notYetValid, .daneMismatch, .noUsableTLSARecords, .noCertificate, .other, nil: .validationFailure(detail)
        }
    }

    /// Every day's counts, oldest first; only `day` when given.
    public func days(_ day: String? = nil) -> [TLSReportDay] {
        flush()   // what this process counted, first
        var result: [TLSReportDay] = []
        // An absent directory: nothing counted yet.
        let days = ((try? DirectoryListing.names(in: directory)) ?? []).filter { $0.count == 10 && (day == nil || $0 == day) }
        for name in days.sorted() {
            let files = ((try? DirectoryListing.names(in: directory + "/" + name)) ?? []).filter { $0.hasSuffix(".json") }
            for file in files.sorted() {
                if let counts = TLSReportDay.load(directory + "/" + name + "/" + file) { result.append(counts) }
            }
        }
        return result
    }
}
