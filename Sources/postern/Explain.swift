import ArgumentParser
import Config
import Foundation
import PosternCore
import Scheduler
import Spool

extension Postern {
    struct Explain: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain",
            abstract: "Tell a message's story and what happens next, in plain words.",
            discussion: """
                From the envelope (and the configuration, for the retry schedule): each attempt \
                with its time, host, address, TLS and reply; each recipient's state; when the next \
                attempt is due, how many remain and when the last is; whether a delayed DSN has \
                gone out; or why the message is held, retired or quarantined. Works without a \
                daemon and never modifies the spool.

                EXIT STATUS
                  0 explained; 65 not a queue ID; 66 no such message; 78 bad configuration.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ConfigOptions

        @Flag(help: "One JSON object instead of prose.")
        var json = false

        @Argument(help: "The queue ID.")
        var id: String

        func run() throws {
            let layout = global.layout
            guard let queueID = QueueID(id) else {
                throw failure(SpoolError(.dataError, "\"\(id)\" is not a queue ID (26 characters of Crockford base32)"))
            }
            let configuration = try options.load()
            if let reason = Self.quarantineReason(layout, queueID) {
                output(json ? JSONValue.object(["id": .string(id), "state": .string("quarantined"), "reason": .string(reason)]).encodedLine() + "\n"
                            : "\(id) is quarantined: \(TerminalText.safe(reason))\nIts files are in corrupt/\(id)/entry; see spool-layout.md, section 8.\n")
                return
            }
            let (envelope, state) = try Self.find(id, layout: layout)
            let story = Story(envelope: envelope, state: state, configuration: configuration, now: Date())
            output(json ? story.json.encodedLine() + "\n" : story.text)
        }

        /// The envelope wherever it is: dropped, queued, held, or retired.
        static func find(_ id: String, layout: SpoolLayout) throws -> (Envelope, String) {
            let result = Result { () throws(SpoolError) in try SpoolReader(layout: layout).message(id) }
            switch result {
            case .success(let found):
                return (found.envelope, found.area.state)
            case .failure(let error):
                let retired = MessageDirectory(path: layout.retired + "/" + id)
                if error.status == .noInput, MessageDirectory.lstatus(retired.path) != nil,
                   let data = try? retired.readEnvelopeData(), let envelope = try? Envelope.decode(data) {
                    return (envelope, "retired")
                }
                throw failure(error)
            }
        }

        static func quarantineReason(_ layout: SpoolLayout, _ id: QueueID) -> String? {
            guard let text = try? String(contentsOfFile: layout.corrupt + "/\(id)/reason", encoding: .utf8) else { return nil }
            return text.split(separator: "\n").first { $0.hasPrefix("reason: ") }.map { String($0.dropFirst(8)) } ?? text
        }
    }
}

/// A message's past and future, computed once for both the prose and the JSON.
struct Story {
    let envelope: Envelope
    let state: String
    let maxAttempts: Int
    let schedule: [Date]
    let delayedDSNSent: Bool
    let now: Date

    init(envelope: Envelope, state: String, configuration: Configuration, now: Date) {
        self.envelope = envelope
        self.state = state
        self.now = now
        maxAttempts = envelope.maxAttempts ?? configuration.queue.maxAttempts
        let backoff = Backoff(base: configuration.queue.backoffBase, factor: configuration.queue.backoffFactor, jitter: 0)
        let pending = envelope.recipients.contains { $0.state == .pending }
        schedule = pending && state != "held" ? backoff.remainingSchedule(next: envelope.nextAttempt ?? now, attempts: envelope.attempts,
                                                                          maxAttempts: maxAttempts) : []
        let threshold = configuration.dsn.delayWarningAttempts
        delayedDSNSent = threshold > 0 && envelope.attempts >= threshold && envelope.sender != nil
    }

    /// The story for people, each line made terminal-safe: hold reasons,
    /// addresses and replies come from envelopes and servers (issue #12 item 9).
    var text: String {
        var lines: [String] = []
        let age = DurationText.short(now.timeIntervalSince(envelope.arrival))
        lines.append("\(envelope.id) from \(envelope.sender ?? "<> (a bounce)"), \(envelope.size) octets, arrived \(Timestamp.format(envelope.arrival)) (\(age) ago).")
        switch state {
        case "held": lines.append("It is held" + (envelope.holdReason.map { ": \($0)." } ?? ".") + " Nothing is attempted until 'postern release'.")
        case "dropped": lines.append("It was dropped and no daemon has accepted it yet.")
        case "retired": lines.append("It is finished; this is the envelope kept in retired/.")
        default: lines.append("It is queued.")
        }
        lines.append("Attempts made: \(envelope.attempts) of at most \(maxAttempts).")
        if !envelope.history.isEmpty {
            lines.append("Attempts:")
            for attempt in envelope.history {
                let reuse = attempt.connectionUse.flatMap { $0 > 1 ? "connection reused, message \($0)" : nil }
                let policy = attempt.policy.map { "policy \($0.rawValue)" }
                let place = [attempt.host, attempt.ip.map { "[\($0)]" }, attempt.tls.map { "TLS \($0)" }, policy, reuse].compactMap { $0 }.joined(separator: " ")
                lines.append("  \(Timestamp.format(attempt.time)) \(place.isEmpty ? "" : place + ": ")\(Self.reply(attempt.result))")
            }
        }
        lines.append("Recipients:")
        for recipient in envelope.recipients {
            // RFC 3461 ORCPT: what the sender wrote, when an alias rewrote it.
            var line = "  \(recipient.address)" + (recipient.original.map { " (for \($0))" } ?? "") + ": \(recipient.state.rawValue) after \(recipient.attempts) attempt\(recipient.attempts == 1 ? "" : "s")"
            if let result = recipient.lastResult { line += "; last: \(Self.reply(result))" + (result.host.map { " from \($0)" } ?? "") }
            lines.append(line)
        }
        if let next = schedule.first, let last = schedule.last {
            let when = next <= now ? "now" : "\(Timestamp.format(next)) (in \(DurationText.short(next.timeIntervalSince(now))))"
            lines.append("Next: attempt \(envelope.attempts + 1) is due \(when); \(schedule.count) attempt\(schedule.count == 1 ? "" : "s") remain, the last at \(Timestamp.format(last)), after which the sender is told it failed.")
        } else if state == "queued" && envelope.recipients.allSatisfy({ $0.state != .pending }) {
            lines.append("Next: every recipient is final; the daemon removes it.")
        }
        if delayedDSNSent { lines.append("A delayed-delivery notice has gone to the sender.") }
        return lines.map { TerminalText.safe($0) + "\n" }.joined()
    }

    static func reply(_ result: DeliveryResult) -> String {
        let text = result.text.split(whereSeparator: \.isNewline).joined(separator: " ")
        return result.code == nil ? text : text.hasPrefix("\(result.code!)") ? text : "\(result.code!) \(text)"
    }

    var json: JSONValue {
        var recipients: [JSONValue] = []
        for recipient in envelope.recipients {
            var object: [String: JSONValue] = ["address": .string(recipient.address), "state": .string(recipient.state.rawValue),
                                               "attempts": .integer(Int64(recipient.attempts)), "last_result": Postern.List.resultJSON(recipient.lastResult)]
            if let original = recipient.original { object["original"] = .string(original) }
            recipients.append(.object(object))
        }
        var history: [JSONValue] = []
        for attempt in envelope.history {
            var object: [String: JSONValue] = ["time": .string(Timestamp.format(attempt.time)), "result": Postern.List.resultJSON(attempt.result)]
            object["host"] = attempt.host.map(JSONValue.string) ?? .null
            object["ip"] = attempt.ip.map(JSONValue.string) ?? .null
            object["tls"] = attempt.tls.map(JSONValue.string) ?? .null
            object["tls_policy"] = attempt.policy.map { .string($0.rawValue) } ?? .null
            object["conn_use"] = attempt.connectionUse.map { .integer(Int64($0)) } ?? .null
            history.append(.object(object))
        }
        var object: [String: JSONValue] = [
            "id": .string(envelope.id.rawValue),
            "state": .string(state),
            "sender": .string(envelope.sender ?? ""),
            "arrival": .string(Timestamp.format(envelope.arrival)),
            "attempts": .integer(Int64(envelope.attempts)),
            "max_attempts": .integer(Int64(maxAttempts)),
            "remaining_attempts": .array(schedule.map { JSONValue.string(Timestamp.format($0)) }),
            "delayed_dsn_sent": .bool(delayedDSNSent),
            "recipients": .array(recipients),
            "history": .array(history),
        ]
        // Meaningful in hold/ only: a release leaves it in the file (spool-layout.md 5).
        object["hold_reason"] = state == "held" ? envelope.holdReason.map(JSONValue.string) ?? .null : .null
        object["next_attempt"] = schedule.first.map { JSONValue.string(Timestamp.format($0)) } ?? .null
        // RFC 3461 RET and ENVID (xtext), as the envelope has them.
        object["ret"] = envelope.dsnReturn.map { .string($0.rawValue) } ?? .null
        object["envid"] = envelope.envelopeID.map(JSONValue.string) ?? .null
        return .object(object)
    }
}
