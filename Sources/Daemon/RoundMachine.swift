import Delivery
import Foundation
import Logging
import Monitoring
import PosternCore
import Scheduler
import Spool

/// The daemon's decisions about rounds, without I/O of its own: what is due,
/// when an attempt is registered, what a report means for each recipient,
/// what is written with which durability, when a DSN goes and a message
/// leaves, and when a control request may act on a message in a round.
///
/// It is the one owner of round state: the index and its ready jobs
/// (`SchedulerCore`), the envelopes of the rounds in progress, the attempts'
/// deadlines, and the control requests waiting for rounds. Time comes from a
/// `WallClock`; everything it does to the world goes through `RoundEffects`,
/// which the daemon carries out on the spool and tests carry out in memory.
/// It runs on the daemon's event-loop thread only.
final class RoundMachine {
    var settings: DaemonSettings
    let core: SchedulerCore
    let clock: any WallClock
    let logger: Logger
    let metrics: PosternMetrics
    /// The daemon (or a test's fake); it owns this machine.
    weak var effects: (any RoundEffects)?
    var random = SystemRandomNumberGenerator()
    /// Set on shutdown: nothing new starts.
    var stopping = false
    /// The spool's conditions (a full disk): failures for such a reason are
    /// said there once, and their messages wait in `waitingForSpool`.
    var trouble: SpoolTrouble?
    /// Messages put off for `retryDelay` by a condition of the spool: due at
    /// once when it ends (`spoolRecovered`).
    var waitingForSpool: Set<QueueID> = []
    /// Those of them made due when it ended, until an attempt is registered.
    var resumed: Set<QueueID> = []

    /// Envelopes of messages in a registered round, as last written (or, for
    /// the attempt in progress, as they will be written).
    private(set) var rounds: [QueueID: Envelope] = [:]
    /// The jobs launched and not yet reported.
    private(set) var running: Set<Job> = []
    /// When each attempt in flight must be over (`queue.attempt_timeout`);
    /// an aborted one leaves this list and waits for its report.
    private var attemptDeadlines: [Job: Date] = [:]
    /// Attempts aborted at their deadline, whose reports say so.
    private var timedOut: Set<Job> = []
    /// Due messages whose envelope is being read on a delivery thread
    /// (`RoundEffects.load`, then `loaded`): their rounds start from it.
    private var loading: Set<QueueID> = []
    /// Rounds started from an envelope read, whose first job has not been
    /// launched yet: the envelope waits here to register the attempt with.
    private var prepared: [QueueID: (area: SpoolLayout.Area, envelope: LoadedEnvelope)] = [:]
    /// Control requests waiting for a message's round to end.
    var deferredControl: [QueueID: [(ControlRequest, ControlAction)]] = [:]
    var waitingRequests: [QueueID: (request: ControlRequest, outcomes: [QueueID: ControlOutcome], open: Int)] = [:]

    /// How long a step that failed for a local reason (a full disk, an
    /// unreadable directory) waits before it is tried again.
    static let retryDelay: TimeInterval = 60

    /// Envelopes read at once on the delivery threads for rounds to start.
    static let loadLimit = 256
    /// Rounds started and not yet registered (envelopes held in memory while
    /// their jobs wait for their domains' limits), like Postfix's active
    /// queue limit: what bounds memory when a million messages come due at
    /// once. Later ones wait in the index.
    static let activeLimit = 10_000

    init(settings: DaemonSettings, clock: any WallClock, logger: Logger, metrics: PosternMetrics) {
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.metrics = metrics
        core = SchedulerCore(limits: settings.limits)
    }

    var now: Date { clock.now }
    var inFlight: Int { running.count + loading.count }
    /// A registered round, or one whose envelope is being read: control
    /// actions on it wait for its end. (A prepared round is not: it is called
    /// off, `callOff`, since nothing was registered.)
    func isInRound(_ id: QueueID) -> Bool { rounds[id] != nil || loading.contains(id) }

    /// The earliest time the machine must act again: a message due, or an
    /// attempt's deadline. Nil when nothing waits on time.
    var nextWake: Date? {
        [stopping ? nil : core.nextWake(), attemptDeadlines.values.min()].compactMap { $0 }.min()
    }

    // MARK: Starting rounds

    /// Starts the rounds that are due and launches the jobs the limits allow.
    ///
    /// A due message's envelope is read first, on a delivery thread (the
    /// index knows only its due time, `SpoolScanner.index`); its round starts
    /// from what it says (`loaded`), in memory only. Its attempt is registered
    /// on disk when its first job launches (mox registers right before it
    /// delivers), so a crash delays the messages in flight at that moment and
    /// no others, however many were due.
    func schedule() {
        guard !stopping else { return }
        // A bounded batch per turn of the loop, which comes back at once while
        // more are due (the poll timeout is then 0): control requests and
        // finished jobs are not kept waiting behind a start-up with a million due.
        let room = min(2048, Self.loadLimit - loading.count, Self.activeLimit - loading.count - prepared.count)
        if room > 0 {
            for id in core.takeDue(now: now, limit: room) {
                core.begin(id)
                loading.insert(id)
                effects?.load(id)
            }
        }
        for job in core.launchable() {
            if rounds[job.id] != nil {
                launch(job)
            } else if let read = prepared.removeValue(forKey: job.id) {
                if register(job.id, job: job, read: read) { launch(job) }
            } else {
                // Another job of a round its first job could not register
                // (abandoned in `register`): it ends here.
                core.finished(job)
            }
        }
    }

    /// A due message's envelope, read on a delivery thread (`area` where it
    /// was found): its round starts with a job per pending domain, or it is
    /// settled, held, rescheduled or quarantined as the envelope says.
    /// Control requests that arrived meanwhile go now if it did not start.
    func loaded(_ id: QueueID, area: SpoolLayout.Area?, _ envelope: LoadedEnvelope) {
        guard loading.remove(id) != nil else { return }
        // Shutting down, or a control request waits for it: nothing starts.
        guard !stopping, deferredControl[id] == nil, let found = examine(id, read: (area, envelope)) else {
            if core.inRound(id) { core.abandonRound(id) }
            applyDeferredControl(id)
            return
        }
        prepared[id] = (found.area, .envelope(found.envelope, recovered: found.recovered))
        core.startRound(id, domains: found.envelope.pendingDomains, nextAttempt: nil)
    }

    /// Calls off a round that started and registered nothing (its jobs wait
    /// for their domains), so that a control action applies at once.
    func callOff(_ id: QueueID) -> Bool {
        guard prepared.removeValue(forKey: id) != nil else { return false }
        core.abandonRound(id)
        return true
    }

    /// Checks a due message against its envelope (read on a delivery thread,
    /// or here when it moved or needs adopting): the envelope is the truth.
    /// Returns it when the message may start a round now; otherwise the
    /// round is abandoned and the index brought in line (forgotten, held,
    /// settled, rescheduled at the envelope's time, or quarantined).
    private func examine(_ id: QueueID, read: (area: SpoolLayout.Area?, envelope: LoadedEnvelope)?)
        -> (area: SpoolLayout.Area, envelope: Envelope, recovered: Bool)? {
        guard let effects else { return nil }
        func abandon() { core.abandonRound(id) }
        // Where it is now: what was read elsewhere counts only if it is still there.
        guard let area = effects.area(of: id) else {
            abandon()
            effects.reconcile(id)   // gone: forgotten
            return nil
        }
        var result = read?.area == area ? read!.envelope : effects.open(id, in: area)
        if case .adoptionNeeded = result { result = effects.open(id, in: area) }
        var envelope: Envelope
        let recovered: Bool
        switch result {
        case .envelope(let found, let wasRecovered):
            (envelope, recovered) = (found, wasRecovered)
        case .unavailable, .adoptionNeeded:
            abandon()
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return nil
        case .transient(let reason, let code):
            // A check that could not be made (no descriptor left): later.
            if let code, let trouble, trouble.absorb(SpoolIOError("read", reason, code), while: "reading an envelope") {
                waitingForSpool.insert(id)
            } else {
                logger.warning("cannot read a due message now", metadata: ["id": "\(id)", "reason": "\(reason)"])
            }
            abandon()
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return nil
        case .damaged(let reason):
            // Found damaged when due (an operator's edit, a disk error, a
            // planted entry): out of the schedule and into quarantine.
            logger.warning("cannot read a due message", metadata: ["id": "\(id)", "reason": "\(reason)"])
            abandon()
            core.remove(id)
            effects.quarantine(id, in: area, reason: reason)
            return nil
        }
        // A release leaves the reason in the file: in queue/ it means nothing.
        if area == .queue { envelope.holdReason = nil }
        if !envelope.dsnPending.isEmpty, area == .queue, effects.sendPending(&envelope) {
            // Marked failed, then a crash or a full disk before the DSN; at
            // worst (a crash right here) the DSN is sent twice.
            try? effects.persist(envelope, in: area, durability: .processCrash)
        }
        let pending = envelope.recipients.count { $0.state == .pending }
        guard pending > 0 else {
            // Every recipient final (its DSN still owed, say): finished, held or not.
            abandon()
            finalize(id, envelope: envelope, area: area)
            return nil
        }
        guard area == .queue else {
            abandon()
            core.setHeld(id, true)
            return nil
        }
        let due = envelope.nextAttempt ?? .distantPast
        // Resumed after a full disk: the envelope's time is that of the
        // attempt whose result could not be written, so it does not count.
        guard due <= now || resumed.contains(id) else {
            // The index was ahead of the envelope (a touch, a copy without
            // times): due when the envelope says.
            abandon()
            core.reschedule(id, at: due, recipients: pending)
            return nil
        }
        if recovered, envelope.attempts >= envelope.maxAttempts ?? settings.maxAttempts {
            // Its last allowed attempt was registered and never reported (the
            // daemon died during it): that attempt counted, so the message has
            // run out, as a message that crashes the daemon must.
            abandon()
            expireInterrupted(id, &envelope, in: area)
            finalize(id, envelope: envelope, area: area)
            return nil
        }
        core.refresh(id, recipients: pending)
        return (area, envelope, recovered)
    }

    /// Registers the attempt of a round whose first job is about to launch
    /// (mox's crash rule): see `RoundEffects.register` and spool-layout.md
    /// 6.2. No fsync and no new inode: a power loss at worst repeats the
    /// attempt uncounted (the durability budget).
    ///
    /// Returns whether `job` may launch. When it may not (the message is gone,
    /// held, damaged, settled, or its destinations changed), the round is
    /// abandoned and the index brought in line.
    func register(_ id: QueueID, job: Job, read: (area: SpoolLayout.Area, envelope: LoadedEnvelope)) -> Bool {
        guard let effects else { return false }
        let domains = core.domains(of: id)
        guard let found = examine(id, read: (read.area, read.envelope)) else {
            core.finished(job)
            return false
        }
        guard Set(found.envelope.pendingDomains) == Set(domains) else {
            // Edited since it was read: the round starts again from the envelope.
            core.finished(job)
            core.abandonRound(id)
            core.reschedule(id, at: now)
            return false
        }
        var envelope = found.envelope
        envelope.attempts += 1
        for index in envelope.recipients.indices where envelope.recipients[index].state == .pending {
            envelope.recipients[index].attempts += 1
        }
        let next = now.addingTimeInterval(settings.backoff.delay(after: envelope.attempts, using: &random))
        do {
            try effects.register(found.envelope, recovered: found.recovered, nextAttempt: next)
        } catch {
            writeFailed(id, error, "cannot register attempt; will retry", while: "registering an attempt")
            core.finished(job)
            core.abandonRound(id)
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return false
        }
        envelope.nextAttempt = next
        resumed.remove(id)
        rounds[id] = envelope
        core.setNextAttempt(id, next)
        return true
    }

    /// A spool write for `id` failed: logged, unless the cause is a
    /// condition of the spool (`SpoolTrouble`), which says it once; the
    /// message then also waits for the condition to end.
    func writeFailed(_ id: QueueID, _ error: any Error, _ message: Logger.Message, while doing: String) {
        if let trouble, trouble.absorb(error, while: doing) {
            waitingForSpool.insert(id)
        } else {
            logger.error(message, metadata: ["id": "\(id)", "error": "\(error)"])
        }
    }

    /// A condition of the spool ended: the messages whose writes it failed
    /// (an attempt's result, a registration, a DSN) are due now, so that what
    /// they owe is done at once rather than after their backoff or
    /// `retryDelay`. Their envelope on disk is the one before the failed write,
    /// with its registration mark (the attempt counts), so the round starts
    /// over from there: an attempt whose result was lost is made again, as
    /// after a crash (spool-layout.md 6.2).
    func spoolRecovered() {
        for id in waitingForSpool.sorted() where core.contains(id) {
            core.reschedule(id, at: now)
            resumed.insert(id)
        }
        waitingForSpool.removeAll()
    }

    private func launch(_ job: Job) {
        guard let envelope = rounds[job.id], let effects else {
            core.finished(job)
            return
        }
        running.insert(job)
        attemptDeadlines[job] = now.addingTimeInterval(settings.attemptTimeout)
        metrics.setInFlight(inFlight)
        effects.launch(job, envelope: envelope)
    }

    /// Aborts the attempts that ran past `queue.attempt_timeout`: their socket
    /// is shut down, so the delivery thread returns at once and reports.
    func abortOverdueAttempts() {
        let time = now
        for (job, deadline) in attemptDeadlines where deadline <= time {
            attemptDeadlines[job] = nil
            timedOut.insert(job)
            effects?.cancel(job)
            logger.warning("attempt timed out; aborting", metadata: ["id": "\(job.id)", "domain": "\(job.domain)"])
        }
    }

    /// Marks a report's job finished; whether its attempt ran out of time.
    func jobEnded(_ job: Job) -> (timedOut: Bool, roundOver: Bool) {
        running.remove(job)
        attemptDeadlines[job] = nil
        metrics.setInFlight(inFlight)
        let late = timedOut.remove(job) != nil
        return (late, core.finished(job))
    }

    /// Takes a round's envelope out at its end.
    func takeRound(_ id: QueueID) -> Envelope? {
        rounds.removeValue(forKey: id)
    }

    func updateRound(_ id: QueueID, _ envelope: Envelope) {
        rounds[id] = envelope
    }
}
