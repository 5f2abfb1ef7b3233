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
/// Each count rewrites the day's file of its domain by the atomic protocol
/// (write `.tmp`, rename over), without fsync: a count lost to a power
/// failure makes a report a session short, which TLSRPT tolerates (its counts
/// are statistics, RFC 8460 4.4) and no mail depends on.
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

    public let directory: String
    public let clock: any WallClock
    private let fileSystem: any FileSystem
    private let writing = Mutex<Void>(())

    public init(directory: String, clock: any WallClock = SystemClock(), fileSystem: any FileSystem = SystemFileSystem()) {
        self.directory = directory
        self.clock = clock
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
        let day = Self.day(clock.now)
        let dayDirectory = directory + "/" + day
        let path = dayDirectory + "/" + file
        do throws(SpoolIOError) {
            try writing.withLock { _ throws(SpoolIOError) in
                try MTASTSCache.ensureDirectory(directory, fileSystem)
                try MTASTSCache.ensureDirectory(dayDirectory, fileSystem)
                var counts = TLSReportDay.load(path) ?? TLSReportDay(domain: event.domain, day: day)
                counts.add(event)
                let temporary = path + ".tmp"
                try? fileSystem.removeFile(temporary)   // a leftover of a crash; absent as a rule
                let fd = try fileSystem.createFile(temporary, mode: 0o600)
                defer { fileSystem.close(fd) }
                try fileSystem.write(fd, counts.json.encodedBytes(), path: temporary)
                try fileSystem.replace(temporary, with: path)
            }
        } catch {
            // Dropped, as said above.
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
