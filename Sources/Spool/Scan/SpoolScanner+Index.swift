import Glibc
import PosternCore

/// A queued or held message as the start-up scan indexes it: its name, its
/// area and the modification time of its envelope, nothing read from inside.
public struct IndexedMessage: Sendable {
    public let id: QueueID
    public let held: Bool
    /// When the message is due, in seconds since the epoch: its envelope's
    /// modification time (spool-layout.md 6.2), at most the scan's horizon;
    /// 0 (due now) when the envelope could not be found, so that reading it
    /// says what is wrong.
    public let due: Double
}

extension SpoolScanner {
    /// What the index scan found besides the messages: the names in `drop/`
    /// (the daemon accepts each, reading it in full) and the scan's report.
    public struct IndexScan: Sendable {
        public var report = ScanReport()
        public var drops: [String] = []
    }

    /// Rebuilds what the daemon's index needs from directory listings and
    /// one `fstatat(2)` per message (issue #15): no envelope is opened.
    ///
    /// Every writer of an envelope sets its modification time to when the
    /// message is next due, and registering an attempt moves it to when the
    /// message is due should that attempt never report (spool-layout.md 6.2),
    /// so the time is the due time without reading anything. It is a hint:
    /// the envelope is read when the message comes due and wins where the two
    /// disagree (a `touch`, a `cp -r`, a script's writer), and its full
    /// validation happens then; damage found then is quarantined by the daemon.
    ///
    /// What this scan itself sorts out: names that are not queue IDs and IDs
    /// in both `queue/` and `hold/` (quarantined; the `queue/` copy wins), and
    /// stale entries of `tmp/`. Leftover `envelope.json.tmp` files are left to
    /// the next update of their envelope, which removes them first (6.2).
    ///
    /// Messages are visited newest first (IDs sort by creation time): mail
    /// that has never been tried is due at once, and a message dropped just
    /// before a restart is delivered before a million deferred ones are
    /// indexed. Drops are handed over as soon as the areas are listed.
    ///
    /// - Parameters:
    ///   - horizon: the latest due time believed (seconds since the epoch): an
    ///     envelope set further ahead by hand is read then and rescheduled as it says.
    ///   - listed: called with the names in `drop/` once every area is listed.
    ///   - visit: called with each message, `queue/` first, newest first.
    public func index(horizon: Double, listed: ([String]) -> Void = { _ in },
                      visit: (IndexedMessage) -> Void) -> IndexScan {
        var result = IndexScan()
        var ids: [SpoolLayout.Area: [QueueID]] = [:]
        var handles: [SpoolLayout.Area: DirectoryHandle] = [:]
        for area in [SpoolLayout.Area.queue, .hold] {
            let strangers: [String]
            do {
                let handle = try DirectoryHandle(path: layout.directory(area))
                (ids[area], strangers) = try handle.queueIDs()
                handles[area] = handle
            } catch {
                result.report.errors.append("\(error)")
                continue
            }
            for name in strangers {
                let kind = MessageDirectory.lstatus(layout.directory(area) + "/" + name)
                    .map { MessageDirectory.kind(of: $0.st_mode) } ?? "an entry"
                quarantine(name, in: layout.directory(area), area: area.rawValue,
                           reason: "\(kind) whose name is not a queue ID", report: &result.report)
            }
        }
        do {
            result.drops = try DirectoryListing.names(in: layout.directory(.drop)).sorted()
            result.report.messages[.drop] = result.drops.count
        } catch {
            result.report.errors.append("\(error)")
        }
        listed(result.drops)
        let queued = ids[.queue] ?? []
        for area in [SpoolLayout.Area.queue, .hold] {
            guard let handle = handles[area], let names = ids[area] else { continue }
            var count = 0
            for id in names.reversed() {
                if area == .hold, Self.sortedContains(queued, id) {
                    quarantine(id.rawValue, in: layout.directory(area), area: area.rawValue,
                               reason: "duplicate: \(id) is also in another area", report: &result.report)
                    continue
                }
                count += 1
                visit(IndexedMessage(id: id, held: area == .hold, due: min(horizon, Self.dueTime(of: id, in: handle))))
            }
            result.report.messages[area] = count
        }
        cleanTemporary(report: &result.report)
        return result
    }

    /// The modification time of `ID/envelope.json` below `directory`, never
    /// through a link; 0 when it is not a regular file (or not there).
    static func dueTime(of id: QueueID, in directory: DirectoryHandle) -> Double {
        var info = stat()
        // "ID/envelope.json" in a buffer on the stack: no string per message.
        let found = id.withEnvelopePath { fstatat(directory.fd, $0, &info, AT_SYMLINK_NOFOLLOW) == 0 }
        guard found, info.st_mode & S_IFMT == S_IFREG else { return 0 }
        return Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
    }

    static func sortedContains(_ ids: [QueueID], _ id: QueueID) -> Bool {
        var low = 0
        var high = ids.count
        while low < high {
            let middle = (low + high) / 2
            if ids[middle] < id { low = middle + 1 } else { high = middle }
        }
        return low < ids.count && ids[low] == id
    }
}
