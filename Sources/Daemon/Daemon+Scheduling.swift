import Delivery
import Foundation
import Logging
import PosternCore
import Scheduler
import Spool

extension Daemon {
    /// How long a step that failed for a local reason (a full disk, an
    /// unreadable directory) waits before it is tried again.
    static let retryDelay: TimeInterval = 60

    /// Starts the rounds that are due and launches the jobs the limits allow.
    ///
    /// A due message's round starts in memory only; its attempt is registered
    /// on disk when its first job launches (mox registers right before it
    /// delivers), so a crash delays the messages in flight at that moment and
    /// no others, however many were due.
    func schedule(wake: WakePipe) {
        guard !stopping else { return }
        // A bounded batch per turn of the loop, which comes back at once while
        // more are due (the poll timeout is then 0): control requests and
        // finished jobs are not kept waiting behind a start-up with a million due.
        for id in core.takeDue(now: now(), limit: 2048) {
            let domains = core.domains(of: id)
            if domains.isEmpty {
                // Nothing to deliver (a DSN still owed, say): settled here.
                _ = register(id, job: nil)
            } else {
                core.startRound(id, domains: domains, nextAttempt: nil)
            }
        }
        var abandoned: Set<QueueID> = []
        for job in core.launchable() {
            if rounds[job.id] == nil {
                guard !abandoned.contains(job.id), register(job.id, job: job) else {
                    // Another job of a round that did not start: it only gave its slot back.
                    if abandoned.contains(job.id) { core.finished(job) }
                    abandoned.insert(job.id)
                    continue
                }
            }
            launch(job, wake: wake)
        }
        if settings.keepRetired > 0, now().timeIntervalSince(lastRetiredSweep) >= 3600 { sweepRetired() }
    }

    /// Registers the attempt of a round whose first job is about to launch
    /// (mox's crash rule): the next attempt time becomes the modification
    /// time of `envelope.json` (spool-layout.md 6.2), so a crash mid-delivery
    /// leaves the message due one backoff later, never in a retry storm, and
    /// the reader counts the attempt. No fsync and no new inode: a power loss
    /// at worst repeats the attempt uncounted (the durability budget).
    ///
    /// Returns whether `job` may launch. When it may not (the message is gone,
    /// held, damaged, settled, or its destinations changed), the round is
    /// abandoned and the index brought in line. With `job` nil, only the
    /// settling of a message with no destination left is done.
    func register(_ id: QueueID, job: Job?) -> Bool {
        func abandon() {
            if let job {
                core.finished(job)
                core.abandonRound(id)
            }
        }
        guard let area = control.area(of: id) else {
            abandon()
            reconcile(id)   // gone: forgotten
            return false
        }
        let found: Envelope
        let recovered: Bool
        do {
            guard let loaded = try openOwned(id, in: area) else {
                abandon()
                core.reschedule(id, at: now().addingTimeInterval(Self.retryDelay))
                return false
            }
            (found, recovered) = loaded
        } catch {
            // Damaged while it waited (an operator's edit, a disk error): out of
            // the schedule and into quarantine, as the scanner would; a check
            // that could not be made (no descriptor left) is tried again later.
            logger.warning("cannot register an attempt", metadata: ["id": "\(id)", "reason": "\(error.description)"])
            abandon()
            if error.isTransient {
                core.reschedule(id, at: now().addingTimeInterval(Self.retryDelay))
            } else {
                core.remove(id)
                quarantine(id.rawValue, in: layout.directory(area), reason: error.description)
            }
            return false
        }
        var envelope = found
        let domains = envelope.pendingDomains
        guard !domains.isEmpty else {
            // Every recipient final (its DSN still owed, say): finished, held or not.
            abandon()
            finalize(id, envelope: envelope, area: area)
            return false
        }
        guard area == .queue else {
            abandon()
            core.setHeld(id, true)
            return false
        }
        let due = envelope.nextAttempt ?? .distantPast
        guard let job, Set(domains) == Set(core.domains(of: id)), due <= now() else {
            // The index was behind the envelope (edited, or kicked by hand):
            // the round starts again from what the envelope says.
            abandon()
            core.reschedule(id, at: due, domains: domains, recipients: envelope.recipients.count { $0.state == .pending })
            return false
        }
        envelope.attempts += 1
        for index in envelope.recipients.indices where envelope.recipients[index].state == .pending {
            envelope.recipients[index].attempts += 1
        }
        let next = now().addingTimeInterval(settings.backoff.delay(after: envelope.attempts, using: &random))
        do {
            // An attempt cut short by a crash is written down first, or a
            // second crash would leave it uncounted.
            if recovered { try store.update(found, in: .queue, durability: .processCrash) }
            try store.register(found, nextAttempt: next, in: .queue)
        } catch {
            logger.error("cannot register attempt; will retry", metadata: ["id": "\(id)", "error": "\(error)"])
            abandon()
            core.reschedule(id, at: now().addingTimeInterval(Self.retryDelay))
            return false
        }
        envelope.nextAttempt = next
        rounds[id] = envelope
        return true
    }

    func launch(_ job: Job, wake: WakePipe) {
        guard let envelope = rounds[job.id] else {
            core.finished(job)
            return
        }
        let recipients = envelope.recipients.filter { $0.state == .pending && $0.domain == job.domain }.map(\.address)
        var request = DeliveryRequest(id: job.id, messagePath: layout.path(.queue, job.id) + "/" + SpoolLayout.messageFile,
                                      sender: envelope.sender ?? "", recipients: recipients, domain: job.domain)
        request.messageSize = envelope.size
        request.eightBit = envelope.eightBit
        request.smtputf8 = envelope.smtputf8
        request.requireTLS = envelope.requireTLS
        request.dialedIPs = envelope.dialedIPs
        let work = request
        let cancellation = Cancellation()
        inFlight[job] = cancellation
        attemptDeadlines[job] = now().addingTimeInterval(settings.attemptTimeout)
        metrics.setInFlight(inFlight.count)
        let transport = settings.router.transport(sender: envelope.sender ?? "", domain: job.domain,
                                                  attemptsMade: envelope.attempts - 1, override: envelope.transport)
        let completed = self.completed
        let attempt = envelope.attempts
        // Blocking network I/O on a delivery thread, never on Swift's cooperative pool.
        workers?.submit {
            var report: AttemptReport
            switch transport {
            case .success(let transport):
                report = transport.deliver(work, cancellation: cancellation)
                report.transport = transport.name
            case .failure(let unavailable):
                report = .all(recipients, .deferred, text: unavailable.reason)
            }
            completed.append(job, report)
            wake.wake()
        }
        logger.debug("attempt started", metadata: ["id": "\(job.id)", "domain": "\(job.domain)", "attempt": "\(attempt)"])
    }

    /// A job's report comes back: record it, and end the round if it was the last.
    func finish(_ job: Job, _ report: AttemptReport) {
        inFlight[job] = nil
        attemptDeadlines[job] = nil
        var report = report
        if timedOut.remove(job) != nil {
            // Whatever the transport saw (a closed connection), the cause was the deadline.
            let text = "attempt aborted after \(Int(settings.attemptTimeout))s (queue.attempt_timeout)"
            report.results = report.results.map { result in
                result.outcome == .delivered ? result
                    : .init(recipient: result.recipient, outcome: .deferred, code: nil, enhanced: nil, text: text)
            }
        }
        metrics.setInFlight(inFlight.count)
        let roundOver = core.finished(job)
        guard var envelope = rounds[job.id] else { return }
        let time = now()
        let maxAttempts = envelope.maxAttempts ?? settings.maxAttempts
        var verdicts: [(Verdict, Int?)] = []
        defer { record(report, attempt: envelope.attempts, verdicts: verdicts) }
        // Logged once the result is on disk: a line saying "deferred" means the
        // envelope says so too (operators and tests read one after the other).
        var deliveryLines: [Logger.Metadata] = []
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
            verdicts.append((verdict, result.code))
            let status = verdict.rawValue
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
            var metadata: Logger.Metadata = ["id": "\(job.id)", "recipient": "\(result.recipient)", "domain": "\(job.domain)",
                                             "attempt": "\(envelope.attempts)", "status": "\(status)",
                                             "duration": "\(String(format: "%.3f", report.duration))"]
            if let transport = report.transport { metadata["transport"] = "\(transport)" }
            if let host = report.host { metadata["host"] = "\(host)" }
            if let ip = report.ip { metadata["ip"] = "\(ip)" }
            if let tls = report.tls { metadata["tls"] = "\(tls)" }
            if let use = report.connectionUse { metadata["conn_use"] = "\(use)" }
            if let code = result.code { metadata["code"] = "\(code)" }
            if let enhanced = result.enhanced { metadata["enhanced"] = "\(enhanced)" }
            if status != "sent" { metadata["reply"] = "\(result.text)" }
            deliveryLines.append(metadata)
        }
        if let last = report.results.last {
            let summary = DeliveryResult(time: time, code: last.code, enhanced: last.enhanced, text: DeliveryResult.bounded(last.text),
                                         host: report.host, permanent: last.outcome == .failed)
            envelope.lastResult = summary
            var attempt = AttemptRecord(time: time, recipients: report.results.map(\.recipient), host: report.host,
                                        ip: report.ip, tls: report.tls, result: summary)
            attempt.connectionUse = report.connectionUse
            envelope.record(attempt)
        }
        envelope.recordDialed(report.dialed)
        rounds[job.id] = envelope
        let failedNow = report.results.contains { $0.outcome != .delivered } || envelope.recipients.contains { $0.state == .failed }
        // Delivered to everyone, nothing owed, nothing to keep: the message is
        // removed at the end of this round, and writing its last envelope first
        // would cost an inode for nothing. A crash between the two at worst
        // delivers it again, as a crash before the report was read would.
        let settled = roundOver && !failedNow && settings.keepRetired == 0 && envelope.dsnPending.isEmpty
            && !envelope.recipients.contains { $0.state == .pending }
        // Only where to write is needed: the round's envelope is the current one
        // (control actions wait for the round to end), so it is not read again.
        if !settled, let area = control.area(of: job.id) {
            do {
                try store.update(envelope, in: area, durability: failedNow ? .powerLoss : .processCrash)
            } catch {
                logger.error("cannot record the attempt", metadata: ["id": "\(job.id)", "error": "\(error)"])
            }
        }
        for metadata in deliveryLines { logger.info("delivery", metadata: metadata) }
        if roundOver { endRound(job.id) }
    }

    /// Aborts the attempts that ran past `queue.attempt_timeout`: their socket
    /// is shut down, so the delivery thread returns at once and reports.
    func abortOverdueAttempts() {
        let time = now()
        for (job, deadline) in attemptDeadlines where deadline <= time {
            attemptDeadlines[job] = nil
            timedOut.insert(job)
            inFlight[job]?.cancel()
            logger.warning("attempt timed out; aborting", metadata: ["id": "\(job.id)", "domain": "\(job.domain)"])
        }
    }

    /// After the last job of a round: DSNs due, finished messages retired,
    /// control requests that waited for the round applied.
    func endRound(_ id: QueueID) {
        guard var envelope = rounds.removeValue(forKey: id) else { return }
        let marked = !envelope.dsnPending.isEmpty
        // A DSN that cannot be dropped now keeps its mark: it is tried again
        // when the message is next due, or at the next start-up.
        let notified = dsn.sendPending(&envelope)
        let pending = envelope.recipients.filter { $0.state == .pending }
        if DelayWarning.isDue(attempts: envelope.attempts, threshold: settings.delayWarningAttempts, pendingRecipients: pending.count) {
            dsn.delayed(envelope, recipients: pending, schedule: settings.remainingSchedule(for: envelope))
        }
        if let area = control.area(of: id) {
            if pending.isEmpty {
                finalize(id, envelope: envelope, area: area)
            } else {
                if marked && notified {
                    // A power loss may undo this, and the DSN is then sent twice: never lost.
                    do {
                        try store.update(envelope, in: area, durability: .processCrash)
                    } catch {
                        logger.error("cannot clear the DSN mark", metadata: ["id": "\(id)", "error": "\(error)"])
                    }
                }
                core.reschedule(id, at: envelope.nextAttempt ?? now(), domains: envelope.pendingDomains, recipients: pending.count)
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
        var envelope = envelope
        guard dsn.sendPending(&envelope) else {
            // Due again even if held: only its DSN is left to do.
            core.insert(id, nextAttempt: now().addingTimeInterval(Self.retryDelay), domains: [], held: false, recipients: 0)
            return
        }
        if envelope.sender == nil, envelope.recipients.contains(where: { $0.state == .failed }),
           envelope.notifyNever || !dsn.reportsDoubleBounces {
            keepDoubleBounce(id, envelope: envelope, area: area)
            return
        }
        core.remove(id)
        do {
            if settings.keepRetired > 0 {
                try store.retire(id, from: area)
            } else {
                try store.remove(id, from: area)
            }
            logger.info("removed", metadata: ["id": "\(id)", "delivered": "\(envelope.recipients.filter { $0.state == .delivered }.count)",
                                              "failed": "\(envelope.recipients.filter { $0.state == .failed }.count)"])
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
            if area == .queue { try store.move(id, from: .queue, to: .hold) }
            try store.update(held, in: .hold, durability: .powerLoss)
            core.insert(id, nextAttempt: nil, domains: [], held: true, recipients: 0)
            logger.warning("double bounce kept in hold/", metadata: ["id": "\(id)",
                                                                   "recipients": "\(envelope.recipients.map(\.address).joined(separator: ","))"])
        } catch {
            logger.error("cannot keep a double bounce; it stays where it is", metadata: ["id": "\(id)", "error": "\(error)"])
            core.insert(id, nextAttempt: now().addingTimeInterval(Self.retryDelay), domains: [], held: false, recipients: 0)
        }
    }
}
