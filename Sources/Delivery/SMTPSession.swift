import Foundation
import PosternCore
import SMTP
import TLS

/// The SMTP part of an attempt: connect (or take an idle session from the
/// cache), open, deliver, keep or quit. Shared by the transports, which
/// decide which hosts and addresses to try.
enum SMTPSession {
    /// Opens the message and runs `body` with it, recording how long the attempt took.
    static func timed(_ request: DeliveryRequest, _ body: (FileMessageSource) -> AttemptReport) -> AttemptReport {
        let started = Deadline.now
        var report: AttemptReport
        do {
            report = body(try FileMessageSource(path: request.messagePath, expectedSize: request.messageSize))
        } catch {
            report = .all(request.recipients, .deferred, text: "cannot read the message: \(error)")
        }
        report.duration = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        return report
    }

    /// Tries `ips` of one host in order until one answers; with opportunistic
    /// TLS, a TLS failure is followed by one plaintext attempt on the same
    /// address, as mox does (RFC 7435: mail that would go in plaintext anyway
    /// must not be stopped by a broken STARTTLS).
    ///
    /// `budget` ends the connecting of the whole attempt (`ConnectLimits`):
    /// once it has passed, no further address is dialed.
    ///
    /// `plan` says how TLS is used on this host (`TLSPlan`): the plaintext
    /// retry happens only where it says opportunistic.
    static func tryAddresses(_ request: DeliveryRequest, host: String, ips: [String], port: UInt16, options: SMTPClientOptions,
                             plan: TLSPlan, dialer: any Dialer, connectTimeout: Double, budget: Deadline, source: FileMessageSource,
                             cancellation: Cancellation, sessions: SessionCache?, transport: String) -> AttemptReport {
        var last = AttemptReport.all(request.recipients, .deferred, text: "\(host) has no addresses", host: host)
        var dialed: [String] = []
        var connections: [AttemptReport.Connection] = []
        for ip in ips {
            guard !cancellation.isCancelled else { break }
            guard !budget.hasPassed else {
                if !dialed.isEmpty || last.ip == nil {
                    last = .all(request.recipients, .deferred, text: "the time for connecting in this attempt is spent; \(host) waits for the next attempt", host: host)
                }
                break
            }
            dialed.append(ip)
            var plans = [plan]
            if plan.mode == .opportunistic { plans.append(plan.plaintext) }
            for plan in plans {
                let deadline = min(Deadline.after(connectTimeout), budget)
                let (report, retryPlain) = run(request, host: host, ip: ip, port: port, options: plan.apply(to: options, host: host),
                                               plan: plan, dialer: dialer,
                                               deadline: deadline, source: source, cancellation: cancellation,
                                               sessions: sessions, transport: transport)
                connections += report.connections
                last = report
                if !retryPlain { break }
            }
            // Another address helps only when this one could not be talked to.
            if last.tls != nil || last.results.contains(where: { $0.outcome != .deferred || $0.code != nil }) { break }
        }
        // Not in a `defer`: that would change `last` after `return` copied it.
        last.dialed[host] = dialed
        last.connections = connections
        return last
    }

    /// One connection: an idle one to the same server when the cache has
    /// one, else a new one. Returns the report, and whether a plaintext retry
    /// makes sense (TLS failed).
    static func run(_ request: DeliveryRequest, host: String, ip: String, port: UInt16, options: SMTPClientOptions,
                    plan: TLSPlan, dialer: any Dialer, deadline: Deadline, source: FileMessageSource,
                    cancellation: Cancellation, sessions: SessionCache?, transport: String) -> (AttemptReport, Bool) {
        let key = SessionCache.Key(transport: transport, host: host, ip: ip, port: port, tlsMode: plan.mode,
                                   verification: plan.enforce ? plan.verification.mode : .unverified)
        while let sessions, let session = sessions.take(key), !cancellation.isCancelled {
            if let report = reuse(session, key: key, request, host: host, ip: ip, plan: plan, source: source,
                                  cancellation: cancellation, sessions: sessions) {
                return (report, false)
            }
        }
        let stream: ByteStream
        do {
            stream = try dialer.connect(ip: ip, port: port, deadline: deadline)
        } catch {
            var report = AttemptReport.all(request.recipients, .deferred, text: "cannot connect to \(host) [\(ip)]:\(port): \(error)", host: host, ip: ip)
            report.policy = plan.policy
            report.connections = [.init(result: error == .timeout ? .timeout : cancellation.isCancelled ? .canceled : .error, tls: nil,
                                        policy: plan.policy)]
            return (report, false)
        }
        cancellation.register(stream.fileDescriptor)
        defer { cancellation.register(-1) }
        let client = SMTPClient(stream: stream, options: options)
        let facts: SessionFacts
        do {
            facts = try client.open()
        } catch {
            var report = AttemptReport.all(request.recipients, error.isPermanent ? .failed : .deferred,
                                           code: error.code, enhanced: error.enhanced?.description,
                                           text: error.description, host: host, ip: ip)
            let tlsFailed: Bool = if case .tls = error.kind { true } else { false }
            if tlsFailed {
                report.tls = "failed"
                report.tlsOutcome = .failed
                if case .tls(.verification(let failure)) = error.kind { report.verificationFailure = failure }
            } else if error.kind == .refused(.startTLSUnavailable) {
                // SMTP was reached and STARTTLS was not offered: the STRIPTLS case DANE and MTA-STS defeat.
                report.tls = "none"
                report.tlsOutcome = .plaintext
            }
            report.tlsMode = plan.mode
            report.policy = plan.policy
            report.connections = [.init(result: Self.connectionResult(error, cancellation), tls: tlsFailed ? .failed : nil,
                                        policy: plan.policy)]
            return (report, tlsFailed && plan.mode == .opportunistic)
        }
        let delivery = transact(client, request, source: source)
        let usable = delivery.connectionUsable
        var report = AttemptReport(delivery)
        if let sessions {
            let session = sessions.adopt(client, facts: facts)
            report.connectionUse = session.uses
            sessions.release(session, for: key, usable: usable && !cancellation.isCancelled)
        } else {
            report.connectionUse = 1
            client.quit()
        }
        report.describe(host: host, ip: ip, facts: facts, plan: plan, delivery: delivery)
        report.connections = [.init(result: .ok, tls: report.tlsOutcome, policy: plan.policy)]
        return (report, false)
    }

    /// The next message on an idle session: RSET first, which also proves the
    /// server is still there. Returns nil when the session turned out unusable
    /// before anything was decided (RSET or MAIL refused, the connection
    /// closed): the caller goes on with a fresh connection within the same
    /// attempt, so a server that ends reuse costs no attempt.
    static func reuse(_ session: SessionCache.Session, key: SessionCache.Key, _ request: DeliveryRequest, host: String, ip: String,
                      plan: TLSPlan, source: FileMessageSource, cancellation: Cancellation, sessions: SessionCache) -> AttemptReport? {
        cancellation.register(session.client.stream.fileDescriptor)
        defer { cancellation.register(-1) }
        do {
            try session.client.reset()
        } catch {
            sessions.close(session)
            return nil
        }
        let delivery = transact(session.client, request, source: source)
        let usable = delivery.connectionUsable
        let undecided = !delivery.outcomes.isEmpty && delivery.outcomes.allSatisfy { outcome in
            if case .failure(let error) = outcome.result { error.command == "MAIL FROM" } else { false }
        }
        if undecided && !cancellation.isCancelled {
            sessions.close(session)
            return nil
        }
        var report = AttemptReport(delivery)
        report.connectionUse = session.uses
        sessions.release(session, for: key, usable: usable && !cancellation.isCancelled)
        report.describe(host: host, ip: ip, facts: session.facts, plan: plan, delivery: delivery)
        return report
    }

    /// One message's transactions on an open session (its report says
    /// whether the session can carry another).
    static func transact(_ client: SMTPClient, _ request: DeliveryRequest, source: FileMessageSource) -> DeliveryReport {
        var transaction = Transaction(sender: request.sender, recipients: request.recipients, message: source)
        transaction.eightBit = request.eightBit
        transaction.smtputf8 = request.smtputf8
        transaction.requireTLS = request.requireTLS == true
        transaction.originalRecipients = request.originalRecipients
        transaction.dsnReturn = request.dsnReturn
        transaction.envelopeID = request.envelopeID
        return client.deliver(transaction)
    }

    static func tlsOutcome(_ facts: SessionFacts) -> TLSOutcome {
        guard let info = facts.tls else { return .plaintext }
        guard info.verified else { return .opportunistic }
        switch info.verificationMode {
        case .dane: return .dane
        case .pkix: return .pkix
        case .unverified: return .opportunistic
        }
    }

    /// An opening that failed: a timeout, an abort, or any other error. A
    /// server that answered with a reply (a 554 greeting) was spoken to.
    static func connectionResult(_ error: SMTPError, _ cancellation: Cancellation) -> AttemptReport.Connection.Result {
        if cancellation.isCancelled { return .canceled }
        switch error.kind {
        case .timeout, .network(.timeout): return .timeout
        case .reply: return .ok
        default: return .error
        }
    }
}

extension AttemptReport {
    /// Where and how an SMTP session delivered: host, address, TLS and
    /// policy, and whether the server turned REQUIRETLS down.
    mutating func describe(host: String, ip: String, facts: SessionFacts, plan: TLSPlan, delivery: DeliveryReport) {
        self.host = host
        self.ip = ip
        tls = facts.tls?.summary ?? "none"
        tlsMode = plan.mode
        policy = plan.policy
        tlsOutcome = SMTPSession.tlsOutcome(facts)
        verificationFailure = facts.tls?.verificationFailure
        let refused = delivery.outcomes.contains { outcome in
            if case .failure(let error) = outcome.result { error.kind == .refused(.requireTLSUnsupported) } else { false }
        }
        // RFC 8689 4.2.1: a host without REQUIRETLS over TLS is no host for this message.
        if refused { requireTLSRefusal = "\(host) does not offer REQUIRETLS over verified TLS" }
    }
}
