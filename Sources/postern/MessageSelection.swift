import ArgumentParser
import Daemon
import Foundation
import Logging
import PosternCore
import Spool

/// How queue-control commands choose messages: IDs, or predicates, or all.
struct MessageSelection: ParsableArguments {
    @Argument(help: ArgumentHelp("Queue IDs.", valueName: "id"))
    var ids: [String] = []

    @Option(help: ArgumentHelp("Messages from this envelope sender ('<>' for the null sender).", valueName: "address"))
    var sender: String?

    @Option(help: ArgumentHelp("Messages with this recipient.", valueName: "address"))
    var recipient: String?

    @Option(help: ArgumentHelp("Messages with a recipient at this domain.", valueName: "domain"))
    var domain: String?

    @Option(help: ArgumentHelp("Messages that arrived longer ago than this, e.g. 2h or 1d.", valueName: "duration"))
    var olderThan: String?

    @Flag(help: "Every message in queue/ and hold/.")
    var all = false

    @Flag(help: "Show what would change, change nothing.")
    var dryRun = false

    @Flag(help: "One JSON object per message: {\"id\", \"action\", \"result\", \"reason\"}.")
    var json = false

    func validate() throws {
        if let olderThan, DurationText.parse(olderThan) == nil {
            throw ValidationError("--older-than: \"\(olderThan)\" is not a duration like 90s, 2h or 1d")
        }
        for id in ids where QueueID(id) == nil { throw ValidationError("\"\(id)\" is not a queue ID") }
        guard all || !ids.isEmpty || sender != nil || recipient != nil || domain != nil || olderThan != nil else {
            throw ValidationError("name messages by ID, or select them with --sender, --recipient, --domain, --older-than or --all")
        }
    }

    /// Whether choosing needs the envelopes (a filter on what they say).
    var readsEnvelopes: Bool { sender != nil || recipient != nil || domain != nil || olderThan != nil }

    /// The accepted messages (queue/ and hold/) that match, read without
    /// changing anything. IDs and `--all` are chosen from the directories'
    /// names alone (whoever applies the action checks each message); the
    /// filters read the envelopes.
    func select(_ layout: SpoolLayout, areas: [SpoolLayout.Area] = [.queue, .hold]) -> [QueueID] {
        let wanted = Set(ids.compactMap(QueueID.init))
        guard readsEnvelopes else {
            var found = Set<QueueID>()
            for area in areas {
                let ids = (try? DirectoryHandle(path: layout.directory(area)).queueIDs().ids) ?? []
                found.formUnion(wanted.isEmpty ? ids : ids.filter(wanted.contains))
            }
            return found.sorted()
        }
        return selectReading(layout, areas: areas, wanted: wanted)
    }

    /// The filters, read from the envelopes on every core (`SpoolListing`):
    /// what they ask of a message is in what a listing reads of it.
    private func selectReading(_ layout: SpoolLayout, areas: [SpoolLayout.Area], wanted: Set<QueueID>) -> [QueueID] {
        let cutoff = olderThan.flatMap(DurationText.parse).map { Date().addingTimeInterval(-$0) }
        // The filters in lower case once, not once per message read.
        let sender = self.sender.map { $0 == "<>" ? "" : $0.lowercased() }
        let recipient = self.recipient?.lowercased()
        let domain = self.domain?.lowercased()
        var selected: [QueueID] = []
        try? SpoolListing(layout: layout, areas: areas).run(process: { items in
            items.compactMap { item -> QueueID? in
                guard case .message(_, let envelope) = item else { return nil }
                if !wanted.isEmpty, !wanted.contains(envelope.id) { return nil }
                if let sender, (envelope.sender ?? "").lowercased() != sender { return nil }
                if let recipient, !envelope.recipients.contains(where: { $0.address.lowercased() == recipient }) { return nil }
                if let domain, !envelope.recipients.contains(where: { $0.domain == domain }) { return nil }
                if let cutoff, envelope.arrival >= cutoff { return nil }
                return envelope.id
            }
        }, emit: { selected += $0 })
        return selected
    }
}

/// Runs an action on selected messages: directly when no daemon runs (this
/// process takes the spool lock and is the single writer), through
/// `control/` when one does (the daemon applies it between attempts).
enum ControlRunner {
    static func run(_ action: ControlAction, selection: MessageSelection, global: GlobalOptions) throws {
        let layout = global.layout
        do { try SpoolCheck.requireSpool(layout) } catch { throw failure(error) }
        if selection.dryRun {
            // Drops count too: a daemon, or this command, accepts them before acting.
            let items = selection.select(layout, areas: [.drop, .queue, .hold])
            warnMissing(selection, items)
            for id in items { report(id, action, "would change", nil, json: selection.json) }
            if !selection.json { print("\(items.count) message\(items.count == 1 ? "" : "s") would be affected by \(action.name)") }
            return
        }
        var items: [QueueID] = []
        var outcomes: [QueueID: ControlOutcome] = [:]
        do {
            let lock = try SpoolLock(layout: layout)
            // No daemon: this command is the spool's single writer, and takes in
            // the drops it selects as the daemon would, so that what `postern
            // list` shows in drop/ can be held before a daemon ever starts.
            try acceptDrops(for: selection, layout: layout)
            items = selection.select(layout)
            warnMissing(selection, items)
            let control = QueueControl(layout: layout)
            outcomes = control.apply(action, to: items)
            if case .fail = action { try sendFailureDSNs(for: outcomes, control: control, layout: layout) }
            withExtendedLifetime(lock) {}
        } catch let error as SpoolError where error.status == .tempFail {
            // A daemon runs: it accepts drops itself, at once.
            items = selection.select(layout)
            warnMissing(selection, items)
            outcomes = try viaDaemon(action, items, layout: layout)
        } catch let error as SpoolError {
            throw failure(error)
        }
        let missing = Set(selection.ids.compactMap(QueueID.init)).subtracting(items)
        var changed = 0
        for id in outcomes.keys.sorted() {
            switch outcomes[id]! {
            case .changed:
                changed += 1
                report(id, action, "changed", nil, json: selection.json)
            case .unchanged(let reason):
                report(id, action, "unchanged", reason, json: selection.json)
            }
        }
        if !selection.json { print("\(changed) message\(changed == 1 ? "" : "s") affected by \(action.name)") }
        if !missing.isEmpty { throw ExitCode(ExitStatus.noInput.rawValue) }
    }

    static func warnMissing(_ selection: MessageSelection, _ items: [QueueID]) {
        let missing = Set(selection.ids.compactMap(QueueID.init)).subtracting(items)
        for id in missing.sorted() { warn("\(id): no such message in queue/ or hold/") }
    }

    /// Accepts the drops a selection may name (all of them for --all or a
    /// filter), as the daemon would (`DropAcceptance`): a bad one is
    /// quarantined with its reason, one that cannot be taken now stays.
    static func acceptDrops(for selection: MessageSelection, layout: SpoolLayout) throws {
        let names = ((try? DirectoryListing.names(in: layout.directory(.drop))) ?? []).sorted()
        let wanted = Set(selection.ids)
        let chosen = selection.all || selection.readsEnvelopes ? names : names.filter { wanted.contains($0) }
        guard !chosen.isEmpty else { return }
        let configuration = try ConfigOptions.parse([]).load()
        var acceptance = DropAcceptance(layout: layout, trustedOwners: MessageDirectory.trustedOwners(of: layout),
                                        maxMessageSize: configuration.drop.maxMessageSize,
                                        maxRecipients: configuration.drop.maxRecipients)
        // Local recipients are rewritten as the daemon would (`[local]`).
        let local = Postern.Run.localSettings(configuration)
        let (rewriting, problems) = LocalRecipients.current(local, file: AliasesFile(path: local.aliasesPath))
        for problem in problems { warn("\(problem)") }
        if let rewriting {
            acceptance.local = rewriting
            acceptance.report = { id, rewrite in
                for change in rewrite.changes {
                    warn("\(id): local recipient \(change.recipient) -> \(change.addresses.joined(separator: ", ")) (\(change.by))")
                }
                for warning in rewrite.warnings { warn("\(id): aliases: \(warning)") }
            }
        }
        let quarantine = Quarantine(layout: layout, now: { Date() })
        for name in chosen {
            let reason: String
            switch acceptance.accept(name) {
            case .accepted, .acceptedCopyRemains, .gone, .leftover: continue
            case .later(let why, _):
                warn("\(TerminalText.safe(name)): not accepted now: \(why)")
                continue
            case .badName: reason = "an entry whose name is not a queue ID"
            case .invalid(let why): reason = why
            case .duplicate: reason = "duplicate: \(name) is already queued"
            }
            if let target = try? quarantine.move(name, in: layout.directory(.drop), reason: reason) {
                warn("\(TerminalText.safe(name)): quarantined to \(target): \(reason)")
            }
        }
    }

    /// Without a daemon, whoever fails messages sends their failure DSNs (through
    /// the spool, for the next daemon to deliver); the daemon only removes them.
    static func sendFailureDSNs(for outcomes: [QueueID: ControlOutcome], control: QueueControl, layout: SpoolLayout) throws {
        let configuration = try ConfigOptions.parse([]).load()
        let logger = Logger(label: "postern") { LogfmtHandler(label: $0) }
        let dsn = SpoolDSN(layout: layout, settings: Postern.Run.dsnSettings(configuration), logger: logger)
        for (id, outcome) in outcomes where outcome == .changed {
            guard let (area, found) = control.locate(id) else { continue }
            var envelope = found
            // A DSN that cannot be dropped keeps its mark for the next daemon.
            guard dsn.sendPending(&envelope) else { continue }
            try? control.store.update(envelope, in: area, durability: .processCrash)
        }
    }

    /// Hands the request to the running daemon and waits for its answer.
    static func viaDaemon(_ action: ControlAction, _ ids: [QueueID], layout: SpoolLayout) throws -> [QueueID: ControlOutcome] {
        guard !ids.isEmpty else { return [:] }
        let mailbox = ControlMailbox(layout: layout)
        let request = ControlRequest(id: QueueIDGenerator().next(), action: action, messages: ids)
        do {
            try mailbox.submit(request)
        } catch {
            throw failure(SpoolError(error.exitStatus, "cannot send the request to the daemon: \(error)"))
        }
        // The daemon answers within a second unless a message is mid-attempt; an
        // attempt can take minutes, so the wait is long but bounded.
        let deadline = Date().addingTimeInterval(600)
        while Date() < deadline {
            if let response = mailbox.response(to: request.id) { return response.outcomes }
            usleep(50_000)
        }
        throw failure(SpoolError(.tempFail, "the daemon has not answered request \(request.id) yet; it stays in control/ and will be applied"))
    }

    static func report(_ id: QueueID, _ action: ControlAction, _ result: String, _ reason: String?, json: Bool) {
        if json {
            var object: [String: JSONValue] = ["id": .string(id.rawValue), "action": .string(action.name), "result": .string(result)]
            if let reason { object["reason"] = .string(reason) }
            print(JSONValue.object(object).encodedLine())
        } else {
            print("\(id): \(result)" + (reason.map { " (\($0))" } ?? ""))
        }
    }
}
