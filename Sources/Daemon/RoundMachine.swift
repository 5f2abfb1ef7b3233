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
    /// Rounds whose envelope is being read on a delivery thread, with the
    /// jobs that wait for it (`RoundEffects.load`, then `loaded`).
    private var loading: [QueueID: [Job]] = [:]
    /// Control requests waiting for a message's round to end.
    var deferredControl: [QueueID: [(ControlRequest, ControlAction)]] = [:]
    var waitingRequests: [QueueID: (request: ControlRequest, outcomes: [QueueID: ControlOutcome], open: Int)] = [:]

    /// How long a step that failed for a local reason (a full disk, an
    /// unreadable directory) waits before it is tried again.
    static let retryDelay: TimeInterval = 60

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
    /// actions on it wait for its end.
    func isInRound(_ id: QueueID) -> Bool { rounds[id] != nil || loading[id] != nil }

    /// The earliest time the machine must act again: a message due, or an
    /// attempt's deadline. Nil when nothing waits on time.
    var nextWake: Date? {
        [stopping ? nil : core.nextWake(), attemptDeadlines.values.min()].compactMap { $0 }.min()
    }

    // MARK: Starting rounds

    /// Starts the rounds that are due and launches the jobs the limits allow.
    ///
    /// A due message's round starts in memory only; its attempt is registered
    /// on disk when its first job launches (mox registers right before it
    /// delivers), so a crash delays the messages in flight at that moment and
    /// no others, however many were due.
    func schedule() {
        guard !stopping else { return }
        // A bounded batch per turn of the loop, which comes back at once while
        // more are due (the poll timeout is then 0): control requests and
        // finished jobs are not kept waiting behind a start-up with a million due.
        for id in core.takeDue(now: now, limit: 2048) {
            let domains = core.domains(of: id)
            if domains.isEmpty {
                // Nothing to deliver (a DSN still owed, say): settled here.
                _ = register(id, job: nil)
            } else {
                core.startRound(id, domains: domains, nextAttempt: nil)
            }
        }
        for job in core.launchable() {
            if rounds[job.id] != nil {
                launch(job)
            } else if loading[job.id] != nil {
                loading[job.id]!.append(job)   // another domain of a round whose envelope is on its way
            } else {
                // Read on a delivery thread (validation and decoding are most of
                // what the loop would spend on a message); decided in `loaded`.
                loading[job.id] = [job]
                effects?.load(job.id)
            }
        }
    }

    /// A round's envelope, read on a delivery thread (`area` where it was
    /// found): the attempt is registered and its jobs launched, or the round
    /// abandoned (`register`). Control requests that arrived meanwhile wait
    /// for the round, or go now if it did not start.
    func loaded(_ id: QueueID, area: SpoolLayout.Area?, _ envelope: LoadedEnvelope) {
        guard let jobs = loading.removeValue(forKey: id), let first = jobs.first else { return }
        guard !stopping else {
            // Shutting down: nothing new starts, and nothing was registered.
            for job in jobs { core.finished(job) }
            core.abandonRound(id)
            applyDeferredControl(id)
            return
        }
        if register(id, job: first, read: (area, envelope)) {
            for job in jobs { launch(job) }
        } else {
            for job in jobs.dropFirst() { core.finished(job) }
            applyDeferredControl(id)
        }
    }

    /// Registers the attempt of a round whose first job is about to launch
    /// (mox's crash rule): see `RoundEffects.register` and spool-layout.md
    /// 6.2. No fsync and no new inode: a power loss at worst repeats the
    /// attempt uncounted (the durability budget).
    ///
    /// Returns whether `job` may launch. When it may not (the message is gone,
    /// held, damaged, settled, or its destinations changed), the round is
    /// abandoned and the index brought in line. With `job` nil, only the
    /// settling of a message with no destination left is done.
    func register(_ id: QueueID, job: Job?, read: (area: SpoolLayout.Area?, envelope: LoadedEnvelope)? = nil) -> Bool {
        guard let effects else { return false }
        func abandon() {
            if let job {
                core.finished(job)
                core.abandonRound(id)
            }
        }
        // Where it is now: what was read elsewhere counts only if it is still there.
        guard let area = effects.area(of: id) else {
            abandon()
            effects.reconcile(id)   // gone: forgotten
            return false
        }
        var result = read?.area == area ? read!.envelope : effects.open(id, in: area)
        if case .adoptionNeeded = result { result = effects.open(id, in: area) }
        let found: Envelope
        let recovered: Bool
        switch result {
        case .envelope(let envelope, let wasRecovered):
            (found, recovered) = (envelope, wasRecovered)
        case .unavailable, .adoptionNeeded:
            abandon()
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return false
        case .transient(let reason):
            // A check that could not be made (no descriptor left): later.
            logger.warning("cannot register an attempt", metadata: ["id": "\(id)", "reason": "\(reason)"])
            abandon()
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return false
        case .damaged(let reason):
            // Damaged while it waited (an operator's edit, a disk error): out of
            // the schedule and into quarantine, as the scanner would.
            logger.warning("cannot register an attempt", metadata: ["id": "\(id)", "reason": "\(reason)"])
            abandon()
            core.remove(id)
            effects.quarantine(id, in: area, reason: reason)
            return false
        }
        var envelope = found
        // A release leaves the reason in the file: in queue/ it means nothing.
        if area == .queue { envelope.holdReason = nil }
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
        guard let job, Set(domains) == Set(core.domains(of: id)), due <= now else {
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
        let next = now.addingTimeInterval(settings.backoff.delay(after: envelope.attempts, using: &random))
        do {
            try effects.register(found, recovered: recovered, nextAttempt: next)
        } catch {
            logger.error("cannot register attempt; will retry", metadata: ["id": "\(id)", "error": "\(error)"])
            abandon()
            core.reschedule(id, at: now.addingTimeInterval(Self.retryDelay))
            return false
        }
        envelope.nextAttempt = next
        rounds[id] = envelope
        core.setNextAttempt(id, next)
        return true
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
