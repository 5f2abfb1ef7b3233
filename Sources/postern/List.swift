import ArgumentParser
import CSysShim
import Foundation
import PosternCore
import Spool

extension Postern {
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the messages in the spool, as mailq does.",
            discussion: """
                One block per message, queued then held then dropped (not yet accepted by a \
                daemon): queue ID, state, age, size and sender, then each recipient with its \
                state and attempts, the last reply, and the next attempt. Envelopes are read on \
                every core and printed as they come. Within each state the messages come oldest \
                first when there are at most 10,000 of them; beyond that in directory order, as \
                Postfix's mailq lists them, so that the first lines come at once however big the \
                queue (sort with 'postern list --json | jq -s "sort_by(.arrival)"'). An \
                entry whose envelope cannot be read is reported on standard error (run 'postern \
                check'); one that goes away while it is listed (delivered) is left out.

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
        static func matches(_ recipients: [Recipient], errorClass: String?) -> Bool {
            guard let errorClass else { return true }
            return recipients.contains { recipient in
                guard let result = recipient.lastResult, recipient.state != .delivered else { return false }
                return errorClass == "permanent" ? result.permanent : !result.permanent
            }
        }

        /// One chunk of the listing, rendered on a reading thread.
        struct Chunk: Sendable {
            var output: [UInt8] = []
            var count = 0
            var octets = 0
            var problems: [String] = []
        }

        func run() throws {
            let layout = global.layout
            let areas = try selectedAreas(state)
            do { try SpoolCheck.requireSpool(layout) } catch { throw failure(error) }
            let now = Date()
            var count = 0
            var octets = 0
            let (json, errorClass) = (self.json, self.error)
            if retired {
                for envelope in Self.retiredEnvelopes(layout) {
                    count += 1
                    octets += envelope.size
                    let summary = EnvelopeSummary(envelope)
                    output(json ? Self.jsonLine(summary, state: "retired") : Self.block(summary, state: "retired", now: now))
                }
                if !json { print(count == 0 ? "No retired messages" : "-- \(count) retired message\(count == 1 ? "" : "s")") }
                return
            }
            // Envelopes read on every core, written here in order as they come.
            // Into a pipe (`| jq`) of 1 MiB rather than 64 KiB, a chunk goes in
            // one write instead of waking the reader for every 64 KiB of it.
            _ = csys_set_pipe_size(STDOUT_FILENO, 1 << 20)
            let listing = SpoolListing(layout: layout, areas: areas)
            do {
                try listing.run(process: { items in
                    var chunk = Chunk()
                    for item in items {
                        switch item {
                        case .message(let area, let summary):
                            guard Self.matches(summary.recipients, errorClass: errorClass) else { continue }
                            chunk.count += 1
                            chunk.octets += summary.size
                            if json {
                                Self.jsonLine(summary, state: area.state, into: &chunk.output)
                            } else {
                                chunk.output.append(contentsOf: Self.block(summary, state: area.state, now: now).utf8)
                            }
                        case .problem(let origin, let reason):
                            chunk.problems.append("\(origin) cannot be trusted: \(TerminalText.safe(reason)) (run 'postern check')")
                        }
                    }
                    return chunk
                }, emit: { chunk in
                    count += chunk.count
                    octets += chunk.octets
                    output(chunk.output)
                    for problem in chunk.problems { warn(problem) }
                })
            } catch {
                // Reading the queue is for root, the spool's owner and its group (spool-layout.md 3).
                throw failure(SpoolError(error.exitStatus, "cannot list the spool: \(error)"))
            }
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
        static func block(_ envelope: EnvelopeSummary, state: String, now: Date) -> String {
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

        /// One message as a line of JSON, keys sorted (as `jq -S` prints
        /// them), written as bytes rather than through a tree of values: the
        /// listing writes twenty thousand of them a second (issue #15).
        static func jsonLine(_ envelope: EnvelopeSummary, state: String) -> String {
            var out: [UInt8] = []
            jsonLine(envelope, state: state, into: &out)
            return String(decoding: out, as: UTF8.self)
        }

        static func jsonLine(_ envelope: EnvelopeSummary, state: String, into out: inout [UInt8]) {
            var line = JSONBytes(out: out)
            out = []
            line.raw("{\"arrival\":")
            line.time(envelope.arrival)
            line.raw(",\"attempts\":")
            line.integer(envelope.attempts)
            line.raw(",\"id\":\"")
            line.id(envelope.id)
            line.raw("\",\"last_result\":")
            line.result(envelope.lastResult)
            line.raw(",\"message_id\":")
            line.string(envelope.messageID)
            line.raw(",\"next_attempt\":")
            if let next = envelope.nextAttempt { line.time(next) } else { line.raw("null") }
            line.raw(",\"recipients\":[")
            for (index, recipient) in envelope.recipients.enumerated() {
                line.raw(index > 0 ? ",{\"address\":" : "{\"address\":")
                line.string(recipient.address)
                line.raw(",\"attempts\":")
                line.integer(recipient.attempts)
                line.raw(",\"last_result\":")
                line.result(recipient.lastResult)
                line.raw(",\"state\":\"")
                line.raw(recipient.state.rawValue)
                line.raw("\"}")
            }
            line.raw("],\"sender\":")
            line.string(envelope.sender ?? "")
            line.raw(",\"size\":")
            line.integer(envelope.size)
            line.raw(",\"state\":")
            line.string(state)
            line.raw("}\n")
            out = line.out
        }
    }
}

/// JSON written as bytes: literal pieces, quoted strings, numbers, times.
private struct JSONBytes {
    var out: [UInt8]

    mutating func raw(_ text: String) {
        out.append(contentsOf: text.utf8)
    }

    mutating func id(_ id: QueueID) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: QueueID.length))
        out.withUnsafeMutableBufferPointer { id.write(into: UnsafeMutableBufferPointer(rebasing: $0[start...])) }
    }

    mutating func integer(_ value: Int) {
        raw(String(value))
    }

    mutating func time(_ date: Date) {
        out.append(UInt8(ascii: "\""))
        Timestamp.write(epochSeconds: date.timeIntervalSince1970, into: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// A string, quoted and escaped as `QuotedString` does; `null` for nil.
    mutating func string(_ text: String?) {
        guard let text else { return raw("null") }
        let plain = text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
        guard plain else { return raw(QuotedString.quoted(text)) }
        out.append(UInt8(ascii: "\""))
        out.append(contentsOf: text.utf8)
        out.append(UInt8(ascii: "\""))
    }

    mutating func result(_ result: DeliveryResult?) {
        guard let result else { return raw("null") }
        raw("{\"code\":")
        if let code = result.code { integer(code) } else { raw("null") }
        raw(",\"enhanced\":")
        string(result.enhanced)
        raw(",\"host\":")
        string(result.host)
        raw(result.permanent ? ",\"permanent\":true,\"text\":" : ",\"permanent\":false,\"text\":")
        string(result.text)
        raw(",\"time\":")
        time(result.time)
        raw("}")
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
