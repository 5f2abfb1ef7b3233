import DequeModule
import Foundation
import HeapModule
import PosternCore

/// One delivery to do: the recipients of one message at one destination domain.
public struct Job: Sendable, Hashable, CustomStringConvertible {
    public let id: QueueID
    public let domain: String

    public init(id: QueueID, domain: String) {
        self.id = id
        self.domain = domain
    }

    public var description: String { "\(id)/\(domain)" }
}

/// Limits the scheduler enforces (`queue.max_concurrent`, `queue.per_domain`).
public struct SchedulerLimits: Sendable, Equatable {
    public var maxConcurrent: Int
    public var perDomain: Int

    public init(maxConcurrent: Int = 10, perDomain: Int = 1) {
        self.maxConcurrent = max(1, maxConcurrent)
        self.perDomain = max(1, perDomain)
    }
}

/// The scheduler's state, without I/O or threads: the index of queued messages,
/// a heap of due times, the per-domain queues of ready jobs, and the limits.
///
/// The daemon drives it: it inserts what the scanner and pickup find, asks for
/// the messages that are due (and registers their attempts on disk before
/// starting a round), asks for jobs to launch, and reports jobs finished. Tests
/// drive it the same way with a fake clock.
///
/// A round is one attempt of one message: a job per pending destination domain.
/// Jobs wait in their domain's queue while the domain is at its limit, so a busy
/// or slow domain never holds up another; the global limit caps them all.
public final class SchedulerCore {
    /// What the index keeps per message: 16 bytes beside its 16-byte ID
    /// (issue #15: a million queued in well under 150 bytes each). Destination
    /// domains are known only for messages in a round (`roundDomains`): the
    /// envelope, read when a message is due, is where they come from.
    struct Entry {
        var nextAttempt: TimeInterval
        /// Pending recipients, for the queue gauges (1 until the envelope of a
        /// message indexed from the start-up scan has been read).
        var recipients: UInt32
        var held: Bool
        var inRound: Bool
    }

    /// A due time in the heap. Entries are not removed from the heap when a
    /// message changes: one whose time is no longer its message's is skipped
    /// when it comes up (a stale entry), so the heap costs 24 bytes a message.
    struct Due: Comparable {
        let time: TimeInterval
        let id: QueueID
        static func < (lhs: Due, rhs: Due) -> Bool { (lhs.time, lhs.id) < (rhs.time, rhs.id) }
    }

    public var limits: SchedulerLimits
    private var entries: [QueueID: Entry] = [:]
    private var heap = Heap<Due>()
    /// The destination domains of the messages in a round.
    private var roundDomains: [QueueID: [String]] = [:]
    private var ready: [String: Deque<Job>] = [:]
    /// Domains with ready jobs, in the order they became ready (fairness).
    private var readyDomains = Deque<String>()
    private var busy: [String: Int] = [:]
    private var roundsLeft: [QueueID: Int] = [:]
    public private(set) var running = 0
    /// Messages and pending recipients by state, kept as entries change (for metrics).
    public private(set) var tally = QueueTally()
    /// The oldest message not held, kept as messages come (queue IDs sort by
    /// time); nil with `oldestKnown` false once it left or was held, until
    /// `oldestQueued` walks the index again.
    private var oldest: QueueID?
    private var oldestKnown = true

    public init(limits: SchedulerLimits) {
        self.limits = limits
    }

    public var count: Int { entries.count }
    /// Every message in the index.
    public var ids: [QueueID] { Array(entries.keys) }
    public func contains(_ id: QueueID) -> Bool { entries[id] != nil }
    public func isHeld(_ id: QueueID) -> Bool { entries[id]?.held ?? false }
    public func inRound(_ id: QueueID) -> Bool { entries[id]?.inRound ?? false }

    /// Adds or replaces a message. `nextAttempt` nil means due now.
    public func insert(_ id: QueueID, nextAttempt: Date?, held: Bool, recipients: Int = 1) {
        insert(id, time: nextAttempt?.timeIntervalSince1970 ?? 0, held: held, recipients: recipients)
    }

    /// `insert` with the time in seconds since the epoch, as the start-up
    /// scan has it from `stat` (no `Date` for a million messages).
    public func insert(_ id: QueueID, time: TimeInterval, held: Bool, recipients: Int = 1) {
        let old = entries[id]
        let entry = Entry(nextAttempt: time, recipients: UInt32(clamping: recipients), held: held,
                          inRound: old?.inRound ?? false)
        if let old { tally.remove(old) }
        tally.add(entry)
        entries[id] = entry
        if held, id == oldest {
            oldestKnown = false
        } else if !held, oldestKnown, oldest == nil || id < oldest! {
            oldest = id
        }
        // Not when a message stays due at the same time (a duplicate entry).
        if !held, old == nil || old!.held || old!.nextAttempt != time || old!.inRound {
            heap.insert(Due(time: time, id: id))
        }
    }

    /// Whether a heap entry is still its message's due time.
    private func isCurrent(_ due: Due) -> Bool {
        guard let entry = entries[due.id] else { return false }
        return entry.nextAttempt == due.time && !entry.held && !entry.inRound
    }

    /// The oldest message not held. Kept as messages come; a walk over the
    /// index only after the oldest left or was held, and the daemon asks at
    /// most once a second (a million entries: a few milliseconds).
    public func oldestQueued() -> QueueID? {
        if !oldestKnown {
            oldest = nil
            for (id, entry) in entries where !entry.held && (oldest == nil || id < oldest!) { oldest = id }
            oldestKnown = true
        }
        return oldest
    }

    /// Forgets a message (delivered, deleted, quarantined). Its ready jobs are dropped.
    public func remove(_ id: QueueID) {
        guard let old = entries.removeValue(forKey: id) else { return }
        tally.remove(old)
        if id == oldest { oldestKnown = false }
        roundDomains[id] = nil
        // Only a message in a round has ready jobs: no sweep for the others.
        guard old.inRound else { return }
        for domain in Array(ready.keys) {
            ready[domain]?.removeAll { $0.id == id }
            if ready[domain]?.isEmpty == true { ready[domain] = nil }
        }
        readyDomains.removeAll { ready[$0] == nil }
    }

    /// Holds or releases a message; a released message is due at its recorded time.
    /// Returns true when holding it ended its round (no job of it was running,
    /// and its waiting ones were dropped): the caller must end the round too.
    @discardableResult
    public func setHeld(_ id: QueueID, _ held: Bool) -> Bool {
        guard let entry = entries[id] else { return false }
        insert(id, time: entry.nextAttempt, held: held, recipients: Int(entry.recipients))
        guard held, entry.inRound else { return false }
        return remove(readyJobsOf: id)
    }

    /// Makes a message due at `time` (a kick is `now`).
    public func reschedule(_ id: QueueID, at time: Date, recipients: Int? = nil) {
        guard let entry = entries[id] else { return }
        insert(id, nextAttempt: time, held: entry.held, recipients: recipients ?? Int(entry.recipients))
    }

    /// Messages due at `now` that are not held and not already in a round,
    /// earliest first. The caller takes each into a round (`begin` while its
    /// envelope is read, then `startRound`), and registers its attempt when
    /// its first job launches. At most `limit` of them: the rest stay due for
    /// the next call.
    public func takeDue(now: Date, limit count: Int = .max) -> [QueueID] {
        var due: [QueueID] = []
        let limit = now.timeIntervalSince1970
        var last: Due?
        while due.count < count, let top = heap.min, top.time <= limit {
            heap.removeMin()
            guard isCurrent(top), top != last else { continue }
            last = top
            due.append(top.id)
        }
        return due
    }

    /// Takes a due message into a round whose destinations are not known yet
    /// (its envelope is being read): it is not due again until `startRound`
    /// or `abandonRound`.
    public func begin(_ id: QueueID) {
        entries[id]?.inRound = true
    }

    /// Starts an attempt round: one job per domain, due again at `nextAttempt`
    /// (unchanged when nil) if recipients remain when the round ends.
    public func startRound(_ id: QueueID, domains: [String], nextAttempt: Date?) {
        guard var entry = entries[id] else { return }
        entry.inRound = true
        if let nextAttempt { entry.nextAttempt = nextAttempt.timeIntervalSince1970 }
        entries[id] = entry
        roundDomains[id] = domains
        roundsLeft[id] = domains.count
        for domain in domains {
            if ready[domain] == nil { readyDomains.append(domain) }
            ready[domain, default: []].append(Job(id: id, domain: domain))
        }
        if domains.isEmpty { endRound(id) }
    }

    /// The destination domains of a message in a round (from its envelope,
    /// read for the round); empty for any other.
    public func domains(of id: QueueID) -> [String] {
        roundDomains[id] ?? []
    }

    /// Ends a round that turned out not to start: its envelope said it is not
    /// due, held or gone, or its launched job (already reported `finished`)
    /// found it changed. Its waiting jobs are dropped; the caller reschedules,
    /// holds or removes it.
    public func abandonRound(_ id: QueueID) {
        _ = remove(readyJobsOf: id)
        if roundsLeft[id] != nil || entries[id]?.inRound == true { endRound(id) }
    }

    /// Sets when a message in a round is due again should recipients remain:
    /// its attempt was registered with that time. The round's end puts it
    /// back in the heap there, once.
    public func setNextAttempt(_ id: QueueID, _ time: Date) {
        guard var entry = entries[id], entry.inRound else { return }
        entry.nextAttempt = time.timeIntervalSince1970
        entries[id] = entry
    }

    /// Updates what the index knows of a message's pending recipients, without making it due at another time (the end of a round).
    public func refresh(_ id: QueueID, recipients: Int) {
        guard var entry = entries[id] else { return }
        tally.remove(entry)
        entry.recipients = UInt32(clamping: recipients)
        tally.add(entry)
        entries[id] = entry
    }

    /// Jobs that may start now within the limits; they count as running.
    public func launchable() -> [Job] {
        var jobs: [Job] = []
        var rotated = 0
        while running < limits.maxConcurrent, rotated < readyDomains.count {
            let domain = readyDomains.removeFirst()
            guard busy[domain, default: 0] < limits.perDomain, let job = ready[domain]?.popFirst() else {
                readyDomains.append(domain)
                rotated += 1
                continue
            }
            rotated = 0
            busy[domain, default: 0] += 1
            running += 1
            jobs.append(job)
            if ready[domain]?.isEmpty == true { ready[domain] = nil } else { readyDomains.append(domain) }
        }
        return jobs
    }

    /// A job ended. Returns true when it was the last of its message's round.
    @discardableResult
    public func finished(_ job: Job) -> Bool {
        running -= 1
        busy[job.domain, default: 1] -= 1
        if busy[job.domain] == 0 { busy[job.domain] = nil }
        guard let left = roundsLeft[job.id] else { return false }
        if left > 1 {
            roundsLeft[job.id] = left - 1
            return false
        }
        endRound(job.id)
        return true
    }

    /// Ends a round: the message waits for its next attempt (or was removed).
    private func endRound(_ id: QueueID) {
        roundsLeft[id] = nil
        roundDomains[id] = nil
        guard var entry = entries[id] else { return }
        entry.inRound = false
        entries[id] = entry
        if !entry.held { heap.insert(Due(time: entry.nextAttempt, id: id)) }
    }

    /// Drops a message's waiting jobs; true when that ended its round.
    private func remove(readyJobsOf id: QueueID) -> Bool {
        var dropped = 0
        for domain in Array(ready.keys) {
            let before = ready[domain]?.count ?? 0
            ready[domain]?.removeAll { $0.id == id }
            dropped += before - (ready[domain]?.count ?? 0)
            if ready[domain]?.isEmpty == true { ready[domain] = nil }
        }
        readyDomains.removeAll { ready[$0] == nil }
        guard dropped > 0, let left = roundsLeft[id] else { return false }
        guard left <= dropped else {
            roundsLeft[id] = left - dropped
            return false
        }
        endRound(id)
        return true
    }

    /// When the earliest waiting message is due (nil when nothing waits). Jobs
    /// waiting for a domain are not times: a finished job wakes the daemon.
    public func nextWake() -> Date? {
        while let top = heap.min {
            if isCurrent(top) { return Date(timeIntervalSince1970: top.time) }
            heap.removeMin()
        }
        return nil
    }
}

/// Messages and pending recipients in the index, queued and held.
public struct QueueTally: Sendable, Equatable {
    public var queuedMessages = 0
    public var heldMessages = 0
    public var queuedRecipients = 0
    public var heldRecipients = 0

    public init() {}

    mutating func add(_ entry: SchedulerCore.Entry, sign: Int = 1) {
        if entry.held {
            heldMessages += sign
            heldRecipients += sign * Int(entry.recipients)
        } else {
            queuedMessages += sign
            queuedRecipients += sign * Int(entry.recipients)
        }
    }

    mutating func remove(_ entry: SchedulerCore.Entry) {
        add(entry, sign: -1)
    }
}
