import Foundation
import Glibc
import PosternCore

/// One message found by the scanner, with what a scheduler needs to index it.
public struct ScanItem: Sendable {
    public let area: SpoolLayout.Area
    public let envelope: Envelope
    /// The owner of the message directory: an owner other than root or the
    /// spool owner means it still belongs to whoever dropped it (section 6.5).
    public let owner: uid_t

    public var id: QueueID { envelope.id }
    public var held: Bool { area == .hold }
    /// When the next attempt is due; `nil` means now.
    public var nextAttempt: Date? { envelope.nextAttempt }
    /// Lower-case domains of the recipients still pending.
    public var domains: [String] { envelope.pendingDomains }
}

/// What a scan found and did.
public struct ScanReport: Sendable {
    public struct Quarantined: Sendable, Equatable {
        /// Where the entry was, relative to the spool: `queue/01J...`.
        public let origin: String
        public let reason: String
        /// Where it went; `nil` when the scan only reported (read-only) or the move failed.
        public let destination: String?
    }

    public var messages: [SpoolLayout.Area: Int] = [:]
    public var quarantined: [Quarantined] = []
    /// Stale entries of `tmp/` and stale envelope updates removed (or, read-only, found).
    public var removed: [String] = []
    /// Errors that stopped part of the scan (an unreadable area, a failed move).
    public var errors: [String] = []

    public var total: Int { messages.values.reduce(0, +) }
}

/// Walks the spool and rebuilds what a scheduler needs, repairing as it goes.
///
/// This is the crash recovery: whatever a crash left behind, the scanner sorts
/// into complete messages (visited), temporary leftovers (removed once older than
/// `temporaryMaxAge`, since they never were accepted mail) and anything else
/// (moved to `corrupt/` with a reason). It never deletes a message and never
/// follows a symbolic link.
///
/// Items are handed to `visit` one at a time and not kept, so memory grows with
/// the number of messages (their names), never with their size.
public struct SpoolScanner {
    public enum Mode: Sendable {
        /// Report and repair: quarantine, remove stale temporary entries. Only the
        /// holder of the spool lock may repair.
        case repair
        /// Report only; the spool is not modified.
        case readOnly
    }

    public let layout: SpoolLayout
    public var mode: Mode
    public var fileSystem: any FileSystem = SystemFileSystem()
    public var now: () -> Date = { Date() }
    /// Age after which an entry of `tmp/` is taken for an abandoned drop.
    public var temporaryMaxAge: TimeInterval = 24 * 3600

    public init(layout: SpoolLayout, mode: Mode) {
        self.layout = layout
        self.mode = mode
    }

    /// Scans `areas` (by default all, queue first so that the accepted copy of a
    /// duplicated ID wins) and `tmp/`.
    ///
    /// Every area is listed before any entry is read: a daemon that delivers
    /// while it scans may move a message it has been handed (a double bounce
    /// into `hold/`), and such a message then vanishes from the listing it was
    /// in (skipped) instead of showing up twice (a duplicate to quarantine).
    public func scan(areas: [SpoolLayout.Area] = [.queue, .hold, .drop], visit: (ScanItem) -> Void) -> ScanReport {
        var report = ScanReport()
        let trusted = MessageDirectory.trustedOwners(of: layout)
        var seen = Set<QueueID>()
        var listings: [SpoolLayout.Area: [String]] = [:]
        for area in areas {
            do {
                listings[area] = try DirectoryListing.names(in: layout.directory(area)).sorted()
            } catch {
                report.errors.append("\(error)")
            }
        }
        for area in areas {
            let directory = layout.directory(area)
            guard let names = listings[area] else { continue }
            report.messages[area] = 0
            for name in names {
                let problem: String
                if let id = QueueID(name) {
                    if seen.contains(id), area == .drop {
                        // The writer's copy of an adoption a crash cut short (6.5
                        // step 5): the accepted copy wins, this one is finished off.
                        removeLeftoverDrop(name, report: &report)
                        continue
                    } else if seen.contains(id) {
                        problem = "duplicate: \(id) is also in another area"
                    } else {
                        do {
                            let opened = try MessageDirectory(path: directory + "/" + name)
                                .open(id: id, trustedOwners: trusted)
                            seen.insert(id)
                            report.messages[area, default: 0] += 1
                            visit(ScanItem(area: area, envelope: opened.envelope, owner: opened.owner))
                            continue
                        } catch where error.isTransient {
                            // No descriptor or memory left: nothing wrong with the message.
                            report.errors.append("cannot read \(area.rawValue)/\(name) now: \(error.description)")
                            continue
                        } catch {
                            problem = error.description
                        }
                    }
                } else {
                    let kind = MessageDirectory.lstatus(directory + "/" + name).map { MessageDirectory.kind(of: $0.st_mode) } ?? "an entry"
                    problem = "\(kind) whose name is not a queue ID"
                }
                quarantine(name, in: directory, area: area.rawValue, reason: problem, report: &report)
            }
        }
        cleanTemporary(report: &report)
        return report
    }

    /// Removes `drop/NAME`, whose ID is already queued (or, read-only, reports it).
    func removeLeftoverDrop(_ name: String, report: inout ScanReport) {
        let path = layout.directory(.drop) + "/" + name
        if mode == .repair {
            do {
                try fileSystem.removeTree(path)
            } catch {
                report.errors.append("cannot remove drop/\(name), already queued: \(error)")
                return
            }
        }
        report.removed.append("drop/\(name)")
    }

    func quarantine(_ name: String, in directory: String, area: String, reason: String, report: inout ScanReport) {
        // Gone since it was listed (delivered, moved, taken by the daemon): nothing to report.
        guard MessageDirectory.lstatus(directory + "/" + name) != nil else { return }
        var destination: String?
        if mode == .repair {
            do {
                destination = try Quarantine(layout: layout, fileSystem: fileSystem, now: now)
                    .move(name, in: directory, reason: reason)
            } catch {
                report.errors.append("cannot quarantine \(area)/\(name): \(error)")
            }
        }
        report.quarantined.append(.init(origin: "\(area)/\(name)", reason: reason, destination: destination))
    }

    /// Removes entries of `tmp/` whose newest change is older than `temporaryMaxAge`.
    func cleanTemporary(report: inout ScanReport) {
        let names: [String]
        do {
            names = try DirectoryListing.names(in: layout.tmp).sorted()
        } catch {
            report.errors.append("\(error)")
            return
        }
        let cutoff = now().timeIntervalSince1970 - temporaryMaxAge
        for name in names {
            let path = layout.tmp + "/" + name
            guard newestChange(path) < cutoff else { continue }
            guard mode == .repair else {
                report.removed.append("tmp/" + name)
                continue
            }
            // Through descriptors: the entry is another user's, who may swap it
            // for a link while it is being emptied (DirectoryHandle.removeTree).
            do {
                try fileSystem.removeTree(path)
                report.removed.append("tmp/" + name)
            } catch {
                report.errors.append("cannot remove tmp/\(name): \(error)")
            }
        }
    }

    /// The latest modification time of an entry and, for a directory, its entries
    /// (a writer still streaming a large message keeps touching its file).
    private func newestChange(_ path: String) -> TimeInterval {
        guard let info = MessageDirectory.lstatus(path) else { return .infinity }
        var newest = TimeInterval(info.st_mtim.tv_sec)
        if info.st_mode & S_IFMT == S_IFDIR, let names = try? DirectoryListing.names(in: path) {
            for name in names {
                if let child = MessageDirectory.lstatus(path + "/" + name) {
                    newest = max(newest, TimeInterval(child.st_mtim.tv_sec))
                }
            }
        }
        return newest
    }
}
