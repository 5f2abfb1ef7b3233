import Foundation
import Synchronization

/// A thread of its own for the metrics server's tasks.
///
/// FlyingFox is written with Swift concurrency; left alone, its tasks would
/// run on the cooperative pool, two threads on a two-core machine, where a
/// blocked thread (elsewhere in the process, or in a test of another suite)
/// delays every scrape until FlyingFox's request timeout answers 500. With
/// this executor preferred (SE-0417), the server's tasks, the child tasks they
/// start and the actors they call all run here instead, one job at a time,
/// whatever the pool is doing.
final class ServerThread: TaskExecutor, @unchecked Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
        ready.signal()
    }

    /// Runs jobs as they come, for the life of the process: the daemon has
    /// one metrics server, started once (tests start a few).
    private func run() -> Never {
        while true {
            ready.wait()
            guard let job = jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) else { continue }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
