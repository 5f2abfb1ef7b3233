import Foundation
import Glibc
import Synchronization
import Testing
@testable import SMTPServer

/// The listener's session threads: no session waits for another, a thread
/// whose session ended serves the next one, and waiting threads are bounded
/// in number and in time.
struct SessionThreadsTests {
    /// Polls `condition` until it holds or `seconds` pass (the threads
    /// change state on their own; nothing to be woken by).
    private func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(1000)
        }
        return condition()
    }

    /// Five sessions that each wait until all five run: if one were queued
    /// behind another, none would finish.
    @Test func sessionsNeverWaitForEachOther() {
        let threads = SessionThreads(keepIdle: 2)
        let running = Mutex(0)
        let sawAll = Mutex(0)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<5 {
            threads.run {
                running.withLock { $0 += 1 }
                if eventually(5, { running.withLock { $0 } == 5 }) { sawAll.withLock { $0 += 1 } }
                finished.signal()
            }
        }
        for _ in 0..<5 { #expect(finished.wait(timeout: .now() + 60) == .success) }
        #expect(sawAll.withLock { $0 } == 5, "every session ran while the other four did")
    }

    /// A thread that has served a session serves the next one; at most
    /// `keepIdle` wait at once.
    @Test func endedSessionsThreadServesTheNext() {
        let threads = SessionThreads(keepIdle: 2)
        let served = Mutex<[pthread_t]>([])
        let done = DispatchSemaphore(value: 0)
        threads.run { served.withLock { $0.append(pthread_self()) }; done.signal() }
        #expect(done.wait(timeout: .now() + 20) == .success)
        #expect(eventually { threads.waiting == 1 })
        threads.run { served.withLock { $0.append(pthread_self()) }; done.signal() }
        #expect(done.wait(timeout: .now() + 20) == .success)
        let ids = served.withLock { $0 }
        #expect(ids.count == 2 && pthread_equal(ids[0], ids[1]) != 0, "the same thread served both")

        // Four at once: four threads, of which two stay.
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<4 { threads.run { release.wait(); done.signal() } }
        for _ in 0..<4 { release.signal() }
        for _ in 0..<4 { #expect(done.wait(timeout: .now() + 20) == .success) }
        #expect(eventually { threads.waiting == 2 })
        #expect(threads.waiting == 2, "no more than keepIdle wait")
    }

    /// A thread left waiting longer than `idleTime` ends, and a session after
    /// that still runs (on a new thread).
    @Test func idleThreadsEnd() {
        let threads = SessionThreads(keepIdle: 4, idleTime: 0.05)
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<3 { threads.run { done.signal() } }
        for _ in 0..<3 { #expect(done.wait(timeout: .now() + 20) == .success) }
        #expect(eventually { threads.waiting == 0 })
        threads.run { done.signal() }
        #expect(done.wait(timeout: .now() + 20) == .success)
    }

    /// `close` ends the waiting threads at once, and a busy one when its
    /// session ends; the session still runs to its end.
    @Test func closeEndsTheThreads() {
        let threads = SessionThreads(keepIdle: 4)
        let done = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let alive = Mutex(0)
        for _ in 0..<2 { threads.run { done.signal() } }
        for _ in 0..<2 { #expect(done.wait(timeout: .now() + 20) == .success) }
        #expect(eventually { threads.waiting == 2 })
        // A session that outlives the close.
        threads.run { alive.withLock { $0 += 1 }; release.wait(); done.signal() }
        #expect(eventually { alive.withLock { $0 } == 1 })
        threads.close()
        #expect(threads.waiting == 0)
        release.signal()
        #expect(done.wait(timeout: .now() + 20) == .success, "the session ran to its end")
        #expect(eventually(1) { threads.waiting > 0 } == false, "its thread does not wait after it")
    }
}
