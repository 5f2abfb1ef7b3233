import Foundation
import PosternCore
import SMTP
import TLS

/// Everything through one smarthost (`relay = "HOST:PORT"`), nullmailer style.
///
/// Tries the relay's addresses in order until one answers. With opportunistic
/// TLS, a TLS failure is followed by one plaintext attempt on the same address,
/// as mox does: a broken STARTTLS must not stop mail that would go in plaintext
/// anyway (RFC 7435's opportunistic security).
///
/// The same transport serves the `relay`, `submission` (587, STARTTLS
/// required, AUTH) and `submissions` (465, implicit TLS, AUTH) kinds of the
/// configuration: they differ only in port, TLS mode and credentials, which
/// `options` carries.
public struct RelayTransport: Transport {
    public let name: String
    public let host: String
    public let port: UInt16
    public let options: SMTPClientOptions
    public let dialer: any Dialer
    public let limits: ConnectLimits
    /// Idle sessions kept for the next message; nil: none.
    public let sessions: SessionCache?

    public init(name: String = "relay", host: String, port: UInt16, options: SMTPClientOptions, dialer: any Dialer = TCPDialer(),
                limits: ConnectLimits = ConnectLimits(), sessions: SessionCache? = nil) {
        self.sessions = sessions
        self.name = name
        self.host = host
        self.port = port
        self.options = options
        self.dialer = dialer
        self.limits = limits
    }

    public func deliver(_ request: DeliveryRequest, cancellation: Cancellation) -> AttemptReport {
        SMTPSession.timed(request) { source in attempt(request, source: source, cancellation: cancellation) }
    }

    private func attempt(_ request: DeliveryRequest, source: FileMessageSource, cancellation: Cancellation) -> AttemptReport {
        let plan = TLSPlan.configured(options)
        // RFC 8689 4.2.1: a relay qualifies only with TLS required and verified.
        if request.requireTLS == true, !plan.isVerifiedAndRequired {
            return .all(request.recipients, .failed, code: 554, enhanced: "5.7.30",
                        text: "REQUIRETLS support required: relay \(host) is not configured with required, verified TLS", host: host)
        }
        let ips: [String]
        do {
            ips = try dialer.addresses(of: host)
        } catch {
            return .all(request.recipients, .deferred, text: "cannot resolve relay \(host): \(error)", host: host)
        }
        var report = SMTPSession.tryAddresses(request, host: host, ips: ips, port: port, options: options, plan: plan, dialer: dialer,
                                              connectTimeout: limits.perAddress, budget: .after(limits.perAttempt),
                                              source: source, cancellation: cancellation, sessions: sessions, transport: name)
        if let refusal = report.requireTLSRefusal, request.requireTLS == true {
            report.results = DirectTransport.requireTLSFailure(report.results.filter { $0.outcome == .deferred }.map(\.recipient),
                                                               reasons: [refusal], domain: request.domain).results
                + report.results.filter { $0.outcome != .deferred }
        }
        return report
    }
}
