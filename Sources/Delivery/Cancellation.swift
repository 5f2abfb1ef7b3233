import Glibc
import Synchronization

/// Lets the daemon abort an attempt in progress from another thread.
///
/// A delivery thread waits in `poll(2)` on its socket; `cancel()` shuts the
/// socket down, so the wait ends at once with a closed connection, which the
/// attempt records as a temporary failure. Used at the end of a shutdown's
/// grace period.
public final class Cancellation: Sendable {
    private struct State {
        var fd: Int32 = -1
        var cancelled = false
    }
    private let state = Mutex(State())

    public init() {}

    /// The socket the attempt is using now (-1 when none).
    public func register(_ fd: Int32) {
        let cancelled = state.withLock { state -> Bool in
            state.fd = fd
            return state.cancelled
        }
        if cancelled, fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }

    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    public func cancel() {
        let fd = state.withLock { state -> Int32 in
            state.cancelled = true
            return state.fd
        }
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
