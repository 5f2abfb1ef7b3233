import Foundation
import PosternCore
import Spool
import Synchronization

/// Counts what sits outside the index, for the queue gauges: quarantined
/// entries in `corrupt/` and finished envelopes in `retired/`, each with its
/// recipients.
///
/// Neither area is in the scheduler's index (nothing is delivered from them),
/// and reading every envelope there would slow the start-up the index is
/// built for. So a thread of its own counts them, at start and then once a
/// minute, reading only envelopes it has not seen before: after the first
/// pass, a pass costs two directory listings.
final class SpoolCensus: Sendable {
    struct Counts: Sendable, Equatable {
        var corruptMessages = 0
        var corruptRecipients = 0
        var retiredMessages = 0
        var retiredRecipients = 0
    }

    private struct State {
        var counts = Counts()
        /// Recipients per entry name already read, per area.
        var corrupt: [String: Int] = [:]
        var retired: [String: Int] = [:]
        var stopped = false
    }

    private let layout: SpoolLayout
    private let state = Mutex(State())
    private let interval: Double
    private let wake = DispatchSemaphore(value: 0)

    init(layout: SpoolLayout, interval: Double = 60) {
        self.layout = layout
        self.interval = interval
    }

    var counts: Counts { state.withLock { $0.counts } }

    /// Starts the counting thread; `stop()` ends it.
    func start() {
        Thread.detachNewThread { [self] in
            while !state.withLock({ $0.stopped }) {
                count()
                _ = wake.wait(timeout: .now() + interval)
            }
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        wake.signal()
    }

    /// One pass: list both areas, read the envelopes of new entries.
    func count() {
        let (corruptKnown, retiredKnown) = state.withLock { ($0.corrupt, $0.retired) }
        let corrupt = tally(layout.corrupt, known: corruptKnown) { name in "\(name)/entry" }
        let retired = tally(layout.retired, known: retiredKnown) { name in name }
        state.withLock { state in
            state.corrupt = corrupt
            state.retired = retired
            state.counts = Counts(corruptMessages: corrupt.count, corruptRecipients: corrupt.values.reduce(0, +),
                                  retiredMessages: retired.count, retiredRecipients: retired.values.reduce(0, +))
        }
    }

    /// Each entry of `directory` with its recipients: known ones from before,
    /// new ones read (0 when the envelope cannot be read: a corrupt entry may
    /// be anything). Never follows a symbolic link.
    private func tally(_ directory: String, known: [String: Int], messageDirectory: (String) -> String) -> [String: Int] {
        guard let names = try? DirectoryListing.names(in: directory) else { return [:] }   // no such area: nothing there
        var result: [String: Int] = [:]
        for name in names {
            if let count = known[name] {
                result[name] = count
                continue
            }
            result[name] = Self.recipients(in: directory + "/" + messageDirectory(name))
        }
        return result
    }

    /// The recipient count of the envelope in `directory`, read without
    /// following links and bounded in size; 0 if it is not a readable envelope.
    static func recipients(in directory: String) -> Int {
        guard let data = try? MessageDirectory(path: directory).readEnvelopeData(),
              let envelope = try? Envelope.decode(data) else { return 0 }
        return envelope.recipients.count
    }
}
