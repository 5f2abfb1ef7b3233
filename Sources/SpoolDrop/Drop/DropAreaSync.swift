import Glibc
import PosternBase

/// Group commit for step 6 of the drop protocol (spool-layout.md 6.1): many
/// writers in one process (the SMTP listener's sessions) each need an `fsync`
/// of `drop/` that starts after their own rename. One `fsync` that starts
/// after several renames makes all of them durable, so a writer whose rename
/// is done waits for the next `fsync` to start and finish, and whoever finds
/// none running starts it: under load, one `fsync` per batch instead of one
/// per message, and no added wait when alone (the first caller syncs at once).
///
/// It makes no step weaker: each writer still returns only after an `fsync`
/// of `drop/` that began after its rename.
public final class DropAreaSync: @unchecked Sendable {
    private let path: String
    private let fileSystem: any FileSystem
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let finished = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The number of syncs started, and of syncs finished.
    private var started = 0
    private var done = 0
    private var running = false
    /// The last failed sync and its error: its waiters report it.
    private var failure: (generation: Int, error: SpoolIOError)?
    /// Syncs issued, for tests and the benchmark's notes.
    public private(set) var syncCount = 0

    public init(layout: SpoolLayout, fileSystem: any FileSystem = SystemFileSystem()) {
        path = layout.directory(.drop)
        self.fileSystem = fileSystem
        pthread_mutex_init(lock, nil)
        pthread_cond_init(finished, nil)
    }

    deinit {
        pthread_cond_destroy(finished)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        finished.deallocate()
    }

    /// Returns once an `fsync` of `drop/` that started after this call has
    /// finished; throws its error if it failed.
    public func sync() throws(SpoolIOError) {
        pthread_mutex_lock(lock)
        // A sync running now may have started before our rename: we need the next.
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
            do throws(SpoolIOError) { try fileSystem.syncDirectory(path) } catch let failed { error = failed }
            pthread_mutex_lock(lock)
            syncCount += 1
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
}
