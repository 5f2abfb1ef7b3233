import Foundation
import Logging
import PosternCore
import Scheduler
import Spool

extension RoundMachine {
    /// Applies control requests. An action on a message in an attempt round
    /// waits for the round to end, so it never races the attempt's envelope
    /// update; the response goes out when every message of the request has
    /// been dealt with.
    func process(_ requests: [ControlRequest]) {
        guard let effects else { return }
        for request in requests where waitingRequests[request.id] == nil {
            var open = 0
            var now: [QueueID] = []
            for id in request.messages {
                if isInRound(id) {
                    deferredControl[id, default: []].append((request, request.action))
                    open += 1
                } else {
                    _ = callOff(id)
                    now.append(id)
                }
            }
            // One batch, synced once (QueueControl), then the index follows each change.
            var outcomes = effects.apply(request.action, to: now)
            for id in now { outcomes[id] = follow(request.action, id, outcomes[id] ?? .unchanged("not applied")) }
            if open == 0 {
                effects.respond(to: request, with: outcomes)
            } else {
                waitingRequests[request.id] = (request, outcomes, open)
            }
        }
    }

    /// Logs an applied action and brings the index in line with it.
    func follow(_ action: ControlAction, _ id: QueueID, _ outcome: ControlOutcome) -> ControlOutcome {
        logger.info("control", metadata: ["id": "\(id)", "action": "\(action.name)", "result": "\(outcome)"])
        guard outcome == .changed, let effects else { return outcome }
        switch action {
        case .kick:
            core.reschedule(id, at: now)
        case .hold, .release:
            // Where it went is known: no need to look (ten thousand at a time after an incident).
            if core.contains(id) {
                setHeld(id, { if case .hold = action { true } else { false } }())
            } else {
                effects.reconcile(id)
            }
        case .delete:
            effects.reconcile(id)
        case .fail:
            // Every recipient is final now; finalize sends the DSN the action marked pending.
            if let (area, envelope) = effects.locate(id) { finalize(id, envelope: envelope, area: area) }
        case .requireTLS:
            break
        }
        return outcome
    }

    /// A message known to the index is now held, or released. Held mid-round
    /// with no job running, its round is over: ended here too, so that its
    /// DSNs and the control requests waiting for it are not lost.
    func setHeld(_ id: QueueID, _ held: Bool) {
        if held { _ = callOff(id) }
        if core.isHeld(id) != held, core.setHeld(id, held) { endRound(id) }
    }

    /// The control requests that waited for `id`'s round, applied now that it ended.
    func applyDeferredControl(_ id: QueueID) {
        guard let waiting = deferredControl.removeValue(forKey: id), let effects else { return }
        for (request, action) in waiting {
            let outcome = follow(action, id, effects.apply(action, to: [id])[id] ?? .unchanged("not applied"))
            guard var entry = waitingRequests[request.id] else { continue }
            entry.outcomes[id] = outcome
            entry.open -= 1
            if entry.open == 0 {
                waitingRequests[request.id] = nil
                effects.respond(to: request, with: entry.outcomes)
            } else {
                waitingRequests[request.id] = entry
            }
        }
    }
}
