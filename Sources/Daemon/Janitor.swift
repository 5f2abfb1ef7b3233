import Foundation
import Glibc
import Logging
import Spool
import Synchronization

/// Removes finished messages off the event loop.
///
/// Removing a delivered message costs the kernel more than anything else the
/// event loop does for it (freeing the message's blocks and two inodes). The
/// loop only renames the directory into `tmp/` (one step: from then on the
/// message is out of the queue for every reader, the scanner included) and
/// hands the rest to this thread. A crash in between leaves a directory in
/// `tmp/`, removed like any other leftover once it is old (spool-layout.md 6.4).
final class Janitor: @unchecked Sendable {
    private let paths = Mutex<[String]>([])
    private let available: UnsafeMutablePointer<sem_t>
    private let fileSystem: any FileSystem
    private let logger: Logger

    init(fileSystem: any FileSystem = SystemFileSystem(), logger: Logger) {
        self.fileSystem = fileSystem
        self.logger = logger
        available = .allocate(capacity: 1)
        sem_init(available, 0, 0)
        Thread.detachNewThread { [self] in work() }
    }

    /// Removes the tree at `path` soon; nil ends the thread after what is queued.
    func remove(_ path: String?) {
        paths.withLock { $0.append(path ?? "") }
        sem_post(available)
    }

    /// Ends the thread once everything queued is removed.
    func stop() {
        remove(nil)
    }

    private func work() {
        while true {
            while sem_wait(available) != 0 {}
            let path = paths.withLock { $0.isEmpty ? nil : $0.removeFirst() }
            guard let path else { continue }
            guard !path.isEmpty else { break }
            do {
                try fileSystem.removeTree(path)
            } catch {
                logger.error("cannot remove a finished message; it is removed at the next start-up", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        sem_destroy(available)
        available.deallocate()
    }
}
