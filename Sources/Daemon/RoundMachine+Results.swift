import Delivery
import Foundation
import Logging
import Monitoring
import PosternCore
import Scheduler
import Spool

extension RoundMachine {
    /// A job's report comes back: each recipient's verdict, the envelope
    /// written with the durability the budget asks (spool-layout.md 6.5), the
    /// delivery logged, and the round ended if it was the last job.
    func finish(_ job: Job, _ report: AttemptReport) {
        let (late, roundOver) = jobEnded(job)
        var report = report
        if late {
            // Whatever the transport saw (a closed connection), the cause was the deadline.
            let text = "attempt aborted after \(Int(settings.attemptTimeout))s (queue.attempt_timeout)"
            report.results = report.results.map { result in
                result.outcome == .delivered ? result
                    : .init(recipient: result.recipient, outcome: .deferred, code: nil, enhanced: nil, text: text)
            }
        }
        guard var envelope = rounds[job.id] else { return }
        let (verdicts, deliveryLines) = Self.apply(report, to: &envelope, domain: job.domain, at: now,
                                                   maxAttempts: envelope.maxAttempts ?? settings.maxAttempts)
        record(report, attempt: envelope.attempts, verdicts: verdicts)
        updateRound(job.id, envelope)
        let failedNow = report.results.contains { $0.outcome != .delivered } || envelope.recipients.contains { $0.state == .failed }
        // Delivered to everyone, nothing owed, nothing to keep: the message is
        // removed at the end of this round, and writing its last envelope first
        // would cost an inode for nothing. A crash between the two at worst
        // delivers it again, as a crash before the report was read would.
        let settled = roundOver && !failedNow && settings.keepRetired == 0 && envelope.dsnPending.isEmpty
            && !envelope.recipients.contains { $0.state == .pending }
        // Only where to write is needed: the round's envelope is the current one
        // (control actions wait for the round to end), so it is not read again.
        if !settled, let effects, let area = effects.area(of: job.id) {
            do {
                // A permanent failure is fsynced, since its DSN depends on it; a
                // deferral or a delivery lost to a power loss repeats an attempt.
                let permanent = verdicts.contains { $0.verdict == .bounced || $0.verdict == .expired }
                try effects.persist(envelope, in: area, durability: permanent ? .powerLoss : .processCrash)
            } catch {
                writeFailed(job.id, error, "cannot record the attempt", while: "recording an attempt")
            }
        }
        // Logged once the result is on disk: a line saying "deferred" means the
        // envelope says so too (operators and tests read one after the other).
        for metadata in deliveryLines { logger.info("delivery", metadata: metadata) }
        if roundOver { endRound(job.id) }
    }

    /// Gives up on a message whose last allowed attempt was cut short by a
    /// crash (its registration mark counted it, spool-layout.md 6.2): every
    /// pending recipient expires with that reason, no further attempt, and the
    /// failure DSN is owed, written with fsync as any failure is (6.5). A
    /// SIGTERM during the last attempt ends the same way (an aborted attempt
    /// is a temporary failure); without this, each crash during the last
    /// attempt bought one more, and a message that crashes the daemon never ran out.
    func expireInterrupted(_ id: QueueID, _ envelope: inout Envelope, in area: SpoolLayout.Area) {
        let text = "gave up after \(envelope.attempts) attempts: the last one was interrupted (the daemon stopped during it), its outcome unknown"
        for index in envelope.recipients.indices where envelope.recipients[index].state == .pending {
            let recipient = envelope.recipients[index]
            envelope.recipients[index].state = .failed
            envelope.recipients[index].lastResult = DeliveryResult(time: now, text: text, permanent: true)
            envelope.dsnPending.append(recipient.address)
            metrics.delivery(result: .expired, statusClass: PosternMetrics.StatusClass(replyCode: nil))
            logger.info("delivery", metadata: ["id": "\(id)", "recipient": "\(recipient.address)", "domain": "\(recipient.domain)",
                                               "attempt": "\(envelope.attempts)", "status": "expired", "reason": "\(text)"])
        }
        envelope.lastResult = DeliveryResult(time: now, text: text, permanent: true)
        do {
            try effects?.persist(envelope, in: area, durability: .powerLoss)
        } catch {
            logger.error("cannot record the attempt", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// One recipient's verdict, with its reply code for the metrics.
    struct RecipientVerdict {
        var verdict: Verdict
        var code: Int?
    }

    /// What a report means for the envelope of its round, without I/O: each
    /// reported recipient's state, result and DSN mark; the attempt in the
    /// history; the addresses dialed. Returns the verdicts and a log line's
    /// metadata per recipient.
    static func apply(_ report: AttemptReport, to envelope: inout Envelope, domain: String, at time: Date,
                      maxAttempts: Int) -> ([RecipientVerdict], [Logger.Metadata]) {
        var verdicts: [RecipientVerdict] = []
        var lines: [Logger.Metadata] = []
        // One lookup per result, not a scan of the recipients each (a message
        // may have thousands: this runs on the event loop).
        var pendingIndex: [String: Int] = [:]
        for (index, recipient) in envelope.recipients.enumerated() where recipient.state == .pending {
            pendingIndex[recipient.address] = pendingIndex[recipient.address] ?? index
        }
        for result in report.results {
            guard let index = pendingIndex.removeValue(forKey: result.recipient) else { continue }
            let outcome: RetryPolicy.Outcome = switch result.outcome {
            case .delivered: .delivered
            case .deferred: .temporary
            case .failed: .permanent
            }
            let verdict = RetryPolicy.verdict(outcome, attempts: envelope.attempts, maxAttempts: maxAttempts)
            verdicts.append(RecipientVerdict(verdict: verdict, code: result.code))
            let text = DeliveryResult.bounded(result.text)
            envelope.recipients[index].lastResult = DeliveryResult(time: time, code: result.code, enhanced: result.enhanced,
                                                                   text: verdict == .expired ? "\(text) (gave up after \(envelope.attempts) attempts)" : text,
                                                                   host: report.host, permanent: verdict == .bounced || verdict == .expired)
            switch verdict {
            case .sent: envelope.recipients[index].state = .delivered
            case .bounced, .expired:
                envelope.recipients[index].state = .failed
                // In the same update that records the failure: the DSN is owed
                // until its drop commits (spool-layout.md 6.5).
                envelope.dsnPending.append(result.recipient)
            case .deferred: break
            }
            lines.append(deliveryLine(report, result, id: envelope.id, domain: domain, attempt: envelope.attempts, status: verdict.rawValue))
        }
        if let last = report.results.last {
            let summary = DeliveryResult(time: time, code: last.code, enhanced: last.enhanced, text: DeliveryResult.bounded(last.text),
                                         host: report.host, permanent: last.outcome == .failed)
            envelope.lastResult = summary
            var attempt = AttemptRecord(time: time, recipients: report.results.map(\.recipient), host: report.host,
                                        ip: report.ip, tls: report.tls, result: summary)
            attempt.connectionUse = report.connectionUse
            attempt.policy = report.policy
            envelope.record(attempt)
        }
        envelope.recordDialed(report.dialed)
        return (verdicts, lines)
    }

    /// The `delivery` log line of one recipient: one per recipient and attempt.
    static func deliveryLine(_ report: AttemptReport, _ result: AttemptReport.Result, id: QueueID, domain: String,
                             attempt: Int, status: String) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["id": "\(id)", "recipient": "\(result.recipient)", "domain": "\(domain)",
                                         "attempt": "\(attempt)", "status": "\(status)",
                                         "duration": "\(Milliseconds.seconds(report.duration))"]
        if let transport = report.transport { metadata["transport"] = "\(transport)" }
        if let host = report.host { metadata["host"] = "\(host)" }
        if let ip = report.ip { metadata["ip"] = "\(ip)" }
        if let tls = report.tls { metadata["tls"] = "\(tls)" }
        if let policy = report.policy { metadata["tls_policy"] = "\(policy.rawValue)" }
        if let outcome = report.tlsOutcome { metadata["tls_outcome"] = "\(outcome.rawValue)" }
        if let error = report.mtaSTSFetchError { metadata["mta_sts_error"] = "\(error)" }
        if let use = report.connectionUse { metadata["conn_use"] = "\(use)" }
        if let code = result.code { metadata["code"] = "\(code)" }
        if let enhanced = result.enhanced { metadata["enhanced"] = "\(enhanced)" }
        if status != "sent" { metadata["reply"] = "\(result.text)" }
        return metadata
    }

    /// After the last job of a round: DSNs due, finished messages retired,
    /// control requests that waited for the round applied.
    func endRound(_ id: QueueID) {
        guard var envelope = takeRound(id), let effects else { return }
        let marked = !envelope.dsnPending.isEmpty
        // A DSN that cannot be dropped now keeps its mark: it is tried again
        // when the message is next due, or at the next start-up.
        let notified = effects.sendPending(&envelope)
        let pending = envelope.recipients.filter { $0.state == .pending }
        if DelayWarning.isDue(attempts: envelope.attempts, threshold: settings.delayWarningAttempts, pendingRecipients: pending.count) {
            effects.delayed(envelope, recipients: pending, schedule: settings.remainingSchedule(for: envelope))
        }
        if let area = effects.area(of: id) {
            if pending.isEmpty {
                finalize(id, envelope: envelope, area: area)
            } else {
                if marked && notified {
                    // A power loss may undo this, and the DSN is then sent twice: never lost.
                    do {
                        try effects.persist(envelope, in: area, durability: .processCrash)
                    } catch {
                        writeFailed(id, error, "cannot clear the DSN mark", while: "clearing a DSN mark")
                    }
                }
                // Back in the heap at the registered time when its last job
                // ended (SchedulerCore.finished); only what it holds changes.
                core.refresh(id, recipients: pending.count)
                if area == .hold { core.setHeld(id, true) }
            }
        } else {
            core.remove(id)
        }
        applyDeferredControl(id)
    }

    /// A message whose recipients are all final leaves the queue: removed, or
    /// its envelope kept in `retired/` for `queue.keep_retired`.
    ///
    /// A failure DSN still owed is sent first; when it cannot be dropped (a
    /// full disk), the message stays, due again in `retryDelay`.
    func finalize(_ id: QueueID, envelope: Envelope, area: SpoolLayout.Area) {
        guard let effects else { return }
        resumed.remove(id)
        var envelope = envelope
        guard effects.sendPending(&envelope) else {
            // Due again even if held: only its DSN is left to do. Sooner if
            // the spool was full and has room again.
            core.insert(id, nextAttempt: now.addingTimeInterval(Self.retryDelay), held: false, recipients: 0)
            if trouble?.isActive == true { waitingForSpool.insert(id) }
            return
        }
        if envelope.sender == nil, envelope.recipients.contains(where: { $0.state == .failed }),
           envelope.notifyNever || !effects.reportsDoubleBounces {
            keepDoubleBounce(id, envelope: envelope, area: area)
            return
        }
        core.remove(id)
        do {
            try effects.remove(id, from: area, retire: settings.keepRetired > 0)
            logger.info("removed", metadata: ["id": "\(id)", "delivered": "\(envelope.recipients.count { $0.state == .delivered })",
                                              "failed": "\(envelope.recipients.count { $0.state == .failed })"])
        } catch {
            logger.error("cannot remove a finished message", metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// A bounce (null sender) that could not be delivered, with no one left to
    /// tell: no `dsn.postmaster`, or it was itself the postmaster's copy. It is
    /// the only copy of what went wrong, so it is kept in `hold/` with a reason
    /// for the postmaster (`postern list`, `postern cat`, then `postern
    /// delete`), as Postfix keeps its double bounces, never discarded.
    func keepDoubleBounce(_ id: QueueID, envelope: Envelope, area: SpoolLayout.Area) {
        var held = envelope
        held.holdReason = "undeliverable bounce kept for the postmaster (no one to notify): read it with postern cat, then delete it"
        do {
            try effects?.keepHeld(held, from: area)
            core.insert(id, nextAttempt: nil, held: true, recipients: 0)
            metrics.doubleBounce()
            logger.warning("double bounce kept in hold/", metadata: ["id": "\(id)",
                                                                   "recipients": "\(envelope.recipients.map(\.address).joined(separator: ","))"])
        } catch {
            writeFailed(id, error, "cannot keep a double bounce; it stays where it is", while: "keeping a double bounce")
            core.insert(id, nextAttempt: now.addingTimeInterval(Self.retryDelay), held: false, recipients: 0)
        }
    }

    /// Counts one finished job: each connection and its TLS, the attempt's
    /// duration (mox's histogram), and each recipient's outcome.
    func record(_ report: AttemptReport, attempt: Int, verdicts: [RecipientVerdict]) {
        for connection in report.connections {
            metrics.connection(Self.connectionResult(connection.result))
            if let tls = connection.tls { metrics.tls(tls, policy: connection.policy) }
        }
        metrics.deliveryDuration(seconds: report.duration, attempt: attempt, transport: report.transport ?? "none",
                                 tlsMode: report.tlsMode ?? .plaintext, result: Self.attemptResult(report))
        for verdict in verdicts {
            guard let result = PosternMetrics.RecipientResult(rawValue: verdict.verdict.rawValue) else { continue }
            metrics.delivery(result: result, statusClass: PosternMetrics.StatusClass(replyCode: verdict.code))
        }
    }

    /// A connection's end as its metric labels it: an exhaustive mapping, so
    /// that a new case cannot fall silently into another.
    static func connectionResult(_ result: AttemptReport.Connection.Result) -> PosternMetrics.ConnectionResult {
        switch result {
        case .ok: .ok
        case .timeout: .timeout
        case .canceled: .canceled
        case .error: .error
        }
    }

    /// The attempt as mox's delivery histogram labels it: all delivered, some,
    /// a permanent refusal, or why nothing could be delivered.
    static func attemptResult(_ report: AttemptReport) -> PosternMetrics.AttemptResult {
        let outcomes = report.results.map(\.outcome)
        if !outcomes.isEmpty, outcomes.allSatisfy({ $0 == .delivered }) { return .ok }
        if outcomes.contains(.delivered) { return .okPartial }
        if outcomes.contains(.failed) { return .permError }
        switch report.connections.last?.result {
        case .timeout?: return .timeout
        case .canceled?: return .canceled
        case .error?: return .error
        default: return .tempError
        }
    }
}
