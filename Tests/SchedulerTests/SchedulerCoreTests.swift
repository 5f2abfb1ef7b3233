import Foundation
import PosternCore
import Testing
@testable import Scheduler

/// The scheduler's state machine, driven by a fake clock (plain dates).
struct SchedulerCoreTests {
    let ids = QueueIDGenerator()
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: TimeInterval) -> Date { start.addingTimeInterval(seconds) }

    /// Starts every due message's round, as the daemon does after registering attempts.
    func startDue(_ core: SchedulerCore, now: Date, domains: [QueueID: [String]], delay: TimeInterval = 450) -> [QueueID] {
        let due = core.takeDue(now: now)
        for id in due { core.startRound(id, domains: domains[id] ?? [], nextAttempt: now.addingTimeInterval(delay)) }
        return due
    }

    /// A limit takes the earliest few; the rest stay due, and the next wake-up is now.
    @Test func dueInBatches() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let messages = (0..<5).map { _ in ids.next() }
        for (index, id) in messages.enumerated() { core.insert(id, nextAttempt: at(Double(index)), held: false) }
        #expect(core.takeDue(now: at(10), limit: 2) == Array(messages[0..<2]))
        #expect(core.nextWake() == at(2))
        #expect(core.takeDue(now: at(10), limit: 2) == Array(messages[2..<4]))
        #expect(core.takeDue(now: at(10), limit: 2) == [messages[4]])
        #expect(core.nextWake() == nil)
    }

    /// Due messages come out earliest first, and not before their time.
    @Test func dueOrder() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let (a, b, c) = (ids.next(), ids.next(), ids.next())
        core.insert(b, nextAttempt: at(20), held: false)
        core.insert(a, nextAttempt: at(10), held: false)
        core.insert(c, nextAttempt: at(30), held: false)
        #expect(core.takeDue(now: at(5)).isEmpty)
        #expect(core.nextWake() == at(10))
        #expect(core.takeDue(now: at(25)) == [a, b])
        #expect(core.nextWake() == at(30))
    }

    /// One delivery at a time per domain: the second message waits until the first job finishes.
    @Test func perDomainExclusion() {
        let core = SchedulerCore(limits: SchedulerLimits(maxConcurrent: 10, perDomain: 1))
        let (a, b) = (ids.next(), ids.next())
        core.insert(a, nextAttempt: nil, held: false)
        core.insert(b, nextAttempt: nil, held: false)
        _ = startDue(core, now: start, domains: [a: ["example.net"], b: ["example.net"]])
        let first = core.launchable()
        #expect(first == [Job(id: a, domain: "example.net")])
        #expect(core.launchable().isEmpty)
        #expect(core.finished(first[0]))
        #expect(core.launchable() == [Job(id: b, domain: "example.net")])
    }

    /// queue.per_domain above 1 allows that many at once.
    @Test func perDomainLimitTwo() {
        let core = SchedulerCore(limits: SchedulerLimits(maxConcurrent: 10, perDomain: 2))
        let messages = (0..<3).map { _ in ids.next() }
        for id in messages { core.insert(id, nextAttempt: nil, held: false) }
        _ = startDue(core, now: start, domains: Dictionary(uniqueKeysWithValues: messages.map { ($0, ["d"]) }))
        #expect(core.launchable().count == 2)
    }

    /// The global cap holds across domains, and a busy domain does not hold up the others.
    @Test func globalCapAndFairness() {
        let core = SchedulerCore(limits: SchedulerLimits(maxConcurrent: 2, perDomain: 1))
        let slow1 = ids.next(), slow2 = ids.next(), other = ids.next(), third = ids.next()
        let domains = [slow1: ["slow.example"], slow2: ["slow.example"], other: ["fast.example"], third: ["third.example"]]
        for id in domains.keys { core.insert(id, nextAttempt: nil, held: false) }
        _ = startDue(core, now: start, domains: domains)
        let launched = core.launchable()
        #expect(launched.count == 2)
        #expect(Set(launched.map(\.domain)).count == 2)
        #expect(core.running == 2)
        // Whatever finishes, the next launch is never a second slow.example job while one runs.
        core.finished(launched[0])
        let next = core.launchable()
        #expect(next.count == 1)
        let runningDomains = [launched[1].domain, next[0].domain]
        #expect(runningDomains.filter { $0 == "slow.example" }.count <= 1)
    }

    /// A message with recipients at two domains gets one job per domain; the round ends with the last.
    @Test func roundPerDomain() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let id = ids.next()
        core.insert(id, nextAttempt: nil, held: false)
        #expect(startDue(core, now: start, domains: [id: ["a.example", "b.example"]]) == [id])
        let jobs = core.launchable()
        #expect(Set(jobs) == [Job(id: id, domain: "a.example"), Job(id: id, domain: "b.example")])
        #expect(core.takeDue(now: at(10_000)).isEmpty)   // in a round: not due again
        #expect(!core.finished(jobs[0]))
        #expect(core.finished(jobs[1]))
        #expect(core.nextWake() == at(450))
        #expect(core.takeDue(now: at(449)).isEmpty)
        #expect(core.takeDue(now: at(450)) == [id])
    }

    /// A held message is never due; released, it is due at its recorded time.
    @Test func holdAndRelease() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let id = ids.next()
        core.insert(id, nextAttempt: at(10), held: true)
        #expect(core.takeDue(now: at(100)).isEmpty)
        #expect(core.nextWake() == nil)
        core.setHeld(id, false)
        #expect(core.takeDue(now: at(100)) == [id])
    }

    /// Holding a message drops its waiting jobs; its round ends without them.
    @Test func holdDropsReadyJobs() {
        let core = SchedulerCore(limits: SchedulerLimits(maxConcurrent: 1, perDomain: 1))
        let (a, b) = (ids.next(), ids.next())
        core.insert(a, nextAttempt: nil, held: false)
        core.insert(b, nextAttempt: nil, held: false)
        _ = startDue(core, now: start, domains: [a: ["d"], b: ["d"]])
        let first = core.launchable()
        #expect(first.map(\.id) == [a])
        // b's only job was waiting: holding it ends its round, and says so (the daemon ends its own too).
        #expect(core.setHeld(b, true))
        #expect(!core.inRound(b))
        #expect(!core.setHeld(a, true))   // a's job is running: its round ends when the job finishes
        core.setHeld(a, false)
        core.finished(first[0])
        #expect(core.launchable().isEmpty)
        #expect(!core.inRound(b))
    }

    /// A kick makes a waiting message due at once.
    @Test func kick() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let id = ids.next()
        core.insert(id, nextAttempt: at(3600), held: false)
        #expect(core.takeDue(now: at(1)).isEmpty)
        core.reschedule(id, at: at(1))
        #expect(core.takeDue(now: at(1)) == [id])
    }

    /// A removed message is neither due nor launched.
    @Test func removal() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let id = ids.next()
        core.insert(id, nextAttempt: nil, held: false)
        core.remove(id)
        #expect(core.takeDue(now: at(1)).isEmpty)
        #expect(core.count == 0)
    }

    /// The oldest message not held (the age gauge) follows arrivals, holds, releases and removals,
    /// whatever order they come in: checked against a walk of what is left after each step.
    @Test func oldestQueuedFollowsChanges() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let made = (0..<6).map { _ in ids.next() }.sorted()
        #expect(core.oldestQueued() == nil)
        var held: Set<QueueID> = []
        var present: Set<QueueID> = []
        func check() {
            #expect(core.oldestQueued() == present.subtracting(held).min())
        }
        for id in [made[3], made[1], made[4]] {
            core.insert(id, nextAttempt: nil, held: false)
            present.insert(id)
            check()
        }
        core.insert(made[1], nextAttempt: nil, held: true)       // the oldest held
        held.insert(made[1])
        check()
        core.insert(made[0], nextAttempt: nil, held: false)      // an older one arrives while unknown
        present.insert(made[0])
        check()
        core.remove(made[0])
        present.remove(made[0])
        check()
        core.insert(made[1], nextAttempt: at(60), held: false)   // released
        held.remove(made[1])
        check()
        for id in [made[1], made[3], made[4]] {
            core.remove(id)
            present.remove(id)
            check()
        }
        #expect(core.oldestQueued() == nil)
    }
}

struct BackoffTests {
    /// The default schedule is mox's: 7.5 m doubling to 8 h over 8 attempts.
    @Test func defaultSequence() {
        let backoff = Backoff()
        #expect((1...7).map { backoff.delay(after: $0, unit: 0) } == [450, 900, 1800, 3600, 7200, 14400, 28800])
        #expect(backoff.nominalSchedule(attempts: 8) == [450, 900, 1800, 3600, 7200, 14400, 28800])
    }

    /// Jitter stays within ±jitter on the base, scaled like the delay.
    @Test func jitterBounds() {
        let backoff = Backoff(base: 450, factor: 2, jitter: 5)
        var generator = SystemRandomNumberGenerator()
        for attempt in 1...8 {
            let nominal = 450 * pow(2, Double(attempt - 1))
            let spread = 5 * pow(2, Double(attempt - 1))
            for _ in 0..<200 {
                let delay = backoff.delay(after: attempt, using: &generator)
                #expect(delay >= nominal - spread && delay <= nominal + spread)
            }
        }
        #expect(backoff.delay(after: 1, unit: -1) == 445)
        #expect(backoff.delay(after: 1, unit: 1) == 455)
    }

    /// Factor 1 gives a constant interval; jitter 0 gives exact delays.
    @Test func constantAndExact() {
        let backoff = Backoff(base: 90, factor: 1, jitter: 0)
        var generator = SystemRandomNumberGenerator()
        #expect((1...5).map { backoff.delay(after: $0, using: &generator) } == [90, 90, 90, 90, 90])
    }
}

struct RetryPolicyTests {
    /// A temporary failure is retried until the last allowed attempt, then expires; permanent ones bounce at once.
    @Test func maxAttempts() {
        #expect((1...7).map { RetryPolicy.verdict(.temporary, attempts: $0, maxAttempts: 8) }.allSatisfy { $0 == .deferred })
        #expect(RetryPolicy.verdict(.temporary, attempts: 8, maxAttempts: 8) == .expired)
        #expect(RetryPolicy.verdict(.permanent, attempts: 1, maxAttempts: 8) == .bounced)
        #expect(RetryPolicy.verdict(.delivered, attempts: 8, maxAttempts: 8) == .sent)
        #expect(RetryPolicy.verdict(.temporary, attempts: 1, maxAttempts: 1) == .expired)
        #expect(!Verdict.deferred.isFinal && Verdict.expired.isFinal)
    }

    /// Driven by a fake clock through the scheduler: a message retried at each backoff expires after max attempts.
    @Test func scheduleUntilExpiry() {
        let core = SchedulerCore(limits: SchedulerLimits())
        let id = QueueIDGenerator().next()
        let backoff = Backoff(base: 450, factor: 2, jitter: 0)
        var clock = Date(timeIntervalSince1970: 1_800_000_000)
        core.insert(id, nextAttempt: nil, held: false)
        var verdicts: [Verdict] = []
        var times: [TimeInterval] = []
        for attempt in 1...8 {
            guard let due = core.nextWake() else { break }
            clock = max(clock, due)
            #expect(core.takeDue(now: clock) == [id])
            times.append(clock.timeIntervalSince1970)
            core.startRound(id, domains: ["x"], nextAttempt: clock.addingTimeInterval(backoff.delay(after: attempt, unit: 0)))
            let job = core.launchable()[0]
            core.finished(job)
            let verdict = RetryPolicy.verdict(.temporary, attempts: attempt, maxAttempts: 8)
            verdicts.append(verdict)
            if verdict.isFinal { core.remove(id) }
        }
        #expect(verdicts == Array(repeating: .deferred, count: 7) + [.expired])
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps == [450, 900, 1800, 3600, 7200, 14400, 28800])
        #expect(core.count == 0)
    }
}

struct DelayWarningTests {
    /// Over a message's whole retry schedule (fake clock), the delayed DSN is due exactly once, after attempt 5.
    @Test func exactlyOnceAtThreshold() {
        let backoff = Backoff(base: 450, factor: 2, jitter: 0)
        var clock = 0.0
        var due: [(attempt: Int, time: Double)] = []
        for attempt in 1...8 {
            if DelayWarning.isDue(attempts: attempt, threshold: 5, pendingRecipients: 1) { due.append((attempt, clock)) }
            clock += backoff.delay(after: attempt, unit: 0)
        }
        #expect(due.count == 1)
        #expect(due.first?.attempt == 5)
        #expect(due.first?.time == Double(450 + 900 + 1800 + 3600))   // 1 h 52.5 m after the first attempt, as mox
    }

    /// No warning when nothing is pending or the warning is off.
    @Test func notDue() {
        #expect(!DelayWarning.isDue(attempts: 5, threshold: 5, pendingRecipients: 0))
        #expect(!DelayWarning.isDue(attempts: 5, threshold: 0, pendingRecipients: 1))
    }
}
