import Delivery
import Foundation
import Logging
import PosternCore
import Scheduler
import Spool

/// The daemon as the round logic's shell: each effect carried out on the
/// spool, the DSN hook, the delivery threads and the control mailbox.
extension Daemon: RoundEffects {
    func area(of id: QueueID) -> SpoolLayout.Area? {
        control.area(of: id)
    }

    func locate(_ id: QueueID) -> (SpoolLayout.Area, Envelope)? {
        control.locate(id)
    }

    func open(_ id: QueueID, in area: SpoolLayout.Area) -> LoadedEnvelope {
        do {
            guard let loaded = try openOwned(id, in: area) else { return .unavailable }
            return .envelope(loaded.envelope, recovered: loaded.recovered)
        } catch {
            return error.isTransient ? .transient(error.description, code: error.code) : .damaged(error.description)
        }
    }

    func load(_ id: QueueID) {
        // Written by the listener in this process a moment ago (QueueInbox): not read back.
        if let envelope = inbox?.envelope(for: id) {
            completed.append(.loaded(id, .queue, .envelope(envelope, recovered: false)))
            wakePipe?.wake()
            return
        }
        let layout = self.layout
        let trusted = trustedOwners
        let completed = self.completed
        let wake = wakePipe
        let logger = self.logger
        workers?.submit {
            let area = QueueControl.area(of: id, in: layout)
            var result = LoadedEnvelope.damaged("vanished while being read")
            if let area {
                do throws(MessageDirectory.Problem) {
                    let opened = try MessageDirectory(path: layout.path(area, id)).open(id: id, trustedOwners: trusted)
                    if let damage = opened.damage {
                        logger.warning("envelope.json is damaged; the envelope it replaced holds (envelope.json.tmp) until the next update",
                                       metadata: ["id": "\(id)", "reason": "\(damage)"])
                    }
                    // Adoption writes: it is the event loop's to do.
                    result = trusted.contains(opened.owner) ? .envelope(opened.envelope, recovered: opened.recovered) : .adoptionNeeded
                } catch {
                    result = error.isTransient ? .transient(error.description, code: error.code) : .damaged(error.description)
                }
            }
            completed.append(.loaded(id, area, result))
            wake?.wake()
        }
    }

    func register(_ found: Envelope, recovered: Bool, nextAttempt: Date) throws {
        // An attempt cut short by a crash is written down first, or a second
        // crash would leave it uncounted.
        if recovered { try store.update(found, in: .queue, durability: .processCrash) }
        try store.register(found, nextAttempt: nextAttempt, in: .queue)
    }

    func persist(_ envelope: Envelope, in area: SpoolLayout.Area, durability: MessageStore.Durability) throws {
        try store.update(envelope, in: area, durability: durability)
    }

    func remove(_ id: QueueID, from area: SpoolLayout.Area, retire: Bool) throws {
        if retire {
            try store.retire(id, from: area)
        } else if let janitor, let out = try? store.discard(id, from: area) {
            // Freeing the message's blocks costs the kernel more than anything
            // else the loop does for a delivery: out of queue/ by one rename
            // (spool-layout.md 6.4), removed on the janitor's thread.
            // Kept as a blank for the listener's next message when it may be
            // (`BlankPool`): no inode freed now and allocated again in a moment.
            let logger = self.logger
            // Only out of queue/: its group fsync makes the removal durable before reuse (BlankPool).
            let blanks = area == .queue ? inbox?.blanks ?? nil : nil
            janitor.submit {
                if blanks?.keep(out) == true { return }
                do {
                    try SystemFileSystem().removeTree(out)
                } catch {
                    logger.error("cannot remove a finished message; it is removed once old", metadata: ["path": "\(out)", "error": "\(error)"])
                }
            }
        } else {
            try store.remove(id, from: area)
        }
    }

    func keepHeld(_ envelope: Envelope, from area: SpoolLayout.Area) throws {
        if area == .queue { try store.move(envelope.id, from: .queue, to: .hold) }
        try store.update(envelope, in: .hold, durability: .powerLoss)
    }

    func quarantine(_ id: QueueID, in area: SpoolLayout.Area, reason: String) {
        quarantine(id.rawValue, in: layout.directory(area), reason: reason)
    }

    func sendPending(_ envelope: inout Envelope) -> Bool {
        dsn.sendPending(&envelope)
    }

    func delayed(_ envelope: Envelope, recipients: [Recipient], schedule: [Date]) {
        dsn.delayed(envelope, recipients: recipients, schedule: schedule)
    }

    var reportsDoubleBounces: Bool { dsn.reportsDoubleBounces }

    /// Builds the job's request from its round's envelope and runs it on a
    /// delivery thread, never on Swift's cooperative pool; the report comes
    /// back through the completion queue and the wake-up pipe.
    func launch(_ job: Job, envelope: Envelope) {
        let pending = envelope.recipients.filter { $0.state == .pending && $0.domain == job.domain }
        let recipients = pending.map(\.address)
        var request = DeliveryRequest(id: job.id, messagePath: layout.path(.queue, job.id) + "/" + SpoolLayout.messageFile,
                                      sender: envelope.sender ?? "", recipients: recipients, domain: job.domain)
        request.messageSize = envelope.size
        request.eightBit = envelope.eightBit
        request.smtputf8 = envelope.smtputf8
        request.requireTLS = envelope.requireTLS
        request.dialedIPs = envelope.dialedIPs
        request.dsnReturn = envelope.dsnReturn
        request.envelopeID = envelope.envelopeID
        request.originalRecipients = Dictionary(pending.compactMap { recipient in recipient.original.map { (recipient.address, $0) } },
                                                uniquingKeysWith: { first, _ in first })
        let work = request
        let cancellation = Cancellation()
        cancellations[job] = cancellation
        let transport = settings.router.transport(sender: envelope.sender ?? "", domain: job.domain,
                                                  attemptsMade: envelope.attempts - 1, override: envelope.transport)
        let completed = self.completed
        let wake = wakePipe
        workers?.submit {
            var report: AttemptReport
            switch transport {
            case .success(let transport):
                report = transport.deliver(work, cancellation: cancellation)
                report.transport = transport.name
            case .failure(let unavailable):
                report = .all(recipients, .deferred, text: unavailable.reason)
            }
            completed.append(.report(job, report))
            wake?.wake()
        }
        logger.debug("attempt started", metadata: ["id": "\(job.id)", "domain": "\(job.domain)", "attempt": "\(envelope.attempts)"])
    }

    func cancel(_ job: Job) {
        cancellations[job]?.cancel()
    }

    /// Applies an action in batches, reading the spool's events between them:
    /// ten thousand renames make twice as many inotify events, and the kernel
    /// keeps 16384 by default before it drops them all and the daemon must
    /// rescan the spool.
    func apply(_ action: ControlAction, to ids: [QueueID]) -> [QueueID: ControlOutcome] {
        var outcomes: [QueueID: ControlOutcome] = [:]
        inbox?.forget(ids)
        applyingControl = true
        defer { applyingControl = false }
        for start in stride(from: 0, to: ids.count, by: 2048) {
            outcomes.merge(control.apply(action, to: Array(ids[start..<min(start + 2048, ids.count)]))) { $1 }
            if let watcher, ids.count > 2048 { handle(watcher.read()) }
        }
        return outcomes
    }

    func respond(to request: ControlRequest, with outcomes: [QueueID: ControlOutcome]) {
        do {
            try mailbox.respond(to: request, with: ControlResponse(outcomes: outcomes))
        } catch {
            logger.error("cannot answer a control request", metadata: ["request": "\(request.id)", "error": "\(error)"])
        }
    }

    /// Reads the requests waiting in `control/` and hands them to the machine.
    func processControlRequests() {
        let (requests, invalid) = mailbox.pending()
        for name in invalid { logger.warning("unreadable control request removed", metadata: ["entry": "\(name)"]) }
        machine.process(requests)
    }
}
