import Foundation
import Glibc
import Synchronization

/// The threads the listener serves its sessions on: one per open session, as
/// before, but a thread whose session has ended waits for the next one
/// instead of exiting.
///
/// Why: a client such as a web application or `smtp-source` opens a new
/// connection for every message, and a thread started and ended for each
/// cost about a twentieth of the listener's time (`clone3`, the new stack's
/// page faults, `madvise` and `munmap` at exit; `perf` over 5,000 sessions).
/// Postfix's `master` reuses its `smtpd` processes for the same reason
/// (`max_use`).
///
/// A session is never queued behind another: when no thread waits, a new one
/// starts, so the number of threads follows the sessions the listener
/// admits (`smtp.max_connections`). At most `keepIdle` wait at once, each
/// for at most `idleTime` seconds, so a burst leaves no lasting threads.
/// `@unchecked`: the semaphore is made for sharing between threads.
final class SessionThreads: @unchecked Sendable {
    private struct State {
        /// Sessions handed over and not yet begun, oldest first.
        var sessions: [@Sendable () -> Void] = []
        /// Threads waiting on `ready` that no session has claimed yet.
        var idle = 0
        /// Set by `close`: a thread that has no session to take ends.
        var closing = false
    }

    private let state = Mutex(State())
    /// Posted once for each session handed to a waiting thread.
    private let ready: UnsafeMutablePointer<sem_t>
    let keepIdle: Int
    let idleTime: Double

    init(keepIdle: Int, idleTime: Double = 60) {
        self.keepIdle = keepIdle
        self.idleTime = idleTime
        ready = .allocate(capacity: 1)
        sem_init(ready, 0, 0)
    }

    /// Never called while a thread runs: each thread holds the pool.
    deinit {
        sem_destroy(ready)
        ready.deallocate()
    }

    /// Runs `session` on a waiting thread, or on a new one if none waits.
    func run(_ session: @escaping @Sendable () -> Void) {
        let wakeOne = state.withLock { state -> Bool in
            state.sessions.append(session)
            guard state.idle > 0 else { return false }
            state.idle -= 1
            return true
        }
        if wakeOne {
            sem_post(ready)
        } else {
            let thread = Thread { [self] in serve() }
            thread.name = "postern-smtpd"
            thread.start()
        }
    }

    /// Ends the waiting threads, and each busy one when its session ends:
    /// the listener has stopped accepting. Sessions handed over before still
    /// run.
    func close() {
        let waiting = state.withLock { state -> Int in
            state.closing = true
            defer { state.idle = 0 }
            return state.idle
        }
        for _ in 0..<waiting { sem_post(ready) }
    }

    /// How many threads wait for a session now (for tests).
    var waiting: Int { state.withLock { $0.idle } }

    /// Takes the oldest session, runs it, and waits for the next: every
    /// session in `sessions` was either posted to `ready` or started a thread
    /// of its own, so there is one to take after either, unless `close`
    /// posted to end the waiting threads.
    private func serve() {
        while true {
            guard let session = state.withLock({ $0.sessions.isEmpty ? nil : $0.sessions.removeFirst() }) else { return }
            session()
            guard park() else { return }
        }
    }

    /// Waits until a session is handed over (true), or returns false when
    /// this thread should end: enough threads wait already, or none came for
    /// `idleTime`.
    private func park() -> Bool {
        let parked = state.withLock { state -> Bool in
            guard !state.closing, state.idle < keepIdle else { return false }
            state.idle += 1
            return true
        }
        guard parked else { return false }
        while true {
            var deadline = timespec()
            clock_gettime(CLOCK_REALTIME, &deadline)
            deadline.tv_sec += Int(idleTime)
            deadline.tv_nsec += Int((idleTime - idleTime.rounded(.down)) * 1e9)
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1
                deadline.tv_nsec -= 1_000_000_000
            }
            if sem_timedwait(ready, &deadline) == 0 { return true }
            if errno == EINTR { continue }
            // Timed out. A thread may leave only by giving up an unclaimed
            // place; if `run` claimed them all meanwhile, its post is for
            // one of the waiting threads, this one as well as any.
            let leave = state.withLock { state -> Bool in
                guard state.idle > 0 else { return false }
                state.idle -= 1
                return true
            }
            if leave { return false }
            while sem_wait(ready) != 0 {}   // EINTR: wait again
            return true
        }
    }
}
