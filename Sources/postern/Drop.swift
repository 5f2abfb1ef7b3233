import ArgumentParser
import Foundation
import Glibc
import PosternCore

extension Postern {
    /// `postern drop`: runs `postern-drop`, the small program that does the drop.
    struct Drop: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "drop",
            abstract: "Read one message on standard input and drop it into the spool.",
            usage: "postern drop [flags] [--] [recipient ...]",
            discussion: """
                Runs postern-drop (installed beside postern), the program behind /usr/sbin/sendmail, \
                with sendmail's command line, so that scripts, cron and this command see one behaviour. \
                'postern drop --help' prints its flags, settings and exit statuses.
                """
        )

        @Argument(parsing: .captureForPassthrough, help: "Sendmail flags and recipients.")
        var arguments: [String] = []

        func run() throws {
            DropHandoff.exec(arguments, as: "postern drop")
        }
    }

    /// `postern sendmail`: the same as `postern drop`, under the name scripts know.
    struct Sendmail: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sendmail",
            abstract: "The same as 'postern drop' (install a link named sendmail to postern-drop to use it as /usr/sbin/sendmail).",
            usage: "postern sendmail [flags] [--] [recipient ...]",
            discussion: "See 'postern drop --help' for the flags and exit statuses."
        )

        @Argument(parsing: .captureForPassthrough, help: "Sendmail flags and recipients.")
        var arguments: [String] = []

        func run() throws {
            DropHandoff.exec(arguments, as: "sendmail")
        }
    }
}

/// The drop is one program, postern-drop, whichever way it is called (issue
/// #13): this binary, which links Foundation, OpenSSL and the rest, only execs it.
enum DropHandoff {
    /// postern-drop in this executable's directory.
    static var path: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("postern-drop").path
    }

    /// Replaces this process with postern-drop; `name` is how it calls itself in messages.
    static func exec(_ arguments: [String], as name: String) -> Never {
        let program = path
        let argv = ([name] + arguments).map { strdup($0) } + [nil]
        execv(program, argv)
        warn("cannot run \(program): \(POSIX.errorText(errno)) (postern-drop is installed beside postern)", program: name)
        Glibc.exit(ExitStatus.unavailable.rawValue)
    }
}
