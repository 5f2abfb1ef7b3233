import ArgumentParser
import Foundation
import PosternCore
import Spool

extension Postern {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the messages in the spool, as mailq does.",
            discussion: """
                One block per message, oldest first: queue ID, state (dropped: not yet accepted \
                by a daemon; queued; held), age, size and sender, then each recipient with its \
                state and attempts, the last reply, and the next attempt. Entries that fail the \
                scanner's checks are reported on standard error; run 'postern check'.

                With --json, one JSON object per line with the keys id, state, sender ('' for \
                the null sender), recipients (address, state, attempts, last_result), arrival, \
                size, attempts, next_attempt, message_id and last_result.

                Works without a daemon and never modifies the spool.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Flag(help: "One JSON object per line.")
        var json = false

        @Option(help: ArgumentHelp("Only messages in this state: dropped, queued or held.", valueName: "state"))
        var state: String?

        @Flag(help: "List finished messages kept in retired/ (queue.keep_retired) instead.")
        var retired = false

        @Option(help: ArgumentHelp("Only messages with a recipient whose last attempt failed this way: temporary or permanent.", valueName: "class"))
        var error: String?

        func validate() throws {
            _ = try selectedAreas(state)
            if let error, !["temporary", "permanent"].contains(error) {
                throw ValidationError("--error must be temporary or permanent")
            }
        }

        /// Whether a recipient's last result is of the error class asked for.
        static func matches(_ envelope: Envelope, errorClass: String?) -> Bool {
            guard let errorClass else { return true }
            return envelope.recipients.contains { recipient in
                guard let result = recipient.lastResult, recipient.state != .delivered else { return false }
                return errorClass == "permanent" ? result.permanent : !result.permanent
            }
        }

        func run() throws {
            let layout = global.layout
            let areas = try selectedAreas(state)
            do { try SpoolCheck.requireSpool(layout) } catch { throw failure(error) }
            let now = Date()
            var count = 0
            var octets = 0
            if retired {
                for envelope in Self.retiredEnvelopes(layout) {
                    count += 1
                    octets += envelope.size
                    output(json ? Self.jsonLine(envelope, state: "retired") + "\n" : Self.block(envelope, state: "retired", now: now))
                }
                if !json { print(count == 0 ? "No retired messages" : "-- \(count) retired message\(count == 1 ? "" : "s")") }
                return
            }
            let report = SpoolScanner(layout: layout, mode: .readOnly).scan(areas: areas) { item in
                guard Self.matches(item.envelope, errorClass: error) else { return }
                count += 1
                octets += item.envelope.size
                output(json ? Self.jsonLine(item.envelope, state: item.area.state) + "\n"
                            : Self.block(item.envelope, state: item.area.state, now: now))
            }
            for item in report.quarantined {
                warn("\(item.origin) cannot be trusted: \(TerminalText.safe(item.reason)) (run 'postern check')")
            }
            for error in report.errors { warn(error) }
            if !json {
                print(count == 0 ? "Mail queue is empty" : "-- \(Self.size(octets)) in \(count) message\(count == 1 ? "" : "s")")
            }
        }

        static func size(_ octets: Int) -> String {
            switch octets {
            case ..<1024: "\(octets)B"
            case ..<(1024 * 1024): "\(octets / 1024)K"
            default: String(format: "%.1fM", Double(octets) / 1048576)
            }
        }

        /// Envelopes in retired/, oldest first; unreadable ones are skipped with a warning.
        static func retiredEnvelopes(_ layout: SpoolLayout) -> [Envelope] {
            let names = ((try? DirectoryListing.names(in: layout.retired)) ?? []).sorted()   // no retired/: none kept
            return names.compactMap { name in
                do {
                    return try Envelope.decode(try MessageDirectory(path: layout.retired + "/" + name).readEnvelopeData())
                } catch {
                    warn("retired/\(name): \(error)")
                    return nil
                }
            }
        }

        /// One message for people, each line made terminal-safe: addresses and
        /// replies come from envelopes and servers (issue #12 item 9).
        static func block(_ envelope: Envelope, state: String, now: Date) -> String {
            let age = DurationText.short(now.timeIntervalSince(envelope.arrival))
            var lines = ["\(envelope.id) \(state.padding(toLength: 7, withPad: " ", startingAt: 0)) "
                + "\(age.leftPadded(5)) \(size(envelope.size).leftPadded(6))  \(envelope.sender ?? "<>")"]
            let indent = String(repeating: " ", count: 50)
            for recipient in envelope.recipients {
                let attempts = recipient.attempts == 1 ? "1 attempt" : "\(recipient.attempts) attempts"
                lines.append("\(indent)\(recipient.address) (\(recipient.state.rawValue), \(attempts))")
                if let result = recipient.lastResult, recipient.state != .delivered {
                    lines.append("\(indent)  last: \(Self.describe(result))")
                }
            }
            if state != "held", envelope.recipients.contains(where: { $0.state == .pending }) {
                let next = envelope.nextAttempt.map(Timestamp.format) ?? "now"
                lines.append("\(indent)next attempt: \(next)")
            }
            return lines.map { TerminalText.safe($0) + "\n" }.joined() + "\n"
        }

        /// A reply in one line: code, enhanced code, first line of text, host.
        static func describe(_ result: DeliveryResult) -> String {
            let parts = [result.code.map(String.init), result.enhanced,
                         result.text.split(separator: "\n").first.map(String.init)].compactMap { $0 }
            return parts.joined(separator: " ") + (result.host.map { " (\($0))" } ?? "")
        }

        /// A result as the JSON outputs show it (list --json, explain --json): every key, null when unknown.
        static func resultJSON(_ value: DeliveryResult?) -> JSONValue {
            guard let value else { return .null }
            return .object(["time": .string(Timestamp.format(value.time)),
                            "code": value.code.map { .integer(Int64($0)) } ?? .null,
                            "enhanced": value.enhanced.map(JSONValue.string) ?? .null,
                            "text": .string(value.text), "host": value.host.map(JSONValue.string) ?? .null,
                            "permanent": .bool(value.permanent)])
        }

        static func jsonLine(_ envelope: Envelope, state: String) -> String {
            let result = resultJSON
            let recipients = envelope.recipients.map { recipient -> JSONValue in
                .object(["address": .string(recipient.address), "state": .string(recipient.state.rawValue),
                         "attempts": .integer(Int64(recipient.attempts)), "last_result": result(recipient.lastResult)])
            }
            let object: [String: JSONValue] = [
                "id": .string(envelope.id.rawValue),
                "state": .string(state),
                "sender": .string(envelope.sender ?? ""),
                "recipients": .array(recipients),
                "arrival": .string(Timestamp.format(envelope.arrival)),
                "size": .integer(Int64(envelope.size)),
                "attempts": .integer(Int64(envelope.attempts)),
                "next_attempt": envelope.nextAttempt.map { .string(Timestamp.format($0)) } ?? .null,
                "message_id": envelope.messageID.map(JSONValue.string) ?? .null,
                "last_result": result(envelope.lastResult),
            ]
            return JSONValue.object(object).encodedLine()
        }
    }
}

/// The areas a `--state` option selects; all when it is absent.
func selectedAreas(_ state: String?) throws -> [SpoolLayout.Area] {
    guard let state else { return [.queue, .hold, .drop] }
    guard let area = SpoolLayout.Area.allCases.first(where: { $0.state == state }) else {
        throw ValidationError("--state must be one of dropped, queued, held")
    }
    return [area]
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
