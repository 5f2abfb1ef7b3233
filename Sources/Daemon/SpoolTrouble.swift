import Foundation
import Glibc
import Logging
import Monitoring
import PosternCore
import Spool
import Synchronization

/// Conditions of the spool's file system that fail every write alike: no
/// space (ENOSPC, EDQUOT), no descriptor (EMFILE, ENFILE), a read-only
/// remount (EROFS).
///
/// Under one of them every envelope update, DSN and adoption fails the same
/// way, and a line per message (and per retry) would bury the one fact an
/// operator needs. So each condition is logged once when it begins and once
/// when it ends, counted and shown in the metrics
/// (`postern_spool_unwritable{condition}`); the writes themselves fail
/// cleanly and leave the old state on disk (spool-layout.md 6.2), and their
/// messages wait for the condition to end. The daemon finds out when it does
/// by itself: every `probeInterval` it writes and syncs a block in `tmp/`
/// (`probe`), and when that works the waiting messages are due at once.
/// Postfix's queue manager does the same with its "queue file write error"
/// back-off, without the probe.
///
/// Thread-safe: the event loop and the DSN hook share one.
public final class SpoolTrouble: Sendable {
    public typealias Condition = PosternMetrics.SpoolCondition

    /// How often the spool is probed while a condition lasts.
    public static let probeInterval: TimeInterval = 5
    /// What the probe writes: one block, as an envelope update needs.
    static let probeSize = 4096

    let layout: SpoolLayout
    let logger: Logger
    let metrics: PosternMetrics?
    /// Each condition in force, with the failure that began it.
    private let active = Mutex<[Condition: String]>([:])

    public init(layout: SpoolLayout, logger: Logger, metrics: PosternMetrics?) {
        self.layout = layout
        self.logger = logger
        self.metrics = metrics
        for condition in Condition.allCases { metrics?.setSpoolUnwritable(condition, false) }
    }

    /// The condition `code` means, if any.
    public static func condition(of code: Int32) -> Condition? {
        switch code {
        case ENOSPC, EDQUOT: .noSpace
        case EMFILE, ENFILE: .noDescriptors
        case EROFS: .readOnly
        default: nil
        }
    }

    /// The condition behind a spool write's failure, if it was one.
    public static func condition(of error: any Error) -> Condition? {
        (error as? SpoolIOError).flatMap { condition(of: $0.code) }
    }

    /// Whether any condition is in force.
    public var isActive: Bool { active.withLock { !$0.isEmpty } }

    /// Takes a failed write: when its cause is one of the conditions, it is
    /// counted (and logged if the condition begins now) and true comes back,
    /// for the caller to log nothing more; otherwise false.
    public func absorb(_ error: any Error, while doing: String) -> Bool {
        guard let condition = Self.condition(of: error) else { return false }
        metrics?.spoolWriteFailed(condition)
        let began = active.withLock { active in
            guard active[condition] == nil else { return false }
            active[condition] = "\(error)"
            return true
        }
        if began {
            metrics?.setSpoolUnwritable(condition, true)
            logger.error("spool not writable", metadata: [
                "condition": "\(condition.rawValue)", "while": "\(doing)", "error": "\(error)",
                "effect": "messages keep their last state and wait; checked every \(Int(Self.probeInterval))s",
            ])
        }
        return true
    }

    /// Writes, syncs and removes one block in `tmp/`; when that works, every
    /// condition is over (logged once) and true comes back.
    public func probe() -> Bool {
        let path = layout.tmp + "/probe.\(getpid())"
        let fileSystem = SystemFileSystem()
        do throws(SpoolIOError) {
            try fileSystem.writeFile(path, [UInt8](repeating: 0, count: Self.probeSize), mode: 0o600)
            try fileSystem.removeFile(path)
        } catch {
            // Whatever was made of it goes; a failure here only leaves a file
            // in tmp/ that the scanner removes once it is old.
            _ = try? fileSystem.removeFile(path)
            if Self.condition(of: error) == nil {
                logger.warning("spool probe failed", metadata: ["error": "\(error)"])
            }
            return false
        }
        let ended = active.withLock { active in
            defer { active.removeAll() }
            return active
        }
        for (condition, cause) in ended.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            metrics?.setSpoolUnwritable(condition, false)
            logger.notice("spool writable again", metadata: ["condition": "\(condition.rawValue)", "was": "\(cause)"])
        }
        return !ended.isEmpty
    }
}
