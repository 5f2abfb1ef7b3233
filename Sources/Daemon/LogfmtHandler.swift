import Foundation
import Glibc
import Logging
import PosternCore
import Spool

/// swift-log to standard error, one line per event: logfmt (`key=value`) by
/// default, JSON on request; no timestamp when journald adds its own
/// (`JOURNAL_STREAM` is set). Keys are stable so `grep` and log shippers can
/// rely on them.
public struct LogfmtHandler: LogHandler {
    public enum Format: String, Sendable { case logfmt, json }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: Format
    private let timestamps: Bool

    public init(label: String, format: Format = .logfmt,
                timestamps: Bool = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] == nil) {
        self.label = label
        self.format = format
        self.timestamps = timestamps
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = []
        if timestamps {
            fields.append(("time", Timestamp.format(Date(), milliseconds: true)))
        }
        fields.append(("level", event.level.rawValue))
        fields.append(("msg", event.message.description))
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }
        let line: String = switch format {
        case .logfmt: fields.map { "\($0.0)=\(Self.quoted($0.1))" }.joined(separator: " ")
        case .json: Self.json(fields)
        }
        // One write(2) per line (the helper continues only a short write), so
        // that lines from several threads do not interleave.
        do throws(SystemCallError) {
            try POSIX.writeAll(STDERR_FILENO, Array((line + "\n").utf8))
        } catch {
            // A log that cannot be written has nowhere to report that; the line is lost.
        }
    }

    /// A logfmt value: bare when it has no space, quote, equals sign or control
    /// character (C0, DEL or C1: a log is read on terminals), quoted and
    /// escaped otherwise. One pass over the bytes for the usual ASCII value.
    static func quoted(_ value: String) -> String {
        var plain = !value.isEmpty
        var ascii = true
        for byte in value.utf8 {
            if byte >= 0x80 {
                ascii = false
            } else if byte <= 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "=") || byte == 0x7F {
                plain = false
                break
            }
        }
        if plain && !ascii { plain = !value.unicodeScalars.contains { (0x80...0x9F).contains($0.value) } }
        return plain ? value : QuotedString.quoted(value)
    }

    /// One JSON object per line, keys sorted, through the envelope's writer.
    static func json(_ fields: [(String, String)]) -> String {
        JSONValue.object(Dictionary(fields, uniquingKeysWith: { $1 }).mapValues(JSONValue.string)).encodedLine()
    }
}
