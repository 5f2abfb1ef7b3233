import CSysShim
import Foundation
import Glibc
import PosternCore

/// Reads the envelopes of a spool's areas on several threads and hands the
/// results back in order, chunk by chunk as they are ready: the first lines
/// of a listing of a million messages come after the first names and one
/// chunk, not after the last envelope (issue #15).
///
/// The order: the areas in the order asked; within an area of at most
/// `sortLimit` entries, queue-ID order (oldest first, as `ls` shows them);
/// a bigger area in directory order, streamed as `getdents` returns names,
/// as Postfix's `mailq` does: sorting needs every name first, which would
/// cost a million-message queue half a second before its first line. Names
/// that are not queue IDs come last, each as a problem.
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
    /// The most entries an area may hold to be listed oldest first: reading
    /// and sorting 10,000 names takes a few milliseconds.
    public var sortLimit = 10_000

    public init(layout: SpoolLayout, areas: [SpoolLayout.Area]) {
        self.layout = layout
        self.areas = areas
    }

    /// Entries per chunk: a small first one for a prompt first line.
    static func chunkRange(_ index: Int) -> Range<Int> {
        let first = 32
        let size = 256
        return index == 0 ? 0..<first : (first + (index - 1) * size)..<(first + index * size)
    }

    /// Calls `process` on the reading threads with each chunk of items, and
    /// `emit` on the caller's thread with each chunk's result, in order. At
    /// most `window` chunks wait for `emit` (a slow reader of the output,
    /// `| less`, holds the readers back instead of filling memory).
    ///
    /// - Throws: `SpoolIOError` when an area cannot be opened at all.
    public func run<Chunk: Sendable>(window: Int = 64, process: @escaping @Sendable ([Item]) -> Chunk,
                                     emit: (Chunk) -> Void) throws(SpoolIOError) {
        let entries = try Entries(layout: layout, areas: areas)
        let sortLimit = self.sortLimit
        Thread.detachNewThread { entries.list(sortLimit: sortLimit) }
        let board = Board<Chunk>(window: window)
        for _ in 0..<threads {
            Thread.detachNewThread {
                while let index = board.claim() {
                    guard let names = entries.names(in: Self.chunkRange(index)) else {
                        board.close(at: index)
                        return
                    }
                    board.finish(index, process(names.compactMap { entries.read($0) }))
                }
            }
        }
        var index = 0
        while let chunk = board.take(index) {
            emit(chunk)
            index += 1
        }
    }
}

extension SpoolListing {
    /// An entry of an area: a message, or a name that is not a queue ID.
    enum Name: Sendable {
        case message(area: Int, QueueID)
        case stranger(area: Int, String)
    }

    /// The areas' directories, open, and their names as a listing thread
    /// finds them (`list`), taken a chunk at a time by the readers.
    final class Entries: @unchecked Sendable {
        let handles: [DirectoryHandle]
        /// One reader per area, opened with it: an area that cannot be listed
        /// fails the listing before its first line, not silently later.
        private let readers: [DirectoryHandle.NameReader]
        let areas: [SpoolLayout.Area]
        private let condition = NSCondition()
        private var listed: [Name] = []
        private var complete = false

        init(layout: SpoolLayout, areas: [SpoolLayout.Area]) throws(SpoolIOError) {
            var handles: [DirectoryHandle] = []
            var readers: [DirectoryHandle.NameReader] = []
            for area in areas {
                let handle = try DirectoryHandle(path: layout.directory(area))
                handles.append(handle)
                readers.append(try DirectoryHandle.NameReader(handle))
            }
            self.handles = handles
            self.readers = readers
            self.areas = areas
        }

        /// Lists every area (on its own thread): sorted when an area turns
        /// out to hold at most `sortLimit` names, otherwise in batches as read.
        func list(sortLimit: Int) {
            var strangers: [Name] = []
            for (area, reader) in readers.enumerated() {
                var ids: [QueueID] = []
                var others: [String] = []
                func take(_ name: UnsafeBufferPointer<UInt8>) {
                    if let id = QueueID(utf8: name) { ids.append(id) } else { others.append(String(decoding: name, as: UTF8.self)) }
                }
                var more = reader.read(upTo: sortLimit + 1, take)
                if !more { ids.sort() }
                while true {
                    publish(ids.map { .message(area: area, $0) })
                    guard more else { break }
                    ids.removeAll(keepingCapacity: true)
                    more = reader.read(upTo: 1024, take)
                }
                strangers += others.sorted().map { .stranger(area: area, $0) }
            }
            publish(strangers)
            condition.lock()
            complete = true
            condition.broadcast()
            condition.unlock()
        }

        private func publish(_ names: [Name]) {
            guard !names.isEmpty else { return }
            condition.lock()
            listed += names
            condition.broadcast()
            condition.unlock()
        }

        /// The names at `range`, once listed (fewer at the end); nil when the
        /// listing ended before it.
        func names(in range: Range<Int>) -> [Name]? {
            condition.lock()
            defer { condition.unlock() }
            while !complete, listed.count < range.upperBound { condition.wait() }
            guard range.lowerBound < listed.count else { return nil }
            return Array(listed[range.lowerBound..<min(range.upperBound, listed.count)])
        }

        /// The spare an update left (`envelope.json.tmp`), listed when
        /// `envelope.json` is damaged, as every reader takes it (spool-layout.md 6.2).
        func spare(_ area: Int, _ id: QueueID) -> Item? {
            guard let directory = try? DirectoryHandle(path: handles[area].path + "/" + id.rawValue),
                  let bytes = try? MessageDirectory.readEnvelope(in: directory, name: SpoolLayout.envelopeTemporaryFile),
                  let summary = try? EnvelopeSummary.decode(Array(bytes)), summary.id == id else { return nil }
            return .message(areas[area], summary)
        }

        func read(_ name: Name) -> Item? {
            let (area, id): (Int, QueueID)
            switch name {
            case .stranger(let area, let name):
                return .problem("\(areas[area].rawValue)/\(name)", "its name is not a queue ID")
            case .message(let at, let message):
                (area, id) = (at, message)
            }
            var origin: String { "\(areas[area].rawValue)/\(id)" }
            switch SpoolListing.readEnvelope(id, in: handles[area].fd) {
            case .success(let bytes):
                do {
                    let summary = try EnvelopeSummary.decode(bytes)
                    guard summary.id == id else {
                        return spare(area, id) ?? .problem(origin, "its envelope is that of \(summary.id)")
                    }
                    return .message(areas[area], summary)
                } catch {
                    return spare(area, id) ?? .problem(origin, error.description)
                }
            case .failure(let error):
                let code = error.code
                // Gone since it was listed (delivered, moved): not a problem.
                if code == ENOENT, MessageDirectory.lstatus(handles[area].path + "/" + id.rawValue) == nil { return nil }
                return .problem(origin, code == EFBIG ? "envelope.json is larger than \(Envelope.maxEncodedSize) octets"
                                      : code == EINVAL ? "envelope.json is not a regular file"
                                      : "envelope.json: \(POSIX.errorText(code))")
            }
        }
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
    /// How many chunks there are is known only when the names run out
    /// (`close`).
    final class Board<Chunk: Sendable>: @unchecked Sendable {
        private let condition = NSCondition()
        private var results: [Int: Chunk] = [:]
        private var claimed = 0
        private var taken = 0
        private var end = Int.max
        private let window: Int

        init(window: Int) {
            self.window = max(1, window)
        }

        /// The next chunk to read; waits while `window` chunks wait to be
        /// taken; nil past the end.
        func claim() -> Int? {
            condition.lock()
            defer { condition.unlock() }
            while claimed < end, claimed - taken >= window { condition.wait() }
            guard claimed < end else { return nil }
            claimed += 1
            return claimed - 1
        }

        func finish(_ index: Int, _ chunk: Chunk) {
            condition.lock()
            results[index] = chunk
            condition.broadcast()
            condition.unlock()
        }

        /// There is no chunk at `index` (nor after it).
        func close(at index: Int) {
            condition.lock()
            end = min(end, index)
            condition.broadcast()
            condition.unlock()
        }

        /// The chunk at `index` once read; nil past the end.
        func take(_ index: Int) -> Chunk? {
            condition.lock()
            defer { condition.unlock() }
            while results[index] == nil, index < end { condition.wait() }
            guard let chunk = results.removeValue(forKey: index) else { return nil }
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
