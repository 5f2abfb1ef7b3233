import ArgumentParser
import Spool

/// The exit statuses and mechanics every queue-control command shares.
let controlDiscussion = """
    Select messages by queue ID, or with --sender, --recipient, --domain, \
    --older-than (which combine) or --all; --dry-run shows what would change. \
    With a daemon running the change is handed to it through the spool's control/ \
    directory and applied between attempts, so it never races a delivery; without \
    one, the command takes the spool lock and applies it itself.

    EXIT STATUS
      0 done; 64 bad arguments; 66 a named message does not exist;
      75 the daemon did not answer in time (the request stays queued).
    """

extension Postern {
    struct Kick: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kick",
            abstract: "Make the next delivery attempt happen now.",
            discussion: "Attempts already made still count towards queue.max_attempts.\n\n" + controlDiscussion)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection
        @Option(help: ArgumentHelp("Deliver through this transport from now on.", valueName: "name"))
        var transport: String?
        func run() throws { try ControlRunner.run(.kick(transport: transport), selection: selection, global: global) }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "hold",
            abstract: "Move messages to hold/: kept, never delivered, until released.",
            discussion: "An operator's plain 'mv queue/ID hold/' is honoured the same way.\n\n" + controlDiscussion)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection
        @Option(help: ArgumentHelp("Why, recorded in the envelope.", valueName: "text"))
        var reason: String?
        func run() throws { try ControlRunner.run(.hold(reason: reason), selection: selection, global: global) }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "release",
            abstract: "Move held messages back to the queue; each is due at its recorded next attempt.",
            discussion: controlDiscussion)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection
        func run() throws { try ControlRunner.run(.release, selection: selection, global: global) }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Remove messages from the spool without telling their senders.",
            discussion: controlDiscussion)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection
        func run() throws { try ControlRunner.run(.delete, selection: selection, global: global) }
    }

    struct Fail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fail",
            abstract: "Fail every pending recipient permanently; the sender gets a failure DSN.",
            discussion: controlDiscussion)
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection
        @Option(help: ArgumentHelp("Why, recorded as the recipients' last result.", valueName: "text"))
        var reason: String?
        func run() throws { try ControlRunner.run(.fail(reason: reason), selection: selection, global: global) }
    }

    struct RequireTLS: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "requiretls",
            abstract: "Set REQUIRETLS (RFC 8689) on messages: yes, no, or default (policy decides).",
            usage: "postern requiretls yes|no|default [id ...] [selection]",
            discussion: controlDiscussion)
        @Argument(help: ArgumentHelp("yes, no or default.", valueName: "setting"))
        var setting: String
        @OptionGroup var global: GlobalOptions
        @OptionGroup var selection: MessageSelection

        func validate() throws {
            guard ["yes", "no", "default"].contains(setting) else { throw ValidationError("the setting must be yes, no or default") }
        }

        func run() throws {
            let value: Bool? = setting == "yes" ? true : setting == "no" ? false : nil
            try ControlRunner.run(.requireTLS(value), selection: selection, global: global)
        }
    }
}
