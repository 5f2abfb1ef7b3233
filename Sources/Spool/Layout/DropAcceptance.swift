import Glibc
import PosternCore

/// Accepts a drop into `queue/` (spool-layout.md 6.5): the daemon's job, and
/// an offline control command's when no daemon runs (it holds the lock), so
/// that `postern hold ID` reaches a message `postern list` shows in `drop/`.
///
/// A drop by root or the spool owner is renamed into `queue/` (device and
/// inode confirm that the directory validated is the one moved). Any other is
/// adopted (`Adoption`): copied into a directory of the acceptor's own, with
/// only the fields a drop may set and within the drop limits, so that its
/// writer keeps no hold on it. What fails validation is for the caller to
/// quarantine, with the reason given.
public struct DropAcceptance {
    public let layout: SpoolLayout
    public let trustedOwners: Set<uid_t>
    /// `drop.max_message_size` and `drop.max_recipients`, checked again for
    /// drops a writer's own program did not make.
    public var maxMessageSize: Int
    public var maxRecipients: Int
    public var fileSystem: any FileSystem = SystemFileSystem()
    /// This machine's own recipients, rewritten through the aliases as each
    /// drop is accepted (`LocalRecipients`); nil rewrites nothing. The daemon
    /// and the offline control commands both accept here, and the daemon's
    /// own DSNs are drops too, so all of them are rewritten alike.
    public var local: LocalRecipients?
    /// Told what the rewriting of an accepted message did, for the log.
    public var report: (QueueID, LocalRecipients.Rewrite) -> Void = { _, _ in }
    /// Whether a trusted drop's rename into `queue/` is followed by its own
    /// `fsync` of `queue/` and `drop/` (spool-layout.md 6.3). The daemon turns
    /// it off when it accepts a batch of drops and syncs both directories once
    /// for the batch (`MessageStore.syncDirectories`) before any of them is
    /// attempted: the drops were durable in `drop/` already, so a power loss
    /// before that sync can only undo the renames, which loses nothing.
    public var syncsEachMove = true

    public init(layout: SpoolLayout, trustedOwners: Set<uid_t>, maxMessageSize: Int, maxRecipients: Int) {
        self.layout = layout
        self.trustedOwners = trustedOwners
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
    }

    public enum Outcome {
        /// In `queue/` now, due at once. `ignored`: fields an untrusted drop may not set.
        case accepted(Envelope, ignored: [String], owner: uid_t)
        /// Accepted, but the writer's copy could not be removed (the scanner quarantines it later).
        case acceptedCopyRemains(Envelope, String)
        /// Nothing there any more (another acceptor took it).
        case gone
        /// To quarantine: the name is not a queue ID.
        case badName
        /// To quarantine, with the reason.
        case invalid(String)
        /// The ID is already queued: this was the writer's copy of a finished
        /// adoption (6.5 step 5 cut short by a crash), now removed.
        case leftover
        /// To quarantine: the ID is already queued and the drop could not be removed.
        case duplicate
        /// Not now (no descriptor left, a full disk): the drop stays for the
        /// next try. `cause`: the failed call, when one is known.
        case later(String, cause: SpoolIOError?)
    }

    public func accept(_ name: String) -> Outcome {
        let directory = layout.directory(.drop)
        guard MessageDirectory.lstatus(directory + "/" + name) != nil else { return .gone }
        guard let id = QueueID(name) else { return .badName }
        if QueueControl(layout: layout).area(of: id) != nil {
            // Already accepted: the writer's copy of an adoption whose last
            // step, removing it (spool-layout.md 6.5 step 5), a crash cut short,
            // perhaps halfway (a message without its envelope). The queued copy
            // is the message; this one is finished off, not quarantined, so a
            // crash leaves nothing in corrupt/ to alarm anyone.
            do {
                try fileSystem.removeTree(layout.path(.drop, id))
                return .leftover
            } catch {
                return .duplicate
            }
        }
        let opened: MessageDirectory.Opened
        do {
            opened = try MessageDirectory(path: layout.path(.drop, id)).open(id: id, trustedOwners: trustedOwners)
        } catch where error.isTransient {
            return .later("cannot read it now: \(error.description)",
                          cause: error.code.map { SpoolIOError("open", layout.path(.drop, id), $0) })
        } catch {
            return .invalid(error.description)
        }
        var envelope = opened.envelope
        var ignored: [String] = []
        let store = MessageStore(layout: layout)
        do {
            let trusted = trustedOwners.contains(opened.owner)
            let rewrite = local.flatMap { $0.isActive ? $0.rewrite(opened.envelope.recipients) : nil }
            if trusted, let rewrite, rewrite.recipients != opened.envelope.recipients {
                // Root's or the spool owner's drop with local recipients: its
                // envelope changes, so it is adopted (copied with the new
                // envelope, one rename) rather than renamed and then rewritten,
                // which a crash between the two would leave half done. Every
                // field it set is kept.
                envelope = Self.applying(rewrite, to: opened.envelope)
                if let problem = check(envelope) { return .invalid(problem) }
                try Adoption(layout: layout).adopt(opened, envelope: envelope, from: .drop, to: .queue)
                report(id, rewrite)
            } else if trusted {
                // Only its owner (trusted) or the spool owner may rename an
                // entry of the sticky drop/: the directory validated is the
                // one moved, which device and inode confirm.
                try store.move(id, from: .drop, to: .queue, sync: syncsEachMove)
                let validated = try opened.directory.status()
                guard let moved = MessageDirectory.lstatus(layout.path(.queue, id)),
                      moved.st_dev == validated.st_dev, moved.st_ino == validated.st_ino else {
                    return .invalid("replaced while being accepted")
                }
                if let rewrite, !rewrite.warnings.isEmpty || !rewrite.unresolved.isEmpty { report(id, rewrite) }
            } else {
                // What postern-drop refuses, a hand-made drop may not bring in either.
                guard opened.envelope.size <= maxMessageSize else {
                    return .invalid("\(opened.envelope.size) octets, over drop.max_message_size (\(maxMessageSize))")
                }
                guard opened.envelope.recipients.count <= maxRecipients else {
                    return .invalid("\(opened.envelope.recipients.count) recipients, over drop.max_recipients (\(maxRecipients))")
                }
                (envelope, ignored) = Adoption.submitted(opened.envelope)
                let rewrite = local.flatMap { $0.isActive ? $0.rewrite(envelope.recipients) : nil }
                if let rewrite { envelope = Self.applying(rewrite, to: envelope) }
                if let problem = check(envelope) { return .invalid(problem) }
                try Adoption(layout: layout).adopt(opened, envelope: envelope, from: .drop, to: .queue)
                if let rewrite, !rewrite.changes.isEmpty || !rewrite.warnings.isEmpty || !rewrite.unresolved.isEmpty { report(id, rewrite) }
            }
        } catch let problem as MessageDirectory.Problem {
            return .invalid(problem.description)
        } catch {
            // Accepted when it is in queue/; only the removal of the writer's copy failed.
            guard QueueControl(layout: layout).area(of: id) != nil else { return .later("cannot accept it: \(error)", cause: error as? SpoolIOError) }
            return .acceptedCopyRemains(envelope, "\(error)")
        }
        return .accepted(envelope, ignored: ignored, owner: opened.owner)
    }

    /// `envelope` with the rewritten recipients; SMTPUTF8 when an alias
    /// target's local part needs it (RFC 6531).
    static func applying(_ rewrite: LocalRecipients.Rewrite, to envelope: Envelope) -> Envelope {
        var changed = envelope
        changed.recipients = rewrite.recipients
        if rewrite.recipients.contains(where: { !$0.address.unicodeScalars.allSatisfy(\.isASCII) }) { changed.smtputf8 = true }
        return changed
    }

    /// Why an adopted envelope cannot be queued, if it cannot: the drop
    /// limits hold for what the aliases made of it too.
    private func check(_ envelope: Envelope) -> String? {
        guard envelope.recipients.count <= maxRecipients else {
            return "\(envelope.recipients.count) recipients after local aliases, over drop.max_recipients (\(maxRecipients))"
        }
        guard envelope.largestSize <= Envelope.maxEncodedSize else {
            return "its envelope could outgrow \(Envelope.maxEncodedSize) octets with its delivery results"
        }
        return nil
    }
}
