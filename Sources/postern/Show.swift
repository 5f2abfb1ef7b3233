import ArgumentParser
import Foundation
import PosternCore
import Spool

extension Postern {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show a message's envelope.",
            discussion: """
                Prints the envelope of the message with this queue ID, wherever it is (dropped, \
                queued or held): sender, recipients and their states, flags, attempts and the \
                recent history. With --json, prints envelope.json exactly as stored.

                EXIT STATUS
                  0 shown; 65 not a queue ID, or the message fails the scanner's checks;
                  66 no such message.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print envelope.json as stored.")
        var json = false

        @Argument(help: "The queue ID.")
        var id: String

        func run() throws {
            let found: (area: SpoolLayout.Area, directory: MessageDirectory, envelope: Envelope)
            do { found = try SpoolReader(layout: global.layout).message(id) } catch { throw failure(error) }
            if json {
                do {
                    FileHandle.standardOutput.write(Self.printable(try found.directory.readEnvelopeData(), found.envelope))
                } catch {
                    throw failure(SpoolError(.ioError, error.description))
                }
                return
            }
            output(Self.describe(found.envelope, state: found.area.state))
        }

        /// `envelope.json` as stored, unless it holds something a terminal acts on
        /// (a C0 control other than the newline, DEL, a C1 control): JSON allows raw
        /// DEL, C1 and CR, and a hand-made envelope may use them. Postern's own
        /// writer never does, so its files print exactly as stored; any other
        /// prints as that writer would have written it, which escapes them.
        static func printable(_ stored: Data, _ envelope: Envelope) -> Data {
            guard let text = String(validating: stored, as: UTF8.self),
                  TerminalText.safe(text, keeping: ["\n"]) == text else { return envelope.encoded() }
            return stored
        }

        /// The envelope for people. Each line is made terminal-safe as a whole:
        /// everything in it but the labels comes from the envelope, which another
        /// user may have written, or from a server's reply (issue #12 item 9).
        static func describe(_ envelope: Envelope, state: String) -> String {
            func tri(_ value: Bool?) -> String { value.map { $0 ? "yes" : "no" } ?? "unset" }
            var lines = [
                "id:            \(envelope.id)",
                "state:         \(state)",
                "arrival:       \(Timestamp.format(envelope.arrival))",
                "sender:        \(envelope.sender ?? "<>")",
                "size:          \(envelope.size)",
                "message-id:    \(envelope.messageID ?? "-")",
                "uid:           \(envelope.uid)",
                "8bit:          \(envelope.eightBit ? "yes" : "no")",
                "smtputf8:      \(envelope.smtputf8 ? "yes" : "no")",
                "requiretls:    \(tri(envelope.requireTLS))",
                // RFC 3461: what a failure DSN returns, and the sender's envelope ID (as xtext).
                "dsn return:    \(envelope.dsnReturn.map { $0.rawValue } ?? "default")",
                "dsn envid:     \(envelope.envelopeID ?? "-")",
                "transport:     \(envelope.transport ?? "default")",
                "attempts:      \(envelope.attempts) (max \(envelope.maxAttempts.map(String.init) ?? "default"))",
                "next attempt:  \(envelope.nextAttempt.map(Timestamp.format) ?? "now")",
                "recipients:",
            ]
            for recipient in envelope.recipients {
                lines.append("  \(recipient.address)  \(recipient.state.rawValue), \(recipient.attempts) attempts")
                if let original = recipient.original { lines.append("    original: \(original)") }
                if let result = recipient.lastResult { lines.append("    last: \(List.describe(result))") }
            }
            if !envelope.history.isEmpty {
                lines.append("history:")
                for attempt in envelope.history {
                    let place = [attempt.host, attempt.ip, attempt.tls].compactMap { $0 }.joined(separator: " ")
                    lines.append("  \(Timestamp.format(attempt.time)) \(place): \(List.describe(attempt.result))")
                }
            }
            return lines.map { TerminalText.safe($0) + "\n" }.joined()
        }
    }
}
