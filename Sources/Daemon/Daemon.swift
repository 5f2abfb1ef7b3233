import Delivery
import Foundation
import Glibc
import Logging
import Monitoring
import PosternCore
import Scheduler
import Spool
import Synchronization

/// `postern run`: owns one spool, notices every drop at once, delivers, retries
/// and never loses a message.
///
/// One thread runs the event loop below and is the spool's only writer; each
/// delivery runs on a thread of its own and hands its report back through a
/// queue and a wake-up pipe. The loop waits in `poll(2)` on inotify, the wake-up
/// pipe (job results and signals) and the next due time: no polling for work.
public final class Daemon {
    let layout: SpoolLayout
    var settings: DaemonSettings {
        didSet {
            machine.settings = settings
            inbox?.setLocalDomains(settings.local?.domains ?? [])
        }
    }
    let logger: Logger
    /// `local.aliases`, read again when it changes (`localRecipients()`).
    var aliasesFile: AliasesFile?
    let dsn: any DSNHook
    let reload: () -> DaemonSettings?
    let clock: any WallClock
    /// The round logic; this class is its shell (`RoundEffects`).
    let machine: RoundMachine
    let store: MessageStore
    let control: QueueControl
    let mailbox: ControlMailbox

    let completed = CompletionQueue()
    /// What the SMTP listener beside the daemon queued itself.
    let inbox: QueueInbox?
    /// The delivery threads, while `run` runs.
    var workers: WorkerPool?
    /// The wake-up pipe of the running loop, for delivery threads.
    var wakePipe: WakePipe?
    /// Removes finished messages off the event loop, while `run` runs.
    /// One thread that removes finished messages off the event loop.
    var janitor: WorkerPool?
    /// The spool's inotify watch, while `run` runs.
    var watcher: DirectoryWatcher?
    /// Drops were accepted whose renames are not synced yet (`syncAcceptedBatch`).
    var acceptedUnsynced = false
    /// Their log lines, written after that sync.
    var acceptedLines: [Logger.Metadata] = []
    /// A control request is being applied; requests arriving meanwhile wait.
    var applyingControl = false
    var controlPending = false
    /// The start-up scan runs (`startScan`): what it found so far is indexed.
    var scanning = false
    var scanStarted = Date()
    var scanProgress = 0
    var rescanAfterScan = false
    /// How to abort each job in flight.
    var cancellations: [Job: Cancellation] = [:]
    var stopping = false
    var stopDeadline: Date?
    var lastRetiredSweep = Date.distantPast
    let metrics: PosternMetrics
    let census: SpoolCensus
    /// Root and the spool's owner (spool-layout.md section 3), looked up once:
    /// every drop accepted and every attempt registered asks.
    lazy var trustedOwners = MessageDirectory.trustedOwners(of: layout)
    /// systemd's notify socket, when started by systemd (`Type=notify`).
    let notifier: ServiceNotifier?
    var lastWatchdog = Date.distantPast
    var lastStatus = ""
    /// When the queue gauges were last published, and whether they changed since.
    var lastPublish = Date.distantPast
    var lastReportWrite = Date.distantPast
    var metricsDirty = true
    /// A full disk, no descriptor left, a read-only spool: said once, probed until it ends.
    let trouble: SpoolTrouble
    /// When the spool is next probed (`checkSpool`), while a condition lasts or drops wait.
    var nextProbe: Date?
    /// Drops that could not be accepted for a passing reason, tried again at each probe.
    var laterDrops: Set<String> = []

    /// The index of queued messages (the machine's).
    var core: SchedulerCore { machine.core }

    public init(layout: SpoolLayout, settings: DaemonSettings, logger: Logger, dsn: any DSNHook,
                metrics: PosternMetrics = PosternMetrics(), notifier: ServiceNotifier? = nil, trouble: SpoolTrouble? = nil,
                inbox: QueueInbox? = nil, clock: any WallClock = SystemClock(),
                reload: @escaping () -> DaemonSettings? = { nil }) {
        self.layout = layout
        self.notifier = notifier
        self.metrics = metrics
        census = SpoolCensus(layout: layout)
        self.settings = settings
        self.logger = logger
        self.dsn = dsn
        self.reload = reload
        self.clock = clock
        machine = RoundMachine(settings: settings, clock: clock, logger: logger, metrics: metrics)
        self.trouble = trouble ?? SpoolTrouble(layout: layout, logger: logger, metrics: metrics)
        machine.trouble = self.trouble
        store = MessageStore(layout: layout)
        control = QueueControl(layout: layout)
        mailbox = ControlMailbox(layout: layout)
        self.inbox = inbox
        machine.effects = self
        inbox?.setLocalDomains(settings.local?.domains ?? [])
    }

    /// Runs until SIGTERM or SIGINT, then drains and returns.
    ///
    /// - Throws: `SpoolError` with `.tempFail` when another daemon holds the spool.
    public func run() throws {
        try SpoolCheck.requireSpool(layout)
        let lock = try SpoolLock(layout: layout)
        defer { withExtendedLifetime(lock) {} }
        logger.info("starting", metadata: ["spool": "\(layout.root)", "pid": "\(getpid())",
                                           "transport": "\(settings.router.defaultTransport)",
                                           "routes": "\(settings.router.routes.count)"])
        try ensureDirectory(layout.control)
        if settings.keepRetired > 0 { try ensureDirectory(layout.retired) }
        let wake = try WakePipe()
        wakePipe = wake
        SignalRouting.install(wake)
        inbox?.attach(wake: { wake.wake() })
        defer { inbox?.attach(wake: nil) }
        let pool = WorkerPool(threads: settings.limits.maxConcurrent)
        workers = pool
        janitor = WorkerPool(threads: 1)
        observeSessions()
        defer {
            pool.shutdown()
            workers = nil
            // Blanks are kept only while the daemon runs (any left by a crash are
            // removed from tmp/ once old): removed after the janitor's last job.
            let blanks = inbox?.blanks ?? nil
            let removed = DispatchSemaphore(value: 0)
            janitor?.submit {
                for path in blanks?.takeAll() ?? [] { _ = try? SystemFileSystem().removeTree(path) }
                removed.signal()
            }
            if janitor != nil { removed.wait() }
            janitor?.shutdown()
            janitor = nil
            settings.router.finish()
        }
        let watcher = try DirectoryWatcher()
        self.watcher = watcher
        for path in [layout.directory(.drop), layout.directory(.queue), layout.directory(.hold), layout.control] {
            try watcher.watch(path)
        }
        // Watch first, then scan: a drop between the two is seen twice, never missed.
        startScan()
        census.start()
        defer { census.stop() }
        loop(watcher: watcher, wake: wake)
        logger.info("stopped", metadata: ["queued": "\(core.count)"])
    }

    private func loop(watcher: DirectoryWatcher, wake: WakePipe) {
        while true {
            machine.schedule()
            if settings.keepRetired > 0, clock.now.timeIntervalSince(lastRetiredSweep) >= 3600 { sweepRetired() }
            // The scan writes (quarantine): it ends before the lock is let go.
            if stopping && machine.inFlight == 0 && !scanning { return }
            var fds = [pollfd(fd: watcher.fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.readEnd, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, timeout())
            if ready < 0 && errno != EINTR {
                logger.error("poll failed", metadata: ["error": "\(POSIX.errorText(errno))"])
            }
            if fds[0].revents != 0 { handle(watcher.read()) }
            if controlPending && !scanning {
                controlPending = false
                processControlRequests()
            }
            for byte in wake.drain() where byte != 0 { handle(signal: Int32(byte)) }
            let results = completed.takeAll()
            for item in results {
                switch item {
                case .report(let job, let report):
                    cancellations[job] = nil
                    machine.finish(job, report)
                case .loaded(let id, let area, let envelope):
                    machine.loaded(id, area: area, envelope)
                case .dropsListed(let names):
                    for name in names { accept(name, batched: true) }
                    syncAcceptedBatch()
                case .scanned(let items):
                    indexScanned(items)
                case .scanFinished(let report):
                    scanFinished(report)
                }
            }
            for entry in inbox?.take() ?? [] { received(entry) }
            checkSpool()
            publishMetrics()
            writeTLSReportsDue()
            feedWatchdog()
            machine.abortOverdueAttempts()
            if stopping, let deadline = stopDeadline, clock.now >= deadline, !cancellations.isEmpty {
                logger.warning("grace period over; aborting attempts in progress", metadata: ["count": "\(cancellations.count)"])
                for cancellation in cancellations.values { cancellation.cancel() }
                stopDeadline = nil
            }
        }
    }

    /// Milliseconds until the next due message, the shutdown deadline, or the
    /// retired sweep; -1 (forever) when nothing is waiting.
    private func timeout() -> Int32 {
        var wakeAt: [Date] = []
        if let next = machine.nextWake { wakeAt.append(next) }
        if let deadline = stopDeadline { wakeAt.append(deadline) }
        if let interval = notifier?.watchdogInterval { wakeAt.append(lastWatchdog.addingTimeInterval(interval)) }
        if settings.keepRetired > 0 { wakeAt.append(lastRetiredSweep.addingTimeInterval(3600)) }
        if let nextProbe { wakeAt.append(nextProbe) }
        // Gauges changed within the last second are published a second later;
        // the census of corrupt/ and retired/ once a minute.
        wakeAt.append(lastPublish.addingTimeInterval(metricsDirty ? 1 : 60))
        guard let earliest = wakeAt.min() else { return -1 }
        let milliseconds = earliest.timeIntervalSince(clock.now) * 1000
        return Int32(max(0, min(Double(Int32.max), milliseconds.rounded(.up))))
    }

    private func handle(signal: Int32) {
        switch signal {
        case SIGTERM, SIGINT:
            guard !stopping else { return }
            stopping = true
            machine.stopping = true
            notifier?.send("STOPPING=1\nSTATUS=stopping, \(machine.inFlight) attempts in flight")
            stopDeadline = clock.now.addingTimeInterval(settings.shutdownGrace)
            logger.info("stopping", metadata: ["in_flight": "\(machine.inFlight)", "grace": "\(settings.shutdownGrace)s"])
        case SIGHUP:
            notifier?.send("RELOADING=1")
            defer { notifier?.send("READY=1\nSTATUS=\(statusLine)") }
            guard let fresh = reload() else {
                logger.error("configuration not reloaded: it has errors (see above); keeping the running one")
                return
            }
            // Sessions opened under the old configuration end, its TLSRPT counts
            // are written; the new one starts afresh.
            settings.router.finish()
            settings = fresh
            observeSessions()
            core.limits = fresh.limits
            workers?.resize(to: fresh.limits.maxConcurrent)
            logger.info("configuration reloaded")
        default:
            break
        }
    }

    /// Counts the messages of each SMTP connection as it closes.
    private func observeSessions() {
        let metrics = self.metrics
        settings.router.sessions?.observeClosing { metrics.connectionMessages($0) }
    }

    func ensureDirectory(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) != 0 else { return }
        try SystemFileSystem().makeDirectory(path, mode: 0o700)
        try SystemFileSystem().syncDirectory(layout.root)
    }
}

/// What delivery threads hand back to the event loop: a job's report, or
/// the envelope of a round that is about to start.
enum Completion: Sendable {
    case report(Job, AttemptReport)
    case loaded(QueueID, SpoolLayout.Area?, LoadedEnvelope)
    /// Messages the start-up scan found, and its end.
    case dropsListed([String])
    case scanned([IndexedMessage])
    case scanFinished(SpoolScanner.IndexScan)
}

/// Completions waiting for the event loop, handed over from delivery threads.
final class CompletionQueue: Sendable {
    private let items = Mutex<[Completion]>([])

    func append(_ item: Completion) {
        items.withLock { $0.append(item) }
    }

    func takeAll() -> [Completion] {
        items.withLock { list in
            defer { list.removeAll() }
            return list
        }
    }
}

extension Daemon {
    /// Publishes the queue gauges: at most once a second, since finding the
    /// oldest queued message walks the index.
    func publishMetrics() {
        metricsDirty = true
        let time = clock.now
        guard time.timeIntervalSince(lastPublish) >= 1 else { return }
        lastPublish = time
        metricsDirty = false
        let tally = core.tally
        let outside = census.counts
        metrics.setQueue(messages: QueueCounts(queued: tally.queuedMessages, held: tally.heldMessages,
                                               corrupt: outside.corruptMessages, retired: outside.retiredMessages),
                         recipients: QueueCounts(queued: tally.queuedRecipients, held: tally.heldRecipients,
                                                 corrupt: outside.corruptRecipients, retired: outside.retiredRecipients))
        metrics.setOldestQueued(arrival: core.oldestQueued()?.date.timeIntervalSince1970)
        if notifier != nil, statusLine != lastStatus {
            lastStatus = statusLine
            notifier?.send("STATUS=\(statusLine)")
        }
    }

    /// The queue in a line, for `systemctl status`.
    var statusLine: String {
        let tally = core.tally
        return "\(tally.queuedMessages) queued, \(tally.heldMessages) held, \(machine.inFlight) attempts in flight"
    }

    /// TLSRPT counts that waited their write interval are written on the
    /// janitor's thread, never on the loop. The loop wakes at least once a
    /// minute (`timeout`), so a count waits at most about that long even when
    /// no delivery follows it.
    func writeTLSReportsDue() {
        guard let reports = settings.router.reports,
              clock.now.timeIntervalSince(lastReportWrite) >= reports.writeInterval else { return }
        lastReportWrite = clock.now
        janitor?.submit { reports.writeDue() }
    }

    /// `WATCHDOG=1` at half the watchdog interval, from the event loop itself:
    /// a loop that hangs stops feeding it, and systemd restarts the daemon.
    func feedWatchdog() {
        guard let interval = notifier?.watchdogInterval, clock.now.timeIntervalSince(lastWatchdog) >= interval else { return }
        lastWatchdog = clock.now
        notifier?.send("WATCHDOG=1")
    }
}
