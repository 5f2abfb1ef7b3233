import Delivery
import Foundation
import PosternCore
import Scheduler
import Spool
@testable import Daemon

/// The round logic's world in memory: envelopes by area, and a record of
/// every effect, so that tests drive `RoundMachine` with a `ManualClock`
/// and check what it did, without threads, sockets or waiting.
final class MemorySpool: RoundEffects {
    weak var machine: RoundMachine?
    var areas: [QueueID: SpoolLayout.Area] = [:]
    var envelopes: [QueueID: Envelope] = [:]
    /// Each envelope write, with its durability.
    var writes: [(id: QueueID, durability: MessageStore.Durability)] = []
    var registrations: [(id: QueueID, next: Date)] = []
    var launched: [Job] = []
    var canceled: [Job] = []
    var failureDSNs: [[String]] = []
    var delayedDSNs: [(recipients: [String], schedule: [Date])] = []
    var removed: [QueueID] = []
    var responses: [(request: QueueID, outcomes: [QueueID: ControlOutcome])] = []
    var reportsDoubleBounces = true
    /// Messages whose file carries a registration mark, as a reader finds them after a crash.
    var recovering: Set<QueueID> = []

    /// Adds a message to `queue/`, due now, and to the machine's index.
    @discardableResult
    func add(_ recipients: [String], sender: String? = "alice@example.org", at time: Date) -> QueueID {
        let id = QueueIDGenerator(now: { time }).next()
        let envelope = Envelope(id: id, sender: sender, recipients: recipients.map { Recipient(address: $0) },
                                arrival: time, size: 10, uid: 0)
        areas[id] = .queue
        envelopes[id] = envelope
        machine?.core.insert(id, nextAttempt: nil, held: false,
                             recipients: recipients.count)
        return id
    }

    func area(of id: QueueID) -> SpoolLayout.Area? { areas[id] }

    func locate(_ id: QueueID) -> (SpoolLayout.Area, Envelope)? {
        guard let area = areas[id], let envelope = envelopes[id] else { return nil }
        return (area, envelope)
    }

    func open(_ id: QueueID, in area: SpoolLayout.Area) -> LoadedEnvelope {
        guard let envelope = envelopes[id] else { return .damaged("missing") }
        return .envelope(envelope, recovered: recovering.contains(id))
    }

    /// At once, as if a delivery thread had read it before the loop went on.
    func load(_ id: QueueID) {
        machine?.loaded(id, area: areas[id], areas[id].map { open(id, in: $0) } ?? .damaged("missing"))
    }

    func register(_ found: Envelope, recovered: Bool, nextAttempt: Date) throws {
        registrations.append((found.id, nextAttempt))
    }

    func persist(_ envelope: Envelope, in area: SpoolLayout.Area, durability: MessageStore.Durability) throws {
        envelopes[envelope.id] = envelope
        writes.append((envelope.id, durability))
    }

    func remove(_ id: QueueID, from area: SpoolLayout.Area, retire: Bool) throws {
        areas[id] = nil
        envelopes[id] = nil
        removed.append(id)
    }

    func keepHeld(_ envelope: Envelope, from area: SpoolLayout.Area) throws {
        areas[envelope.id] = .hold
        envelopes[envelope.id] = envelope
    }

    func quarantine(_ id: QueueID, in area: SpoolLayout.Area, reason: String) {
        areas[id] = nil
        envelopes[id] = nil
    }

    /// What the daemon's reconcile does, for the cases tests make.
    func reconcile(_ id: QueueID) {
        guard let machine else { return }
        guard let area = areas[id] else {
            if !machine.core.inRound(id) { machine.core.remove(id) }
            return
        }
        machine.setHeld(id, area == .hold)
    }

    func sendPending(_ envelope: inout Envelope) -> Bool {
        guard !envelope.dsnPending.isEmpty else { return true }
        failureDSNs.append(envelope.dsnPending)
        envelope.dsnPending = []
        return true
    }

    func delayed(_ envelope: Envelope, recipients: [Recipient], schedule: [Date]) {
        delayedDSNs.append((recipients.map(\.address), schedule))
    }

    func launch(_ job: Job, envelope: Envelope) { launched.append(job) }
    func cancel(_ job: Job) { canceled.append(job) }

    func apply(_ action: ControlAction, to ids: [QueueID]) -> [QueueID: ControlOutcome] {
        var outcomes: [QueueID: ControlOutcome] = [:]
        for id in ids {
            switch (action, areas[id]) {
            case (.hold, .queue?): areas[id] = .hold; outcomes[id] = .changed
            case (.release, .hold?): areas[id] = .queue; outcomes[id] = .changed
            case (.delete, _?): areas[id] = nil; envelopes[id] = nil; outcomes[id] = .changed
            default: outcomes[id] = .unchanged("not applicable")
            }
        }
        return outcomes
    }

    func respond(to request: ControlRequest, with outcomes: [QueueID: ControlOutcome]) {
        responses.append((request.id, outcomes))
    }
}
