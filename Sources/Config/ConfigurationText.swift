import Foundation
import PosternCore

// The configuration as text on disk: reading the file, and writing the
// configuration back out as TOML.

/// The configuration written back out as TOML, from the key table: what
/// `postern config check` prints, and the example file at the repository root.
extension Configuration {
    /// The effective configuration as TOML, every key present with a comment
    /// line saying what it does.
    ///
    /// It parses back to an equal configuration (whatever the parsing
    /// machine's host name, since `hostname` is written out), so an admin can
    /// save it as a starting point that pins what is running now.
    public func rendered() -> String {
        var text = "# The postern configuration in effect.\n"
        for (table, keys) in Self.keysByTable() {
            text += "\n"
            if let table { text += "[\(table)]\n" }
            for key in keys {
                text += "# \(key.doc)\n"
                text += "\(key.leaf) = \(key.current(self).tomlText)\n"
            }
        }
        for transport in transports { text += "\n" + transport.tomlText }
        for route in routes { text += "\n" + route.tomlText }
        return text
    }

    /// The commented example configuration (`postern.toml.example`): every
    /// key with what it does, its type and its default.
    ///
    /// Each key is commented out (`#max_attempts = 8`) rather than set, so that
    /// a copy of the example pins nothing and a later release's better
    /// default still applies; the admin uncomments what they change. Keys with
    /// no fixed default (`hostname`) show an example value instead.
    public static func exampleText() -> String {
        var text = """
            # postern.toml: the configuration of the postern daemon (`postern run`).
            #
            # Read from \(defaultPath), or from the file given with --config FILE.
            # Every key is optional; each is shown below commented out, at its default,
            # with its type. Unknown keys and bad values are errors, never ignored.
            #
            # Durations are strings of days, hours, minutes, seconds and milliseconds,
            # largest first: "90s", "7m30s", "2h", "1d12h", "250ms". A bare number is not
            # a duration.
            #
            # Any key can be set on the command line too, Postfix style, winning over
            # this file; a table's keys are named with a dot:
            #     postern run -o queue.max_concurrent=20 -o relay=127.0.0.1:2525
            # `postern config check` prints the configuration in effect.
            #
            # This file is generated from Sources/Config/KeyTable.swift
            # (Configuration.exampleText()); ConfigTests checks that they agree.

            """
        for (table, keys) in keysByTable() {
            if let table { text += "\n[\(table)]\n" }
            for key in keys {
                text += "\n# \(key.doc)\n"
                for line in key.details { text += "# \(line)\n" }
                let defaultText = key.defaultValue?.tomlText ?? key.defaultNote ?? "none"
                text += "# Type: \(key.summary). Default: \(defaultText).\n"
                if let shown = key.defaultValue ?? key.exampleValue {
                    text += "#\(key.leaf) = \(shown.tomlText)\n"
                }
            }
        }
        return text + routingExample
    }

    /// The keys grouped by table, top-level keys first (TOML requires them
    /// before the first table header), each group in key-table order.
    private static func keysByTable() -> [(table: String?, keys: [KeyDefinition])] {
        [(nil, KeyTable.keys(in: nil))] + KeyTable.tables.map { ($0, KeyTable.keys(in: $0)) }
    }
}

/// Reading the configuration file from disk.
enum ConfigurationFile {
    /// Far more than any configuration; stops `--config /dev/zero` from
    /// reading forever.
    static let sizeLimit = 1 << 20

    /// The file's text; `nil` when it does not exist and is not `required`.
    static func read(path: String, required: Bool) throws(ConfigurationError) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT, !required { return nil }
            throw ConfigurationError(source: path, message: "cannot open the configuration file: \(POSIX.errorText(code))")
        }
        defer { close(fd) }
        let bytes: [UInt8]
        do throws(SystemCallError) {
            // One octet more than the limit tells a file at the limit from a larger one.
            bytes = try POSIX.read(fd, upTo: sizeLimit + 1)
        } catch {
            throw ConfigurationError(source: path, message: "cannot read the configuration file: \(error)")
        }
        guard bytes.count <= sizeLimit else {
            throw ConfigurationError(source: path, message: "the file is larger than \(sizeLimit) bytes")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigurationError(source: path, message: "the file is not valid UTF-8 (TOML files must be)")
        }
        return text
    }

}
