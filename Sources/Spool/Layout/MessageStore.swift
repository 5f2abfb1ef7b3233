import Foundation
import Glibc
import PosternCore

/// The write protocols for accepted messages (`spool-layout.md` sections 6.2
/// to 6.4): envelope updates, moves between areas, removal when finished.
///
/// Only the holder of the spool lock may call these: they assume a single
/// writer per message, which is what makes a plain rename enough.
public struct MessageStore {
    public let layout: SpoolLayout
    public var fileSystem: any FileSystem = SystemFileSystem()

    public init(layout: SpoolLayout) {
        self.layout = layout
    }

    /// How much an update pays for durability (the durability budget).
    public enum Durability: Sendable {
        /// `fsync` the new file and the directory: survives power loss. For
        /// updates whose loss would lose information or cause a retry storm.
        case powerLoss
        /// Rename only: survives a process crash; a power loss repeats work.
        case processCrash
    }

    /// Replaces `envelope.json` of the message in `area` (section 6.2).
    public func update(_ envelope: Envelope, in area: SpoolLayout.Area, durability: Durability) throws(SpoolIOError) {
        let directory = layout.path(area, envelope.id)
        let temporary = directory + "/" + SpoolLayout.envelopeTemporaryFile
        let current = directory + "/" + SpoolLayout.envelopeFile
        // Never write what no reader would accept: the oldest attempts go first.
        var bytes = envelope.encoded()
        var trimmed = envelope
        while bytes.count > Envelope.maxEncodedSize, !trimmed.history.isEmpty {
            trimmed.history.removeFirst((trimmed.history.count + 1) / 2)
            bytes = trimmed.encoded()
        }
        // The spare the last update kept goes first, as a file, never walked as
        // a tree (a directory there is refused with EISDIR). It is not rewritten
        // in place: a power loss could then keep the swap below and lose the new
        // bytes, and bring back the envelope from before the last update (found
        // by tools/power-loss.py: a recorded failure undone).
        try fileSystem.removeFile(temporary)
        let fd = try fileSystem.createFile(temporary, mode: DropWriter.fileMode)
        do throws(SpoolIOError) {
            try fileSystem.write(fd, Array(bytes), path: temporary)
            // Its resting time: no attempt registered (Envelope+Registration).
            try fileSystem.setModified(temporary, epochSeconds: envelope.restingTime.timeIntervalSince1970)
            if durability == .powerLoss { try fileSystem.sync(fd, path: temporary) }
        } catch {
            fileSystem.close(fd)
            throw error
        }
        fileSystem.close(fd)
        // Commit point: the two swap in one step, and the old envelope stays as
        // the spare: what a reader falls back on should a power loss leave the
        // new one torn (an update without fsync, 6.2).
        do throws(SpoolIOError) {
            try fileSystem.exchange(temporary, current)
        } catch where error.code == ENOENT {
            try fileSystem.replace(temporary, with: current)   // no envelope to keep (a damaged message being repaired)
        }
        if durability == .powerLoss { try fileSystem.syncDirectory(directory) }
    }

    /// Registers an attempt of the message whose envelope on disk is
    /// `envelope` (section 6.2): its file's modification time becomes the
    /// mark of an attempt due again at `nextAttempt`. No fsync, no new inode:
    /// it survives a crash of the daemon, and a power loss at worst repeats
    /// the attempt uncounted.
    public func register(_ envelope: Envelope, nextAttempt: Date, in area: SpoolLayout.Area) throws(SpoolIOError) {
        let mark = envelope.registrationMark(next: nextAttempt)
        try fileSystem.setModified(layout.path(area, envelope.id) + "/" + SpoolLayout.envelopeFile,
                                   epochSeconds: mark.timeIntervalSince1970)
    }

    /// Moves a message between areas by one rename (section 6.3), then makes it durable.
    ///
    /// With `sync: false` the caller syncs both directories itself, once for
    /// a batch of moves (`syncDirectories`), before it reports them done.
    public func move(_ id: QueueID, from source: SpoolLayout.Area, to destination: SpoolLayout.Area,
                     sync: Bool = true) throws(SpoolIOError) {
        try fileSystem.rename(layout.path(source, id), to: layout.path(destination, id))
        if sync { try syncDirectories([destination, source]) }
    }

    /// fsyncs the directories of `areas`, destination first (spool-layout.md 6.3).
    public func syncDirectories(_ areas: [SpoolLayout.Area]) throws(SpoolIOError) {
        for area in areas { try fileSystem.syncDirectory(layout.directory(area)) }
    }

    /// Keeps a finished message's envelope in `retired/` (section 6.4): the
    /// directory is renamed there, then its message file removed. No fsync: a
    /// crash leaves it in one place or the other, both of which say it is finished.
    public func retire(_ id: QueueID, from area: SpoolLayout.Area) throws(SpoolIOError) {
        let target = layout.retired + "/" + id.rawValue
        try fileSystem.rename(layout.path(area, id), to: target)
        try fileSystem.removeFile(target + "/" + SpoolLayout.messageFile)
    }

    /// Takes a finished message out of its area in one rename, into `tmp/`
    /// under its own name, for the caller to remove from there (section 6.4).
    /// Returns the path to remove.
    public func discard(_ id: QueueID, from area: SpoolLayout.Area) throws(SpoolIOError) -> String {
        let target = layout.tmp + "/" + id.rawValue
        try fileSystem.rename(layout.path(area, id), to: target)
        return target
    }

    /// Removes a message whose recipients are all final (section 6.4); no
    /// fsync unless `sync`: an operator's `delete` must not come back after a
    /// power loss and be delivered after all.
    ///
    /// The message leaves its area by one rename into `tmp/` before any of its
    /// files is removed, and with `sync` the area is fsynced right after that
    /// rename: a crash or a power loss partway through the removal then leaves
    /// a leftover of `tmp/`, never a message directory missing a file, which the
    /// scanner would quarantine (tools/power-loss.py found that). Should
    /// `tmp/ID` exist already (an earlier crash's leftover), the message is
    /// removed where it is.
    public func remove(_ id: QueueID, from area: SpoolLayout.Area, sync: Bool = false) throws(SpoolIOError) {
        let out: String
        do {
            out = try discard(id, from: area)
        } catch {
            try fileSystem.removeTree(layout.path(area, id))
            if sync { try fileSystem.syncDirectory(layout.directory(area)) }
            return
        }
        if sync { try fileSystem.syncDirectory(layout.directory(area)) }
        try fileSystem.removeTree(out)
    }
}
