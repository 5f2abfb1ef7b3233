import Foundation
import Glibc
import PosternCore

/// Applies operator actions to accepted messages, by the write protocols of
/// `spool-layout.md`. Only the holder of the spool lock calls it: the daemon
/// when it runs, the command itself when no daemon runs. That single writer is
/// what keeps an action from racing a delivery attempt's envelope update.
public struct QueueControl {
    public let layout: SpoolLayout
    public var store: MessageStore
    public var now: () -> Date = { Date() }

    public init(layout: SpoolLayout) {
        self.layout = layout
        store = MessageStore(layout: layout)
    }

    /// Where a message is among the accepted areas, and its envelope.
    public func locate(_ id: QueueID) -> (area: SpoolLayout.Area, envelope: Envelope)? {
        guard let area = area(of: id) else { return nil }
        // A message that fails its checks is left to the scanner's quarantine.
        guard let envelope = try? MessageDirectory(path: layout.path(area, id))
            .load(id: id, trustedOwners: MessageDirectory.trustedOwners(of: layout)) else { return nil }
        return (area, envelope)
    }

    /// Which accepted area holds a message, by `lstat` alone: for callers that
    /// already have its envelope and only need to know where to write it.
    public func area(of id: QueueID) -> SpoolLayout.Area? {
        Self.area(of: id, in: layout)
    }

    /// The same, for a thread that holds no `QueueControl`.
    public static func area(of id: QueueID, in layout: SpoolLayout) -> SpoolLayout.Area? {
        [SpoolLayout.Area.queue, .hold].first { MessageDirectory.lstatus(layout.path($0, id)) != nil }
    }

    /// Applies `action` to many messages. Holds and releases move each
    /// directory by a rename and then fsync the two areas once for all, as
    /// spool-layout.md 6.3 allows: an answer is given only after that sync,
    /// and a crash before it leaves some messages where they were, which the
    /// operator sees and repeats.
    public func apply(_ action: ControlAction, to ids: [QueueID]) -> [QueueID: ControlOutcome] {
        var outcomes: [QueueID: ControlOutcome] = [:]
        for id in ids { outcomes[id] = apply(action, to: id, sync: false) }
        let moved: [SpoolLayout.Area] = switch action {
        case .hold: [.hold, .queue]
        case .release: [.queue, .hold]
        default: []
        }
        if outcomes.values.contains(.changed) {
            do {
                try store.syncDirectories(moved)
            } catch {
                return outcomes.mapValues { $0 == .changed ? .unchanged("moved, but not synced to disk: \(error)") : $0 }
            }
        }
        return outcomes
    }

    /// Applies `action` to one message; `sync: false` leaves the fsync of the
    /// areas a hold or release moved between to the caller.
    public func apply(_ action: ControlAction, to id: QueueID, sync: Bool = true) -> ControlOutcome {
        if case .release = action {
            // A rename and nothing else: no envelope read or written (a stale
            // hold_reason is ignored outside hold/, spool-layout.md 5), so that
            // releasing ten thousand messages after an incident takes a moment.
            guard MessageDirectory.lstatus(layout.path(.hold, id)) != nil else {
                return area(of: id) == nil ? .unchanged("no such message in queue/ or hold/") : .unchanged("not held")
            }
            do {
                try store.move(id, from: .hold, to: .queue, sync: sync)
            } catch {
                return .unchanged("\(error)")
            }
            return .changed
        }
        guard let (area, found) = locate(id) else { return .unchanged("no such message in queue/ or hold/") }
        var envelope = found
        // A release left it: in queue/ it means nothing, and this write drops it.
        if area == .queue { envelope.holdReason = nil }
        do {
            switch action {
            case .kick(let transport):
                guard area == .queue else { return .unchanged("held; release it first") }
                envelope.nextAttempt = nil
                if let transport { envelope.transport = transport }
                try store.update(envelope, in: .queue, durability: .processCrash)
            case .hold(let reason):
                guard area == .queue else { return .unchanged("already held") }
                try store.move(id, from: .queue, to: .hold, sync: sync)
                // Written only when it changes: a hold of ten thousand costs renames.
                if envelope.holdReason != reason {
                    envelope.holdReason = reason
                    try store.update(envelope, in: .hold, durability: .processCrash)
                }
            case .release:
                return .unchanged("not held")   // handled above
            case .delete:
                // Synced: a deleted message must not come back after a power loss.
                try store.remove(id, from: area, sync: true)
            case .fail(let reason):
                let pending = envelope.recipients.indices.filter { envelope.recipients[$0].state == .pending }
                guard !pending.isEmpty else { return .unchanged("no pending recipients") }
                let result = DeliveryResult(time: now(), text: "failed by the operator" + (reason.map { ": \($0)" } ?? ""), permanent: true)
                for index in pending {
                    envelope.recipients[index].state = .failed
                    envelope.recipients[index].lastResult = result
                    envelope.dsnPending.append(envelope.recipients[index].address)
                }
                envelope.lastResult = result
                try store.update(envelope, in: area, durability: .powerLoss)
            case .requireTLS(let value):
                guard envelope.requireTLS != value else { return .unchanged("already set") }
                envelope.requireTLS = value
                try store.update(envelope, in: area, durability: .powerLoss)
            }
        } catch {
            return .unchanged("\(error)")
        }
        return .changed
    }
}
