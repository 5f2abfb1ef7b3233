import Glibc
import PosternBase
import Synchronization

/// Makes new blanks for the listener when no finished message left one
/// (spool-layout.md 6.4, "Blanks made ahead").
///
/// Why: with nothing being delivered (delivery paused, the relay down, a
/// burst faster than delivery), no finished message comes back as a blank,
/// and each message made its own directory and files while its client
/// waited. On ext4 with a journal, the `fsync` of that new directory forces a
/// journal commit of its own, after the one of the message's `fsync`: two of
/// the three commits a message waited for before its 250. Here, a batch of
/// blanks is made on a thread no client waits on and made durable by one
/// `syncfs(2)`, so a message built in one waits for the commit of its files'
/// `fsync` and the group `fsync` of `queue/` only.
///
/// Why `syncfs` and not an `fsync` of each new directory: on ext4 each such
/// `fsync` is a journal commit, and a batch of them competes with the
/// sessions' own (`tools/bench/protocol-ceiling.c`, journaled loop image:
/// 4% more messages a second than no blanks made ahead, against 40% with one
/// `syncfs` a batch). `syncfs` also writes back whatever else is dirty on the
/// spool's file system; no client waits for it, and should it be slow the
/// sessions make their own directories meanwhile, as before.
///
/// A made blank is what a kept one is: a directory of the spool owner, mode
/// 0700, holding `message` and `envelope.json`, regular files, mode 0600, one
/// link each, here empty. It was never in `queue/`, so it is ready once
/// durable.
final class BlankMaker: @unchecked Sendable {
    /// Blanks made at once: about what a burst of ten sessions uses in the
    /// time of one `syncfs`, and few enough that an idle listener keeps
    /// almost nothing. The pool asks for the next batch when fewer than half
    /// a batch of made ones are left.
    static let defaultBatch = 32

    /// `defaultBatch`, or `POSTERN_TEST_BLANK_BATCH` (1 to 32): the
    /// power-loss harness (`tools/power-loss.py`) makes batches of two,
    /// since its crash states grow with every operation it records; each
    /// blank is made the same way.
    static var configuredBatch: Int {
        guard let text = getenv("POSTERN_TEST_BLANK_BATCH").map({ String(cString: $0) }),
              let batch = Int(text), (1...defaultBatch).contains(batch) else { return defaultBatch }
        return batch
    }

    let batch: Int
    private let tmp: String
    private let fileSystem: any FileSystem
    private let ids = QueueIDGenerator()
    /// Posted when a batch is wanted, and by `close`.
    private let wanted: UnsafeMutablePointer<sem_t>
    /// Posted by the thread as it ends.
    private let ended: UnsafeMutablePointer<sem_t>
    private let state = Mutex((started: false, pending: false, closed: false))

    init(tmp: String, fileSystem: any FileSystem, batch: Int = BlankMaker.configuredBatch) {
        precondition(batch > 0, "a batch of blanks holds one at least")
        self.batch = batch
        self.tmp = tmp
        self.fileSystem = fileSystem
        wanted = .allocate(capacity: 1)
        ended = .allocate(capacity: 1)
        sem_init(wanted, 0, 0)
        sem_init(ended, 0, 0)
    }

    deinit {
        sem_destroy(wanted)
        sem_destroy(ended)
        wanted.deallocate()
        ended.deallocate()
    }

    /// Starts the thread: each batch wanted is made and handed to `deliver`,
    /// which returns false when the pool takes no more (the batch is then
    /// removed).
    func start(deliver: @escaping @Sendable ([String]) -> Bool) {
        state.withLock { $0.started = true }
        DetachedThread.start(name: "postern-blanks") { [self] in
            defer { sem_post(ended) }
            while true {
                while sem_wait(wanted) != 0 {}   // EINTR: wait again
                if state.withLock({ $0.closed }) { return }
                let made = makeBatch()
                if !made.isEmpty, !deliver(made) { remove(made) }
                // Asked again while making: this batch answered it; a message that
                // still finds too few asks anew.
                state.withLock { $0.pending = false }
            }
        }
    }

    /// Asks for a batch; asking again before it is handed over asks for the same one.
    func want() {
        let post = state.withLock { state -> Bool in
            guard !state.pending, !state.closed else { return false }
            state.pending = true
            return true
        }
        if post { sem_post(wanted) }
    }

    /// Ends the thread and returns once it has ended, after the batch it may
    /// be making (removed if the pool no longer takes it).
    func close() {
        let started = state.withLock { state in
            state.closed = true
            return state.started
        }
        guard started else { return }
        sem_post(wanted)
        while sem_wait(ended) != 0 {}
    }

    /// A batch of blanks in `tmp/`, durable: fewer when the disk is full, or
    /// none (the sessions then make their own directories, and report).
    private func makeBatch() -> [String] {
        var made: [String] = []
        for _ in 0..<batch {
            let path = tmp + "/" + ids.next().rawValue
            do throws(SpoolIOError) {
                try fileSystem.makeDirectory(path, mode: DropWriter.directoryMode)
                made.append(path)
                for name in [SpoolLayout.messageFile, SpoolLayout.envelopeFile] {
                    fileSystem.close(try fileSystem.createFile(path + "/" + name, mode: DropWriter.fileMode))
                }
            } catch {
                if made.last == path {
                    made.removeLast()
                    remove([path])
                }
                break
            }
        }
        guard !made.isEmpty else { return [] }
        do throws(SpoolIOError) {
            try fileSystem.syncFileSystem(try DirectoryHandle(path: tmp))
        } catch {
            remove(made)
            return []
        }
        return made
    }

    private func remove(_ paths: [String]) {
        for path in paths { _ = try? fileSystem.removeTree(path) }
    }
}
