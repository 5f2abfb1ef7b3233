import Delivery
import Foundation
import Logging
import Monitoring
import PosternCore
import Scheduler
import Spool
import Testing
@testable import Daemon

/// The round logic in-process: a manual clock, an in-memory spool, reports made up by the test.
struct RoundMachineTests {
    let clock = ManualClock()
    let spool = MemorySpool()
    let machine: RoundMachine

    init() {
        var settings = DaemonSettings(hostname: "mail.postern.test")
        settings.backoff = Backoff(base: 450, factor: 2, jitter: 0)
        settings.limits = SchedulerLimits(maxConcurrent: 2, perDomain: 1)
        settings.maxAttempts = 3
        settings.delayWarningAttempts = 2
        machine = RoundMachine(settings: settings, clock: clock, logger: Logger(label: "test"), metrics: PosternMetrics())
        machine.effects = spool
        spool.machine = machine
    }

    func report(_ job: Job, _ outcome: AttemptReport.Outcome, code: Int) -> AttemptReport {
        let recipients = spool.envelopes[job.id]!.recipients.filter { $0.domain == job.domain && $0.state == .pending }.map(\.address)
        return .all(recipients, outcome, code: code, text: "\(code) reply")
    }

    /// Five messages due with two delivery threads: only the two that start are registered, each one
    /// backoff ahead; the others are neither registered nor launched until a thread comes free.
    @Test func registersOnlyWhatStarts() {
        let ids = (0..<5).map { spool.add(["r\($0)@d\($0).example"], at: clock.now) }
        machine.schedule()
        #expect(spool.launched.count == 2)
        #expect(spool.registrations.map(\.id) == spool.launched.map(\.id))
        #expect(spool.registrations.allSatisfy { $0.next == clock.now.addingTimeInterval(450) })
        let first = spool.launched[0]
        machine.finish(first, report(first, .delivered, code: 250))
        machine.schedule()
        #expect(spool.launched.count == 3 && spool.registrations.count == 3)
        #expect(spool.removed == [first.id])
        #expect(Set(ids).isSuperset(of: spool.launched.map(\.id)))
    }

    /// A deferral is written without fsync and the message waits its backoff; at the last attempt the
    /// recipient expires: written with fsync, its failure DSN sent, the message removed. The delayed
    /// DSN went out once, after the second attempt, with the remaining schedule.
    @Test func deferralsBackoffExpiryAndDSNs() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        var delays: [TimeInterval] = []
        for attempt in 1...3 {
            machine.schedule()
            let job = try #require(spool.launched.last)
            #expect(spool.launched.count == attempt)
            let registered = spool.registrations.last!.next
            delays.append(registered.timeIntervalSince(clock.now))
            machine.finish(job, report(job, .deferred, code: 451))
            machine.schedule()
            #expect(spool.launched.count == attempt, "not due again before its backoff")
            clock.set(registered)
        }
        #expect(delays == [450, 900, 1800])
        #expect(spool.writes.map(\.durability) == [.processCrash, .processCrash, .powerLoss])
        #expect(spool.failureDSNs == [["bob@example.net"]])
        #expect(spool.delayedDSNs.count == 1 && spool.delayedDSNs[0].recipients == ["bob@example.net"])
        #expect(spool.removed == [id])
        #expect(!machine.core.contains(id))
    }

    /// An attempt's TLS policy and outcome reach its history entry and its log line (issue #16).
    @Test func policyInHistoryAndLog() throws {
        let now = clock.now
        let id = QueueIDGenerator(now: { now }).next()
        var envelope = Envelope(id: id, sender: "alice@example.org", recipients: [Recipient(address: "bob@example.net")],
                                arrival: clock.now, size: 10, uid: 0)
        envelope.attempts = 1
        var report = AttemptReport.all(["bob@example.net"], .delivered, code: 250, text: "250 ok", host: "mx.example.net", ip: "192.0.2.1")
        report.policy = .dane
        report.tlsOutcome = .dane
        report.tlsMode = .required
        report.mtaSTSFetchError = "timed out"
        let (_, lines) = RoundMachine.apply(report, to: &envelope, domain: "example.net", at: clock.now, maxAttempts: 3)
        #expect(envelope.history.last?.policy == .dane)
        #expect(lines.first?["tls_policy"] == "dane")
        #expect(lines.first?["tls_outcome"] == "dane")
        #expect(lines.first?["mta_sts_error"] == "timed out")
        // The history entry survives the envelope codec.
        #expect(try Envelope.decode(envelope.encoded()).history.last?.policy == .dane)
    }

    /// A control request for a message in a round waits for the round's end, and is answered then.
    @Test func controlWaitsForTheRound() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        machine.schedule()
        let job = try #require(spool.launched.first)
        let request = ControlRequest(id: QueueIDGenerator().next(), action: .hold(reason: nil), messages: [id])
        machine.process([request])
        #expect(spool.responses.isEmpty)
        #expect(spool.areas[id] == .queue)
        machine.finish(job, report(job, .deferred, code: 451))
        #expect(spool.responses.count == 1 && spool.responses[0].outcomes[id] == .changed)
        #expect(spool.areas[id] == .hold && machine.core.isHeld(id))
        clock.advance(by: 3600)
        machine.schedule()
        #expect(spool.launched.count == 1, "held: never started again")
    }

    /// A message whose round waits for its domain (per_domain 1) is not in a registered round: a hold
    /// applies at once, and its job, when its turn comes, is dropped without being registered.
    @Test func holdWhileWaitingForTheDomain() throws {
        let both = [spool.add(["a@same.example"], at: clock.now), spool.add(["b@same.example"], at: clock.now)]
        machine.schedule()
        #expect(spool.launched.count == 1)
        let first = spool.launched[0].id
        let second = both.first { $0 != first }!
        machine.process([ControlRequest(id: QueueIDGenerator().next(), action: .hold(reason: nil), messages: [second])])
        #expect(spool.responses.count == 1 && spool.areas[second] == .hold)
        let job = spool.launched[0]
        machine.finish(job, report(job, .delivered, code: 250))
        machine.schedule()
        #expect(spool.launched.map(\.id) == [first])
        #expect(spool.registrations.map(\.id) == [first])
        #expect(machine.core.isHeld(second))
    }

    /// An attempt past queue.attempt_timeout is aborted once, and its report is a deferral that says why.
    @Test func attemptDeadline() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        machine.schedule()
        let job = try #require(spool.launched.first)
        #expect(machine.nextWake == clock.now.addingTimeInterval(machine.settings.attemptTimeout))
        clock.advance(by: machine.settings.attemptTimeout + 1)
        machine.abortOverdueAttempts()
        machine.abortOverdueAttempts()
        #expect(spool.canceled == [job])
        machine.finish(job, .all(["bob@example.net"], .deferred, text: "connection closed"))
        let result = try #require(spool.envelopes[id]?.recipients[0].lastResult)
        #expect(result.text.contains("queue.attempt_timeout"))
        #expect(machine.inFlight == 0)
    }

    /// A bounce that bounces, with no one to tell, is kept in hold/ with a reason, never removed, and counted.
    @Test func doubleBounceIsKept() throws {
        spool.reportsDoubleBounces = false
        let id = spool.add(["gone@example.net"], sender: nil, at: clock.now)
        machine.schedule()
        let job = try #require(spool.launched.first)
        machine.finish(job, report(job, .failed, code: 550))
        #expect(spool.areas[id] == .hold)
        #expect(spool.envelopes[id]?.holdReason?.contains("postmaster") == true)
        #expect(spool.removed.isEmpty)
        #expect(machine.metrics.exposition().contains("postern_double_bounces_total 1"))
    }

    /// The daemon died during a message's last allowed attempt: after the restart the reader counts that
    /// attempt (its mark), and the message is not attempted a fourth time with max_attempts 3; its recipient
    /// expires with the reason (fsynced), its failure DSN is sent and it is removed. Found by
    /// tools/crash-harness.py: each crash during the last attempt bought one more.
    @Test func interruptedLastAttemptExpires() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        var envelope = try #require(spool.envelopes[id])
        envelope.attempts = 3
        envelope.recipients[0].attempts = 3
        envelope.nextAttempt = clock.now
        spool.envelopes[id] = envelope
        spool.recovering.insert(id)
        machine.schedule()
        #expect(spool.launched.isEmpty && spool.registrations.isEmpty)
        #expect(spool.failureDSNs == [["bob@example.net"]])
        #expect(spool.writes.map(\.durability) == [.powerLoss])
        #expect(spool.removed == [id])
        #expect(!machine.core.contains(id))
        #expect(machine.metrics.exposition().contains(#"postern_deliveries_total{result="expired",status_class="none"} 1"#))
    }

    /// With attempts left, a recovered message is attempted again as usual.
    @Test func interruptedEarlierAttemptIsRetried() throws {
        let id = spool.add(["bob@example.net"], at: clock.now)
        spool.envelopes[id]?.attempts = 2
        spool.recovering.insert(id)
        machine.schedule()
        #expect(spool.launched.map(\.id) == [id])
        #expect(spool.failureDSNs.isEmpty)
    }
}
