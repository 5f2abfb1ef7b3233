import Foundation
import Glibc
import Synchronization

/// A fixed set of delivery threads fed from one queue (`queue.max_concurrent`
/// of them): no thread is started per attempt, and the blocking network I/O
/// of deliveries never runs on Swift's cooperative thread pool.
///
/// The scheduler decides what runs and how much at once; the pool only
/// carries it out, so it never holds more work than it has threads for. A
/// reload that raises the limit adds threads; one that lowers it retires the
/// surplus as they come free.
/// `@unchecked`: the semaphore is made for sharing between threads.
final class WorkerPool: @unchecked Sendable {
    private enum Item {
        case work(@Sendable () -> Void)
        case retire
    }

    private let queue = Mutex<[Item]>([])
    private let threads = Mutex(0)
    /// Counts the items in `queue`; a worker sleeps on it.
    private let available: UnsafeMutablePointer<sem_t>

    init(threads count: Int) {
        available = .allocate(capacity: 1)
        sem_init(available, 0, 0)
        resize(to: count)
    }

    deinit {
        sem_destroy(available)
        available.deallocate()
    }

    /// Runs `work` on the next free worker.
    func submit(_ work: @escaping @Sendable () -> Void) {
        queue.withLock { $0.append(.work(work)) }
        sem_post(available)
    }

    /// Starts or retires workers until there are `count` (at least one).
    func resize(to count: Int) {
        let target = max(1, count)
        let change = threads.withLock { current in
            defer { current = target }
            return target - current
        }
        if change > 0 {
            for _ in 0..<change {
                let thread = Thread { [self] in work() }
                thread.name = "postern-delivery"
                thread.start()
            }
        } else {
            for _ in 0..<(-change) {
                queue.withLock { $0.append(.retire) }
                sem_post(available)
            }
        }
    }

    /// Retires every worker once the work queued so far is done.
    func shutdown() {
        let count = threads.withLock { current in
            defer { current = 0 }
            return current
        }
        for _ in 0..<count {
            queue.withLock { $0.append(.retire) }
            sem_post(available)
        }
    }

    private func work() {
        while true {
            while sem_wait(available) != 0 {}   // EINTR: wait again
            let item = queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            switch item {
            case .work(let body)?: body()
            case .retire?: return
            case nil: continue
            }
        }
    }
}
