import PosternCore
import SpoolDrop
import Synchronization

/// Messages the daemon's own SMTP listener renamed straight into `queue/`
/// (spool-layout.md 6.1, "Straight into the queue"), handed to the event
/// loop without a read of the spool.
///
/// The listener says `expect` before its rename and `queued` once the rename
/// is durable; the loop skips the inotify event of an expected entry, and
/// indexes the message, due at once, when it is posted, as the start-up scan
/// indexes what it finds: the envelope is read when the message comes due.
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
        var wake: (@Sendable () -> Void)?
        /// `local.domains`: their recipients are rewritten at acceptance (`takes`).
        var localDomains: Set<String> = []
    }

    private let state = Mutex(State())
    /// Messages the daemon finished, emptied for the listener's next ones
    /// (`BlankPool`): only where a listener builds messages in them.
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

    public func queued(_ id: QueueID) { post(.queued(id)) }

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
