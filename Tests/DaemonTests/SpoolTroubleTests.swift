import Foundation
import Glibc
import Logging
import Monitoring
import PosternTesting
import Spool
import Synchronization
import Testing
@testable import Daemon

/// Keeps the log lines a logger writes, for tests that count them.
final class LogLines: Sendable {
    let lines = Mutex<[String]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(sink: self) }
    }

    func count(_ message: String) -> Int { lines.withLock { $0.count { $0 == message } } }

    struct Handler: LogHandler {
        let sink: LogLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                 file: String, function: String, line: UInt) {
            sink.lines.withLock { $0.append("\(message)") }
        }
    }
}

/// The spool's conditions: which failures are one, said once each, counted,
/// and ended by a probe that writes.
struct SpoolTroubleTests {
    /// ENOSPC and EDQUOT are no space, EMFILE and ENFILE no descriptors,
    /// EROFS read-only; anything else (a permission, a missing file) is not a
    /// condition of the spool and is logged where it happens.
    @Test func classification() {
        let cases: [(Int32, SpoolTrouble.Condition?)] = [
            (ENOSPC, .noSpace), (EDQUOT, .noSpace), (EMFILE, .noDescriptors), (ENFILE, .noDescriptors),
            (EROFS, .readOnly), (EACCES, nil), (ENOENT, nil), (EIO, nil),
        ]
        for (code, condition) in cases {
            #expect(SpoolTrouble.condition(of: SpoolIOError("write", "/spool/x", code)) == condition, "\(code)")
        }
        #expect(SpoolTrouble.condition(of: CocoaError(.fileWriteOutOfSpace)) == nil)
    }

    /// Many failures of two conditions: two lines, every failure counted,
    /// both gauges set; a failure that is no condition is left to the caller.
    @Test func saidOncePerCondition() throws {
        let spool = try TemporarySpool()
        let log = LogLines(), metrics = PosternMetrics()
        let trouble = SpoolTrouble(layout: spool.layout, logger: log.logger, metrics: metrics)
        for _ in 0..<5 { #expect(trouble.absorb(SpoolIOError("write", "/spool/a", ENOSPC), while: "recording an attempt")) }
        #expect(trouble.absorb(SpoolIOError("utimensat", "/spool/b", EROFS), while: "registering an attempt"))
        #expect(!trouble.absorb(SpoolIOError("open", "/spool/c", EACCES), while: "reading"))
        #expect(trouble.isActive)
        #expect(log.count("spool not writable") == 2)
        let text = metrics.exposition()
        #expect(text.contains("postern_spool_write_failures_total{condition=\"no_space\"} 5"), "\(text)")
        #expect(text.contains("postern_spool_write_failures_total{condition=\"read_only\"} 1"))
        #expect(text.contains("postern_spool_unwritable{condition=\"no_space\"} 1"))
        #expect(text.contains("postern_spool_unwritable{condition=\"no_descriptors\"} 0"))
    }

    /// A probe that can write ends every condition (said once each), leaves
    /// nothing in tmp/, and a later failure begins a condition anew.
    @Test func probeEndsConditions() throws {
        let spool = try TemporarySpool()
        let log = LogLines(), metrics = PosternMetrics()
        let trouble = SpoolTrouble(layout: spool.layout, logger: log.logger, metrics: metrics)
        #expect(!trouble.probe(), "nothing to end")
        _ = trouble.absorb(SpoolIOError("write", "/spool/a", ENOSPC), while: "writing a DSN")
        _ = trouble.absorb(SpoolIOError("open", "/spool/a", EMFILE), while: "reading an envelope")
        #expect(trouble.probe())
        #expect(!trouble.isActive)
        #expect(log.count("spool writable again") == 2)
        #expect(try spool.temporaryNames().isEmpty)
        #expect(metrics.exposition().contains("postern_spool_unwritable{condition=\"no_space\"} 0"))
        _ = trouble.absorb(SpoolIOError("write", "/spool/a", ENOSPC), while: "writing a DSN")
        #expect(log.count("spool not writable") == 3)
    }
}
