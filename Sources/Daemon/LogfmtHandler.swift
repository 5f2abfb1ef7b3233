import Foundation
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
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A logfmt value: bare when it has no space, quote, equals sign or control
    /// character, quoted and escaped otherwise.
    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.value < 0x20 }
        return needsQuotes ? QuotedString.quoted(value) : value
    }

    /// One JSON object per line, keys sorted, through the envelope's writer.
    static func json(_ fields: [(String, String)]) -> String {
        JSONValue.object(Dictionary(fields, uniquingKeysWith: { $1 }).mapValues(JSONValue.string)).encodedLine()
    }
}
