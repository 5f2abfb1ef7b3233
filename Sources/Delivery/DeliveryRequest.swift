import PosternCore
import SMTP
import TLS

/// One job's worth of work for a transport: a message and the recipients of
/// one destination domain. Plain values, built by the daemon from the envelope.
public struct DeliveryRequest: Sendable {
    public let id: QueueID
    /// The path of the message file in the spool.
    public let messagePath: String
    /// Its size as the envelope states it; a file of another size is refused.
    public var messageSize: Int?
    /// The reverse-path; empty for the null sender.
    public let sender: String
    public var recipients: [String]
    public let domain: String
    public var eightBit = false
    public var smtputf8 = false
    /// REQUIRETLS tri-state (the envelope's `require_tls`): nil unset; true
    /// REQUIRETLS (RFC 8689 4), only to hosts reached with verified TLS that
    /// offer it; false the `TLS-Required: No` header (RFC 8689 5), which lets
    /// delivery ignore DANE and MTA-STS failures.
    public var requireTLS: Bool?
    /// The IP addresses dialed for each host in earlier attempts, oldest first
    /// (the envelope's `dialed_ips`), for mox's address-family alternation.
    public var dialedIPs: [String: [String]] = [:]
    /// RFC 3461 ORCPT by recipient: what the sender wrote, where an alias rewrote it.
    public var originalRecipients: [String: String] = [:]
    /// RFC 3461 RET and ENVID (xtext) of the envelope, for the next hop.
    public var dsnReturn: DSNReturn?
    public var envelopeID: String?

    public init(id: QueueID, messagePath: String, sender: String, recipients: [String], domain: String) {
        self.id = id
        self.messagePath = messagePath
        self.sender = sender
        self.recipients = recipients
        self.domain = domain
    }
}

/// What one attempt did, per recipient, and where.
public struct AttemptReport: Sendable {
    /// How a recipient came out of the attempt.
    public enum Outcome: Sendable, Equatable {
        case delivered
        /// Try again later (4xx, network, TLS, DNS, timeout).
        case deferred
        /// Do not try again (5xx and other permanent errors).
        case failed
    }

    public struct Result: Sendable {
        public let recipient: String
        public let outcome: Outcome
        public let code: Int?
        public let enhanced: String?
        /// The full reply, or the local error in words.
        public let text: String

        public init(recipient: String, outcome: Outcome, code: Int?, enhanced: String?, text: String) {
            self.recipient = recipient
            self.outcome = outcome
            self.code = code
            self.enhanced = enhanced
            self.text = text
        }
    }

    public var results: [Result]
    /// The server tried last (its name), and its IP address.
    public var host: String?
    public var ip: String?
    /// The TLS outcome in words (`TLSv1.3 ... verified=pkix`, `none`).
    public var tls: String?
    public var duration: Double = 0
    /// The name of the transport that made the attempt, set by the daemon.
    public var transport: String?
    /// The TLS mode the attempt's last SMTP connection used; nil when it made none.
    public var tlsMode: TLSMode?
    /// The TLS policy that applied to the host tried last (DANE, MTA-STS); nil
    /// when no host was tried.
    public var policy: TLSPolicy?
    /// What TLS the last connection ended with; nil when none reached SMTP.
    public var tlsOutcome: TLSOutcome?
    /// Why the last connection's certificate did not verify, as the TLS
    /// layer classified it (enforced or not), for TLSRPT's result types.
    public var verificationFailure: VerificationFailure?
    /// Why the recipient domain's MTA-STS policy could not be fetched, for
    /// the log (a cached policy may have applied instead).
    public var mtaSTSFetchError: String?
    /// Set when a host was refused for REQUIRETLS (RFC 8689 4.2.1): not
    /// reached with verified TLS, or not offering the extension; the
    /// transport turns refusals of every host into a permanent failure.
    var requireTLSRefusal: String?
    /// Each connection the attempt opened, in order, for metrics; empty when
    /// it used an idle one.
    public var connections: [Connection] = []
    /// Which message this was on the SMTP connection that carried it: 1 on a
    /// new connection, more on a reused one (Postfix's `conn_use`); nil when
    /// no SMTP session delivered it.
    public var connectionUse: Int?

    /// How one connection ended, in mox's words for its connection metric.
    public struct Connection: Sendable, Equatable {
        public enum Result: String, Sendable {
            /// SMTP was spoken (whatever the replies said).
            case ok
            case timeout
            /// Aborted by the daemon (shutdown).
            case canceled
            /// Refused, reset, TLS failed, or the server broke the protocol.
            case error
        }

        public var result: Result
        /// What TLS came of it, once SMTP was reached (or TLS failed).
        public var tls: TLSOutcome?
        /// The policy the connection was made under.
        public var policy: TLSPolicy

        public init(result: Result, tls: TLSOutcome?, policy: TLSPolicy = .noPolicy) {
            self.result = result
            self.tls = tls
            self.policy = policy
        }
    }
    /// The addresses dialed in this attempt, per host, in order.
    public var dialed: [String: [String]] = [:]

    public init(results: [Result], host: String? = nil, ip: String? = nil, tls: String? = nil) {
        self.results = results
        self.host = host
        self.ip = ip
        self.tls = tls
    }

    /// Every recipient with the same outcome and text: a connection failure.
    public static func all(_ recipients: [String], _ outcome: Outcome, code: Int? = nil, enhanced: String? = nil,
                           text: String, host: String? = nil, ip: String? = nil) -> AttemptReport {
        AttemptReport(results: recipients.map { Result(recipient: $0, outcome: outcome, code: code, enhanced: enhanced, text: text) },
                      host: host, ip: ip)
    }

    /// Each recipient's outcome from an SMTP client report.
    init(_ report: DeliveryReport) {
        results = report.outcomes.map { outcome in
            switch outcome.result {
            case .success(let reply):
                Result(recipient: outcome.recipient, outcome: .delivered, code: reply.code,
                       enhanced: reply.enhanced?.description, text: reply.text)
            case .failure(let error):
                // The server's own words when it answered (for logs and DSNs); the
                // classified error otherwise (timeouts, TLS, refusals).
                Result(recipient: outcome.recipient, outcome: error.isPermanent ? .failed : .deferred, code: error.code,
                       enhanced: error.enhanced?.description, text: error.reply?.text ?? error.description)
            }
        }
    }
}

/// A way to deliver: direct MX delivery, a relay, a Maildir, a refusal. The
/// daemon's `Router` picks one per job. Called on a delivery thread; blocks.
public protocol Transport: Sendable {
    /// The configuration's name of the transport (`direct`, `smarthost`), for
    /// routes, logs and metrics.
    var name: String { get }
    func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport
}
