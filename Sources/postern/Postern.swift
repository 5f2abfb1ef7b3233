import ArgumentParser
import Foundation
import Glibc
import PosternCore

/// The `postern` command: one binary for the daemon, the drop path and queue
/// management, as `sendmail` and `mailq` too when invoked under those names.
///
/// Every command names itself (`commandName`): otherwise ArgumentParser makes
/// each name from its type with `String(describing:)`, a search of every
/// protocol conformance in the binary, at every start of every command.
@main
struct Postern: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postern",
        abstract: "An outgoing-mail spooler: queue mail in a spool directory and deliver it over SMTP.",
        discussion: """
            Programs drop mail with 'postern drop' (or 'sendmail', a link to this binary); \
            the spool is plain directories and JSON envelopes, documented in spool-layout.md.

            ENVIRONMENT
              POSTERN_SPOOL               the spool (default /var/spool/postern)
              POSTERN_CONFIG              the configuration file for commands
                                          without --config (default
                                          /etc/postern/postern.toml)
              POSTERN_HOSTNAME            overrides hostname for drops
              POSTERN_MESSAGE_SIZE_LIMIT  overrides drop.max_message_size

            EXIT STATUS
              Follows sysexits(3): 0 success, 64 usage, 65 data error,
              66 no input, 70 internal error, 73 cannot create,
              75 temporary failure, 77 permission denied, 78 bad configuration.
            """,
        subcommands: [Run.self, Init.self, Drop.self, Sendmail.self, Check.self, List.self, Show.self,
                      Cat.self, Count.self, Kick.self, Hold.self, Release.self, Delete.self, Fail.self,
                      RequireTLS.self, Explain.self, ConfigCommand.self, SMTPProbe.self, TLSPolicyCommand.self, TLSRPT.self, QueueIDs.self, IndexMemory.self]
    )

    /// Dispatches on the program's name and on the sendmail-style subcommands,
    /// whose flags (`-oi`, `-fSENDER`) are not swift-argument-parser's grammar.
    static func main() {
        let program = URL(fileURLWithPath: CommandLine.arguments.first ?? "postern").lastPathComponent
        var arguments = Array(CommandLine.arguments.dropFirst())
        switch program {
        case "sendmail":
            DropHandoff.exec(arguments, as: program)
        case "mailq":
            arguments = ["list"] + arguments
        default:
            if let first = arguments.first, first == "drop" || first == "sendmail" {
                DropHandoff.exec(Array(arguments.dropFirst()), as: first == "drop" ? "postern drop" : "sendmail")
            }
        }
        // Installed set-group-ID for the drop path only: every other command
        // runs with the invoking user's own group.
        SetID.relinquish()
        main(arguments)
    }
}

/// What a set-group-ID (or set-user-ID) installation changes: the drop runs
/// with the drop group, and nothing the invoking user controls (flags naming
/// another spool, `POSTERN_*` variables) may steer it; every other command
/// gives the privilege up before it starts (spool-layout.md section 3).
enum SetID {
    /// Whether the real and effective ids differ, as they do under a set-ID bit.
    static var active: Bool { getuid() != geteuid() || getgid() != getegid() }

    /// Gives up the effective group (and user) for good; exits if that fails.
    static func relinquish() {
        guard active else { return }
        // setregid with the real id as both also sets the saved id (POSIX), so it cannot come back.
        guard setregid(getgid(), getgid()) == 0, setreuid(getuid(), getuid()) == 0 else {
            FileHandle.standardError.write(Data("postern: cannot give up set-ID privileges: \(POSIX.errorText(errno))\n".utf8))
            Glibc.exit(ExitStatus.software.rawValue)
        }
    }
}

/// The options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The spool directory.", valueName: "dir"))
    var spool: String = ProcessInfo.processInfo.environment["POSTERN_SPOOL"] ?? "/var/spool/postern"
}
