import Foundation
import PosternCore
import Spool
import Synchronization

/// Messages the daemon's own SMTP listener renamed straight into `queue/`
/// (spool-layout.md 6.1, "Straight into the queue"), handed to the event
/// loop without a read of the spool.
///
/// The listener says `expect` before its rename and `queued` once the rename
/// is durable; the loop skips the inotify event of an expected entry, and
/// indexes the message, due at once, when it is posted. The listener posts
/// the envelope's bytes with it; they are decoded here, on the listener's
/// thread, and the message's first load takes them (`envelope(for:)`) instead
/// of opening, reading and checking what this process wrote a moment ago.
/// After a failed commit (`unsure`) the loop looks at the spool instead. A
/// crash loses nothing here: whatever is in `queue/` is found by the next
/// start-up scan.
public final class QueueInbox: Sendable {
    enum Entry: Equatable {
        case queued(QueueID)
        case unsure(QueueID)
    }

    private struct State {
        var expected: Set<QueueID> = []
        var arrived: [Entry] = []
        /// Envelopes posted and not yet loaded (at most `envelopeLimit`).
        var envelopes: [QueueID: Envelope] = [:]
        var wake: (@Sendable () -> Void)?
        /// `local.domains`: their recipients are rewritten at acceptance (`takes`).
        var localDomains: Set<String> = []
    }

    private let state = Mutex(State())
    /// Directories of messages the daemon finished, kept for the listener's
    /// next ones (`BlankPool`): only where a listener builds messages in them.
    public let blanks: BlankPool?

    public init(blanks: BlankPool? = nil) {
        self.blanks = blanks
    }

    /// Whether the listener may queue a message to recipients in `domains`
    /// itself: not when one of them is local, since local recipients are
    /// rewritten through the aliases as a drop is accepted (`DropAcceptance`).
    public func takes(_ domains: [String]) -> Bool {
        state.withLock { state in domains.allSatisfy { !state.localDomains.contains($0) } }
    }

    /// `local.domains`, as the daemon's settings have them now (set again on reload).
    func setLocalDomains(_ domains: Set<String>) {
        state.withLock { $0.localDomains = domains }
    }

    public func expect(_ id: QueueID) {
        state.withLock { _ = $0.expected.insert(id) }
    }

    /// Envelopes kept for first loads: beyond this (a queue that does not
    /// move), messages are read from the spool as any other.
    static let envelopeLimit = 4096

    /// The message `id` is queued; `envelope` is what its `envelope.json`
    /// holds (one that names another message is left to the spool's reader).
    public func queued(_ id: QueueID, envelope: DropEnvelope? = nil) {
        if let envelope, envelope.id == id {
            let converted = Envelope(queued: envelope)
            state.withLock { state in
                if state.envelopes.count < Self.envelopeLimit { state.envelopes[id] = converted }
            }
        }
        post(.queued(id))
    }

    /// The envelope the listener posted for `id`, once: the message's first
    /// load, while it is in `queue/` as the listener left it.
    func envelope(for id: QueueID) -> Envelope? {
        state.withLock { $0.envelopes.removeValue(forKey: id) }
    }

    /// Forgets the posted envelopes of messages a control action may have
    /// moved or changed: their next load reads the spool.
    func forget(_ ids: some Sequence<QueueID>) {
        state.withLock { state in
            guard !state.envelopes.isEmpty else { return }
            for id in ids { state.envelopes.removeValue(forKey: id) }
        }
    }

    public func unsure(_ id: QueueID) { post(.unsure(id)) }

    /// Wakes the loop only when the inbox was empty: one wake-up serves a batch.
    private func post(_ entry: Entry) {
        let wake = state.withLock { state -> (@Sendable () -> Void)? in
            state.arrived.append(entry)
            return state.arrived.count == 1 ? state.wake : nil
        }
        wake?()
    }

    /// Whether an inotify event of `queue/` for `id` is left to the entry the listener will post.
    func isExpected(_ id: QueueID) -> Bool {
        state.withLock { $0.expected.contains(id) }
    }

    /// How the running loop is woken; set when it starts.
    func attach(wake: (@Sendable () -> Void)?) {
        state.withLock { $0.wake = wake }
    }

    /// Everything posted since the last call, no longer expected.
    func take() -> [Entry] {
        state.withLock { state in
            guard !state.arrived.isEmpty else { return [] }
            defer { state.arrived.removeAll(keepingCapacity: true) }
            for entry in state.arrived {
                switch entry {
                case .queued(let id), .unsure(let id): state.expected.remove(id)
                }
            }
            return state.arrived
        }
    }
}
