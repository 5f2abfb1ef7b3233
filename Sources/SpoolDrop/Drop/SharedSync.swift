import Glibc
import PosternBase

/// One sync operation shared by concurrent callers (group commit): each
/// caller needs a sync that *starts after* its call, and one sync that starts
/// after several calls serves all of them. A caller waits for the next sync
/// to start and finish; whoever finds none running starts it. Under load:
/// one sync per batch instead of one per caller; alone: no added wait.
final class SharedSync: @unchecked Sendable {
    private let operation: () throws(SpoolIOError) -> Void
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The number of syncs started, and of syncs finished.
    private var started = 0
    private var done = 0
    private var running = false
    /// The last failed sync and its error: its waiters report it.
    private var failure: (generation: Int, error: SpoolIOError)?

    init(_ operation: @escaping () throws(SpoolIOError) -> Void) {
        self.operation = operation
        pthread_mutex_init(lock, nil)
        pthread_cond_init(finished, nil)
    }

    deinit {
        pthread_cond_destroy(finished)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        finished.deallocate()
    }

    /// Returns once a sync that started after this call has finished; throws its error if it failed.
    func sync() throws(SpoolIOError) {
        pthread_mutex_lock(lock)
        // A sync running now may have started before our writes: we need the next.
        let needed = started + 1
        while done < needed {
            if running {
                pthread_cond_wait(finished, lock)
                continue
            }
            started += 1
            running = true
            let generation = started
            pthread_mutex_unlock(lock)
            var error: SpoolIOError?
            do throws(SpoolIOError) { try operation() } catch let failed { error = failed }
            pthread_mutex_lock(lock)
            running = false
            done = generation
            if let error { failure = (generation, error) }
            pthread_cond_broadcast(finished)
        }
        // A later failure is reported too: rarely, and at worst the client retries a message that was kept.
        let result = failure.flatMap { $0.generation >= needed ? $0.error : nil }
        pthread_mutex_unlock(lock)
        if let result { throw result }
    }

    /// Syncs started so far: the next to start is number `startedCount + 1`.
    var startedCount: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return started
    }

    /// Syncs finished so far (one runs at a time, so they finish in order).
    var syncCount: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return done
    }
}

/// Group commit of step 6 of the drop protocol (spool-layout.md 6.1) for
/// many writers in one process (the SMTP listener's sessions): each drop
/// needs an `fsync` of the area it is renamed into that starts after its
/// rename, and one such `fsync` serves every rename before it. Under load,
/// one `fsync` of the area per batch of drops instead of one per drop; no
/// step is weaker. Steps 2 to 4 stay each drop's own: a shared `syncfs(2)`
/// for them was tried; it flushes the whole file system (everyone's dirty
/// data, the daemon's unsynced envelope updates too) and made injection
/// slower on the root file system (about 600 instead of 1,100 messages a
/// second, measured by hand).
///
/// The area is `drop/`, or `queue/` for a writer that is the spool's owner
/// and works beside the daemon holding the spool's lock (the listener of
/// `postern run`): its messages are queued by the drop's own rename, with
/// no second move by the daemon (spool-layout.md 6.1, "Straight into the queue").
public final class DropGroupCommit: @unchecked Sendable {
    /// Where each drop is renamed, and what is synced after.
    public let area: SpoolLayout.Area
    let shared: SharedSync

    public init(layout: SpoolLayout, area: SpoolLayout.Area = .drop, fileSystem: any FileSystem = SystemFileSystem()) {
        precondition(area != .hold, "a drop is committed into drop/ or queue/")
        self.area = area
        let path = layout.directory(area)
        shared = SharedSync { () throws(SpoolIOError) in try fileSystem.syncDirectory(path) }
    }

    /// The `fsync`s of the area made so far.
    public var syncCount: Int { shared.syncCount }
}
