import Foundation
import Logging
import PosternCore
import Scheduler
import Spool

extension Daemon {
    /// Applies the control requests waiting in `control/`. An action on a
    /// message in an attempt round waits for the round to end, so it never
    /// races the attempt's envelope update; the response goes out when every
    /// message of the request has been dealt with.
    func processControlRequests() {
        let (requests, invalid) = mailbox.pending()
        for name in invalid { logger.warning("unreadable control request removed", metadata: ["entry": "\(name)"]) }
        for request in requests where waitingRequests[request.id] == nil {
            var open = 0
            var now: [QueueID] = []
            for id in request.messages {
                if rounds[id] != nil {
                    deferredControl[id, default: []].append((request, request.action))
                    open += 1
                } else {
                    now.append(id)
                }
            }
            // One batch, synced once (QueueControl), then the index follows each change.
            var outcomes = control.apply(request.action, to: now)
            for id in now { outcomes[id] = follow(request.action, id, outcomes[id] ?? .unchanged("not applied")) }
            if open == 0 {
                respond(request, outcomes)
            } else {
                waitingRequests[request.id] = (request, outcomes, open)
            }
        }
    }

    /// Applies one action and brings the index in line with it.
    func apply(_ action: ControlAction, to id: QueueID) -> ControlOutcome {
        follow(action, id, control.apply(action, to: id))
    }

    /// Logs an applied action and brings the index in line with it.
    func follow(_ action: ControlAction, _ id: QueueID, _ outcome: ControlOutcome) -> ControlOutcome {
        logger.info("control", metadata: ["id": "\(id)", "action": "\(action.name)", "result": "\(outcome)"])
        guard outcome == .changed else { return outcome }
        switch action {
        case .kick:
            core.reschedule(id, at: now())
        case .hold, .release, .delete:
            reconcile(id)
        case .fail:
            // Every recipient is final now; finalize sends the DSN the action marked pending.
            if let (area, envelope) = control.locate(id) { finalize(id, envelope: envelope, area: area) }
        case .requireTLS:
            break
        }
        return outcome
    }

    func applyDeferredControl(_ id: QueueID) {
        guard let waiting = deferredControl.removeValue(forKey: id) else { return }
        for (request, action) in waiting {
            let outcome = apply(action, to: id)
            guard var entry = waitingRequests[request.id] else { continue }
            entry.outcomes[id] = outcome
            entry.open -= 1
            if entry.open == 0 {
                waitingRequests[request.id] = nil
                respond(request, entry.outcomes)
            } else {
                waitingRequests[request.id] = entry
            }
        }
    }

    private func respond(_ request: ControlRequest, _ outcomes: [QueueID: ControlOutcome]) {
        do {
            try mailbox.respond(to: request, with: ControlResponse(outcomes: outcomes))
        } catch {
            logger.error("cannot answer a control request", metadata: ["request": "\(request.id)", "error": "\(error)"])
        }
    }
}
