import CSysShim
import Foundation
import Glibc
import PosternCore

/// Reads the envelopes of a spool's areas on several threads and hands the
/// results back in order (the areas in the order asked, each in ID order, as
/// `ls` shows them), chunk by chunk as they are ready: the first lines of a
/// listing of a million messages come after a directory listing and one
/// chunk, not after the last envelope (issue #15).
///
/// Each envelope is opened with one `openat2(2)` that follows no link at any
/// component (entries of `drop/` belong to other users), checked with
/// `fstat` (a regular file of bounded size) and read with one `read(2)`.
/// Nothing is written; an entry that goes away meanwhile (delivered) is
/// skipped, as it would be by a listing a moment later.
public struct SpoolListing {
    public enum Item: Sendable {
        case message(SpoolLayout.Area, EnvelopeSummary)
        /// An entry that cannot be read as a message: where (`queue/NAME`) and why.
        case problem(String, String)
    }

    public let layout: SpoolLayout
    public let areas: [SpoolLayout.Area]
    /// Threads that read envelopes (the caller's thread only writes output).
    public var threads = max(1, min(8, ProcessInfo.processInfo.activeProcessorCount))

    public init(layout: SpoolLayout, areas: [SpoolLayout.Area]) {
        self.layout = layout
        self.areas = areas
    }

    /// Entries per chunk: a small first one for a prompt first line.
    static func chunkRange(_ index: Int, total: Int) -> Range<Int> {
        let first = 32
        let size = 256
        let start = index == 0 ? 0 : first + (index - 1) * size
        return min(start, total)..<min(index == 0 ? first : start + size, total)
    }

    /// Calls `process` on the reading threads with each chunk of items, and
    /// `emit` on the caller's thread with each chunk's result, in order. At
    /// most `window` chunks wait for `emit` (a slow reader of the output,
    /// `| less`, holds the readers back instead of filling memory).
    ///
    /// - Throws: `SpoolIOError` when an area cannot be listed at all.
    public func run<Chunk: Sendable>(window: Int = 64, process: @escaping @Sendable ([Item]) -> Chunk,
                                     emit: (Chunk) -> Void) throws(SpoolIOError) {
        let entries = try Entries(layout: layout, areas: areas)
        let total = entries.count
        let chunks = total == 0 ? 0 : 1 + (max(0, total - 32) + 255) / 256
        let board = Board<Chunk>(count: chunks, window: window)
        let readers = min(threads, max(1, chunks))
        for _ in 0..<readers {
            Thread.detachNewThread {
                while let index = board.claim() {
                    let items = Self.chunkRange(index, total: total).compactMap { entries.read($0) }
                    board.finish(index, process(items))
                }
            }
        }
        for index in 0..<chunks { emit(board.take(index)) }
    }
}

extension SpoolListing {
    /// The names of the areas, parsed and sorted, with their directories open.
    final class Entries: Sendable {
        let handles: [DirectoryHandleBox]
        let ids: [(area: Int, id: QueueID)]
        let strangers: [(area: Int, name: String)]
        let areas: [SpoolLayout.Area]

        init(layout: SpoolLayout, areas: [SpoolLayout.Area]) throws(SpoolIOError) {
            var handles: [DirectoryHandleBox] = []
            var ids: [(area: Int, id: QueueID)] = []
            var strangers: [(area: Int, name: String)] = []
            for (index, area) in areas.enumerated() {
                let handle = try DirectoryHandle(path: layout.directory(area))
                let (found, others) = try handle.queueIDs()
                ids += found.map { (index, $0) }
                strangers += others.map { (index, $0) }
                handles.append(DirectoryHandleBox(handle))
            }
            self.handles = handles
            self.ids = ids
            self.strangers = strangers
            self.areas = areas
        }

        /// Messages first, then names that are not queue IDs (each a problem).
        var count: Int { ids.count + strangers.count }

        func read(_ position: Int) -> Item? {
            guard position < ids.count else {
                let stranger = strangers[position - ids.count]
                return .problem("\(areas[stranger.area].rawValue)/\(stranger.name)", "its name is not a queue ID")
            }
            let (area, id) = ids[position]
            var origin: String { "\(areas[area].rawValue)/\(id)" }
            switch SpoolListing.readEnvelope(id, in: handles[area].handle.fd) {
            case .success(let bytes):
                do {
                    let summary = try EnvelopeSummary.decode(bytes)
                    guard summary.id == id else { return .problem(origin, "its envelope is that of \(summary.id)") }
                    return .message(areas[area], summary)
                } catch {
                    return .problem(origin, error.description)
                }
            case .failure(let error):
                let code = error.code
                // Gone since it was listed (delivered, moved): not a problem.
                if code == ENOENT, MessageDirectory.lstatus(handles[area].handle.path + "/" + id.rawValue) == nil { return nil }
                return .problem(origin, code == EFBIG ? "envelope.json is larger than \(Envelope.maxEncodedSize) octets"
                                      : code == EINVAL ? "envelope.json is not a regular file"
                                      : "envelope.json: \(String(cString: strerror(code)))")
            }
        }
    }

    /// A directory handle shared by the reading threads (only its descriptor is used).
    final class DirectoryHandleBox: @unchecked Sendable {
        let handle: DirectoryHandle
        init(_ handle: DirectoryHandle) { self.handle = handle }
    }

    /// `ID/envelope.json` below `directory`: opened following no link, a
    /// regular file of at most `Envelope.maxEncodedSize`, read in one call.
    static func readEnvelope(_ id: QueueID, in directory: Int32) -> Result<[UInt8], Errno> {
        let flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
        var fd = id.withEnvelopePath { csys_open_beneath(directory, $0, flags) }
        if fd < 0, errno == ENOSYS {
            // Before Linux 5.6: the directory, then the file, neither through a link.
            let parent = id.withName { openat(directory, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            guard parent >= 0 else { return .failure(Errno(errno)) }
            fd = openat(parent, SpoolLayout.envelopeFile, flags)
            let code = errno
            close(parent)
            errno = code
        }
        guard fd >= 0 else { return .failure(Errno(errno == ELOOP || errno == EXDEV ? EINVAL : errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(Errno(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(Errno(EINVAL)) }
        guard info.st_size <= Envelope.maxEncodedSize else { return .failure(Errno(EFBIG)) }
        do {
            return .success(try RegularFile.read(fd, upTo: Int(info.st_size)))
        } catch {
            return .failure(Errno(error.code))
        }
    }

    /// An `errno` value as an error.
    public struct Errno: Error, Sendable {
        public let code: Int32
        init(_ code: Int32) { self.code = code }
    }

    /// The reading threads' results, taken in order by the caller's thread.
    final class Board<Chunk: Sendable>: @unchecked Sendable {
        private let condition = NSCondition()
        private var results: [Chunk?]
        private var claimed = 0
        private var taken = 0
        private let window: Int

        init(count: Int, window: Int) {
            results = Array(repeating: nil, count: count)
            self.window = max(1, window)
        }

        /// The next chunk to read; waits while `window` chunks wait to be taken.
        func claim() -> Int? {
            condition.lock()
            defer { condition.unlock() }
            while claimed < results.count, claimed - taken >= window { condition.wait() }
            guard claimed < results.count else { return nil }
            claimed += 1
            return claimed - 1
        }

        func finish(_ index: Int, _ chunk: Chunk) {
            condition.lock()
            results[index] = chunk
            condition.broadcast()
            condition.unlock()
        }

        func take(_ index: Int) -> Chunk {
            condition.lock()
            defer { condition.unlock() }
            while results[index] == nil { condition.wait() }
            let chunk = results[index]!
            results[index] = nil
            taken = index + 1
            condition.broadcast()
            return chunk
        }
    }
}

extension QueueID {
    /// Calls `body` with the NUL-terminated name, on the stack.
    func withName<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: QueueID.length + 1) { buffer in
            write(into: UnsafeMutableBufferPointer(rebasing: buffer[..<QueueID.length]))
            buffer[QueueID.length] = 0
            return buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: QueueID.length + 1) { body($0) }
        }
    }

    /// Calls `body` with the NUL-terminated `ID/envelope.json`, on the stack.
    func withEnvelopePath<R>(_ body: (UnsafePointer<CChar>) -> R) -> R {
        let file = SpoolLayout.envelopeFile.utf8
        let length = QueueID.length + 1 + file.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: length + 1) { buffer in
            write(into: UnsafeMutableBufferPointer(rebasing: buffer[..<QueueID.length]))
            buffer[QueueID.length] = UInt8(ascii: "/")
            _ = UnsafeMutableBufferPointer(rebasing: buffer[(QueueID.length + 1)...]).initialize(from: file)
            buffer[length] = 0
            return buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: length + 1) { body($0) }
        }
    }
}
