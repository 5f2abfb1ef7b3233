import Foundation
import Glibc
import Logging
import PosternCore
import Scheduler
import Spool

extension Daemon {
    /// Rebuilds the index from the spool after an inotify overflow: the
    /// scanner repairs what it must, then every drop is accepted. The loop
    /// waits for it (events were lost; nothing is certain until it is done).
    func rebuild(reason: String) {
        let started = Date()
        var seen = Set<QueueID>()
        let scan = Self.indexScanner(layout, clock).index(horizon: horizon) { item in
            seen.insert(item.id)
            index(item, keepKnown: false)
        }
        // After an overflow, forget what left queue/ and hold/ while events were lost.
        for id in core.ids where !seen.contains(id) && !core.inRound(id) { core.remove(id) }
        finishScan(scan.report, drops: scan.drops, dropped: scan.drops.count, reason: reason, started: started)
    }

    /// The start-up scan, on a thread of its own: names and one `stat` per
    /// message (`SpoolScanner.index`), handed over in batches (`indexScanned`),
    /// so the loop delivers the first due messages while the rest are listed.
    /// Control requests wait for the end of the scan (a hold or release
    /// moving a message mid-scan could make it look like a duplicate), as
    /// does READY.
    func startScan() {
        scanning = true
        scanStarted = Date()
        let layout = self.layout
        let clock = self.clock
        let horizon = self.horizon
        let completed = self.completed
        let wake = wakePipe
        #if DEBUG
        // Tests make the scan slow, to see deliveries start before it ends.
        let delay = ProcessInfo.processInfo.environment["POSTERN_DEBUG_SCAN_DELAY_MS"].flatMap { UInt32($0) } ?? 0
        #endif
        Thread.detachNewThread {
            var batch: [IndexedMessage] = []
            batch.reserveCapacity(Self.scanBatch)
            var handOver = Deadline.after(0.02)
            let listed: ([String]) -> Void = { drops in
                // Fresh mail first: accepted while the rest is indexed.
                completed.append(.dropsListed(drops))
                wake?.wake()
            }
            let scan = Self.indexScanner(layout, clock).index(horizon: horizon, listed: listed) { item in
                #if DEBUG
                if delay > 0 { usleep(delay * 1000) }
                #endif
                batch.append(item)
                // Full, or 20 ms old: a cold cache makes each stat a disk read.
                guard batch.count >= Self.scanBatch || handOver.hasPassed else { return }
                completed.append(.scanned(batch))
                batch = []
                batch.reserveCapacity(Self.scanBatch)
                handOver = Deadline.after(0.02)
                wake?.wake()
            }
            if !batch.isEmpty { completed.append(.scanned(batch)) }
            completed.append(.scanFinished(scan))
            wake?.wake()
        }
    }

    /// Messages per batch of the start-up scan: small enough that the first
    /// due message is delivered within milliseconds, large enough that a
    /// million cost the loop a few thousand wake-ups.
    static let scanBatch = 1024

    private static func indexScanner(_ layout: SpoolLayout, _ clock: any WallClock) -> SpoolScanner {
        var scanner = SpoolScanner(layout: layout, mode: .repair)
        scanner.now = { clock.now }
        return scanner
    }

    /// The latest due time the index believes of an envelope's modification
    /// time: one full backoff beyond the last attempt's, which no envelope the
    /// daemon writes is due after. A time further ahead (a `touch -d` by hand)
    /// makes the envelope read then and rescheduled as it says.
    var horizon: Double {
        let longest = settings.backoff.delay(after: settings.maxAttempts, unit: 1)
        return clock.now.timeIntervalSince1970 + longest
    }

    /// A batch of the start-up scan. A message the index already knows (from
    /// an event or a drop accepted meanwhile) keeps what the index knows: it
    /// is fresher than what the scanner found.
    func indexScanned(_ items: [IndexedMessage]) {
        for item in items {
            index(item, keepKnown: true)
            scanProgress += 1
            if scanProgress % 100_000 == 0 {
                let rate = Double(scanProgress) / max(0.001, Date().timeIntervalSince(scanStarted))
                logger.info("scanning", metadata: ["messages": "\(scanProgress)", "rate": "\(Int(rate))/s"])
            }
        }
    }

    /// The start-up scan is over: its drops accepted, the index ready, the
    /// control requests that waited applied, systemd told.
    func scanFinished(_ scan: SpoolScanner.IndexScan) {
        // Its drops were accepted when they were listed (`.dropsListed`).
        finishScan(scan.report, drops: [], dropped: scan.drops.count, reason: "start-up", started: scanStarted)
        scanning = false
        if rescanAfterScan {
            rescanAfterScan = false
            rebuild(reason: "inotify overflow")
        }
        processControlRequests()
        notifier?.send("READY=1\nSTATUS=\(statusLine)")
    }

    /// One message the scanner found in queue/ or hold/, into the index, due
    /// when its envelope's time says. What is inside (its recipients, whether
    /// its writer still owns it, a DSN owed) is read when it comes due.
    func index(_ item: IndexedMessage, keepKnown: Bool) {
        guard !core.inRound(item.id), !(keepKnown && core.contains(item.id)) else { return }
        core.insert(item.id, time: item.due, held: item.held)
    }

    private func finishScan(_ report: ScanReport, drops: [String], dropped: Int, reason: String, started: Date) {
        for quarantined in report.quarantined {
            logger.warning("quarantined", metadata: ["entry": "\(quarantined.origin)", "reason": "\(quarantined.reason)"])
        }
        for error in report.errors { logger.error("scan", metadata: ["error": "\(error)"]) }
        for name in drops { accept(name) }
        let scanned = (report.messages[.queue] ?? 0) + (report.messages[.hold] ?? 0)
        metrics.rescan(seconds: Date().timeIntervalSince(started), messages: scanned + dropped)
        logger.info("index ready", metadata: ["reason": "\(reason)", "queued": "\(report.messages[.queue] ?? 0)",
                                               "held": "\(report.messages[.hold] ?? 0)", "dropped": "\(dropped)",
                                               "duration": "\(Milliseconds.seconds(Date().timeIntervalSince(started)))"])
    }

    /// inotify events: drops to accept, operators' moves to follow, control requests.
    func handle(_ events: [DirectoryWatcher.Event]) {
        var requests = false
        for event in events {
            if event.overflowed || event.watchLost {
                if event.overflowed { metrics.inotifyOverflow() }
                logger.warning("inotify overflow or lost watch; rescanning")
                // Not two scanners at once: the start-up scan's end rescans.
                if scanning { rescanAfterScan = true } else { rebuild(reason: "inotify overflow") }
                return
            }
            switch event.directory {
            case layout.directory(.drop):
                if event.mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0 { accept(event.name, batched: true) }
            case layout.control:
                if event.name.hasSuffix(".request") { requests = true }
            default:
                if let id = QueueID(event.name) {
                    // The listener's own rename: it posts the message itself (`received`).
                    if event.mask & UInt32(IN_MOVED_TO) != 0, event.directory == layout.directory(.queue),
                       inbox?.isExpected(id) == true { continue }
                    // Our own removals (a delivered message) are already out of the index,
                    // and our own moves (a release) may already be in line with it.
                    if event.mask & UInt32(IN_DELETE | IN_MOVED_FROM) != 0, !core.contains(id) { continue }
                    if event.mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0, core.contains(id),
                       core.isHeld(id) == (event.directory == layout.directory(.hold)) { continue }
                    reconcile(id)
                } else if event.mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0 {
                    quarantine(event.name, in: event.directory, reason: "an entry whose name is not a queue ID")
                }
            }
        }
        syncAcceptedBatch()
        if requests {
            // Not while a request is being applied (its batches read events): after it.
            if applyingControl || scanning { controlPending = true } else { processControlRequests() }
        }
    }

    /// Validates a drop and accepts it into `queue/` (fsynced); its first
    /// attempt is due at once. What fails validation is quarantined.
    ///
    /// A drop by root or the spool owner is renamed into `queue/`. Any other
    /// is adopted (`Adoption`): copied into a directory of the daemon's own,
    /// with only the fields a drop may set, so that its writer keeps no hold on
    /// it (spool-layout.md 6.5).
    ///
    /// `batched`: a trusted drop's rename is not synced here; the caller syncs
    /// `queue/` and `drop/` once for all the drops of its batch
    /// (`syncAcceptedBatch`), before the loop starts any attempt.
    func accept(_ name: String, batched: Bool = false) {
        let directory = layout.directory(.drop)
        var acceptance = DropAcceptance(layout: layout, trustedOwners: trustedOwners,
                                        maxMessageSize: settings.maxMessageSize, maxRecipients: settings.maxRecipients)
        acceptance.syncsEachMove = !batched
        if batched { acceptedUnsynced = true }
        acceptance.local = localRecipients()
        acceptance.report = { [logger] id, rewrite in
            for change in rewrite.changes {
                logger.info("local recipient", metadata: ["id": "\(id)", "recipient": "\(change.recipient)",
                                                          "to": "\(change.addresses.joined(separator: ","))", "by": "\(change.by)"])
            }
            for address in rewrite.unresolved {
                // Left as it is (nothing says otherwise): its domain's MX hosts, or the relay, may serve it.
                logger.info("local recipient unresolved", metadata: ["id": "\(id)", "recipient": "\(address)",
                                                                     "hint": "no alias and no local.admin_address; sent to its domain's mail servers"])
            }
            for warning in rewrite.warnings { logger.warning("aliases", metadata: ["id": "\(id)", "problem": "\(warning)"]) }
        }
        let envelope: Envelope
        switch acceptance.accept(name) {
        case .gone:
            return
        case .badName:
            quarantine(name, in: directory, reason: "an entry whose name is not a queue ID")
            metrics.dropRejected(reason: .badName)
            return
        case .invalid(let reason):
            quarantine(name, in: directory, reason: reason)
            metrics.dropRejected(reason: .invalid)
            return
        case .leftover:
            logger.info("removed the dropped copy of a message already accepted", metadata: ["id": "\(name)"])
            return
        case .duplicate:
            quarantine(name, in: directory, reason: "duplicate: \(name) is already queued")
            metrics.dropRejected(reason: .duplicate)
            return
        case .later(let reason, let cause):
            // The drop is fine, and is tried again at the next probe (`checkSpool`).
            laterDrops.insert(name)
            if !(cause.map { trouble.absorb($0, while: "accepting a drop") } ?? false) {
                logger.error("cannot accept a drop now", metadata: ["id": "\(name)", "reason": "\(reason)"])
            }
            metrics.dropRejected(reason: .other)
            return
        case .acceptedCopyRemains(let accepted, let error):
            logger.error("accepted, but the dropped copy remains", metadata: ["id": "\(name)", "error": "\(error)"])
            envelope = accepted
        case .accepted(let accepted, let ignored, let owner):
            if !ignored.isEmpty {
                logger.warning("drop fields ignored", metadata: ["id": "\(name)", "uid": "\(owner)",
                                                              "fields": "\(ignored.joined(separator: ","))"])
            }
            envelope = accepted
        }
        core.insert(envelope.id, nextAttempt: envelope.nextAttempt, held: false,
                    recipients: envelope.recipients.count { $0.state == .pending })
        metrics.dropAccepted()
        let line: Logger.Metadata = ["id": "\(envelope.id)", "sender": "\(envelope.sender ?? "<>")",
                                     "recipients": "\(envelope.recipients.count)", "size": "\(envelope.size)",
                                     "uid": "\(envelope.uid)"]
        // Logged once it is durable: after the batch's sync when batched.
        if batched { acceptedLines.append(line) } else { logger.info("accepted", metadata: line) }
    }

    /// One `fsync` of `queue/` and of `drop/` for every drop accepted since the
    /// last (spool-layout.md 6.3, group commit): under a stream of drops (the
    /// SMTP listener's), two syncs per batch of inotify events instead of two
    /// per message on the event loop. A failure is logged: the renames it
    /// leaves unsynced can only be undone by a power loss, which puts the
    /// drops back in `drop/`, to be accepted again.
    func syncAcceptedBatch() {
        guard acceptedUnsynced else { return }
        acceptedUnsynced = false
        do throws(SpoolIOError) {
            try store.syncDirectories([.queue, .drop])
        } catch {
            logger.error("cannot sync accepted drops", metadata: ["error": "\(error)"])
        }
        for line in acceptedLines { logger.info("accepted", metadata: line) }
        acceptedLines.removeAll()
    }

    /// The rewriting of local recipients as the settings say, with the
    /// aliases file as it is now (read again only when it changed; its
    /// problems logged once per change). nil when nothing is local.
    func localRecipients() -> LocalRecipients? {
        guard let local = settings.local else { return nil }
        if aliasesFile?.path != local.aliasesPath { aliasesFile = AliasesFile(path: local.aliasesPath) }
        let (rewriting, problems) = LocalRecipients.current(local, file: aliasesFile)
        for problem in problems { logger.error("aliases", metadata: ["problem": "\(problem)"]) }
        return rewriting
    }

    /// Loads a message of `queue/` or `hold/`, adopting it first when its
    /// directory still belongs to its writer (accepted by an earlier version,
    /// or restored from `corrupt/` by an operator's `mv`): copied by one
    /// exchange of directories, without `transport` and `max_attempts`, which
    /// only trusted writers may set. Every path that schedules a message comes
    /// through here. Returns nil when the spool failed (logged; tried again later).
    ///
    /// - Throws: the problem that makes it damage (quarantine it unless transient).
    func loadOwned(_ id: QueueID, in area: SpoolLayout.Area) throws(MessageDirectory.Problem) -> Envelope? {
        try openOwned(id, in: area)?.envelope
    }

    /// `loadOwned`, and whether the envelope counts an attempt its file does
    /// not record yet (`MessageDirectory.Opened.recovered`).
    func openOwned(_ id: QueueID, in area: SpoolLayout.Area) throws(MessageDirectory.Problem) -> (envelope: Envelope, recovered: Bool)? {
        let opened = try MessageDirectory(path: layout.path(area, id)).open(id: id, trustedOwners: trustedOwners)
        guard !trustedOwners.contains(opened.owner) else { return (opened.envelope, opened.recovered) }
        let (envelope, ignored) = Adoption.withoutOverrides(opened.envelope)
        do {
            try Adoption(layout: layout).adopt(opened, envelope: envelope, from: area, to: area)
        } catch let problem as MessageDirectory.Problem {
            throw problem
        } catch {
            logger.error("cannot adopt a message", metadata: ["id": "\(id)", "error": "\(error)"])
            return nil
        }
        logger.info("adopted", metadata: ["id": "\(id)", "uid": "\(opened.owner)", "ignored": "\(ignored.joined(separator: ","))"])
        return (envelope, false)
    }

    /// Brings the index in line with where a message is on disk: an operator's
    /// `mv` between `queue/` and `hold/`, a removal, a message planted by hand.
    func reconcile(_ id: QueueID) {
        let queued = MessageDirectory.lstatus(layout.path(.queue, id)) != nil
        let held = MessageDirectory.lstatus(layout.path(.hold, id)) != nil
        if !queued && !held {
            if !core.inRound(id) { core.remove(id) }
            return
        }
        if core.contains(id) {
            machine.setHeld(id, held)
            return
        }
        let area: SpoolLayout.Area = queued ? .queue : .hold
        do {
            guard let envelope = try loadOwned(id, in: area) else { return }
            core.insert(id, nextAttempt: envelope.nextAttempt, held: held,
                        recipients: envelope.recipients.count { $0.state == .pending })
        } catch {
            if error.isTransient {
                logger.warning("cannot read a message now; it is read again at the next rescan", metadata: ["id": "\(id)", "reason": "\(error.description)"])
            } else {
                quarantine(id.rawValue, in: layout.directory(area), reason: error.description)
            }
        }
    }

    /// A message the SMTP listener queued itself (`QueueInbox`): indexed,
    /// due at once, its envelope read when it comes due, as the start-up
    /// scan indexes what it finds. After a failed commit, the spool says.
    func received(_ entry: QueueInbox.Entry) {
        switch entry {
        case .queued(let id):
            guard !core.contains(id), !core.inRound(id) else { return }
            core.insert(id, time: clock.now.timeIntervalSince1970, held: false)
        case .unsure(let id):
            reconcile(id)
        }
    }

    /// While a condition of the spool lasts, or drops wait, probes the spool
    /// every `SpoolTrouble.probeInterval`: when a condition ends, the
    /// messages that waited for it are due at once (`spoolRecovered`); the
    /// waiting drops are tried again at each probe.
    func checkSpool() {
        guard trouble.isActive || !laterDrops.isEmpty else {
            nextProbe = nil
            return
        }
        let now = clock.now
        guard let due = nextProbe else {
            nextProbe = now.addingTimeInterval(SpoolTrouble.probeInterval)
            return
        }
        guard now >= due else { return }
        nextProbe = now.addingTimeInterval(SpoolTrouble.probeInterval)
        if trouble.isActive {
            guard trouble.probe() else { return }
            machine.spoolRecovered()
        }
        let waiting = laterDrops.sorted()
        laterDrops.removeAll()
        for name in waiting { accept(name) }
    }

    func quarantine(_ name: String, in directory: String, reason: String) {
        guard MessageDirectory.lstatus(directory + "/" + name) != nil else { return }
        do {
            let target = try Quarantine(layout: layout, now: { [clock] in clock.now }).move(name, in: directory, reason: reason)
            logger.warning("quarantined", metadata: ["entry": "\(name)", "to": "\(target)", "reason": "\(reason)"])
        } catch {
            logger.error("cannot quarantine", metadata: ["entry": "\(name)", "error": "\(error)"])
        }
    }

    /// Removes envelopes in `retired/` older than `queue.keep_retired`.
    func sweepRetired() {
        lastRetiredSweep = clock.now
        let names = (try? DirectoryListing.names(in: layout.retired)) ?? []   // no retired/: nothing to sweep
        let cutoff = clock.now.addingTimeInterval(-settings.keepRetired).timeIntervalSince1970
        for name in names {
            guard let info = MessageDirectory.lstatus(layout.retired + "/" + name), TimeInterval(info.st_mtim.tv_sec) < cutoff else { continue }
            do {
                try SystemFileSystem().removeTree(layout.retired + "/" + name)
            } catch {
                logger.error("cannot remove a retired envelope", metadata: ["entry": "\(name)", "error": "\(error)"])
            }
        }
    }
}
