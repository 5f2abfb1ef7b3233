import ArgumentParser
import Config
import Foundation
import Spool

/// `--config FILE` and `-o key=value`, shared by `run` and `config check`.
struct ConfigOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The configuration file (default /etc/postern/postern.toml; missing means defaults).", valueName: "file"))
    var config: String?

    @Option(name: .customShort("o"), help: ArgumentHelp("Set a configuration key, Postfix style: -o queue.backoff_base=2s (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    /// The effective configuration, or a failure with EX_CONFIG and the error's line.
    func load() throws -> Configuration {
        do {
            return try Configuration.load(path: config ?? ProcessInfo.processInfo.environment["POSTERN_CONFIG"] ?? Configuration.defaultPath,
                                          required: config != nil, overrides: overrides,
                                          defaultHostname: Configuration.systemHostname())
        } catch {
            warn(error.description)
            throw ExitCode(78)
        }
    }
}

extension Postern {
    struct ConfigCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "config",
            abstract: "Work with the configuration file.",
            subcommands: [Check.self, Example.self]
        )

        struct Example: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "example",
                abstract: "Print the commented example configuration: every key at its default, documented.",
                discussion: "A starting point: postern config example > /etc/postern/postern.toml"
            )

            func run() {
                output(Configuration.exampleText())
            }
        }

        struct Check: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "check",
                abstract: "Validate the configuration and print the effective one, every key with its value.",
                discussion: """
                    Reads the file (and -o overrides) as 'postern run' would. An unknown key, a wrong type \
                    or a bad value is an error naming the key and its line, and so is a route that \
                    names an unknown transport. Then checks what the file only refers to: each \
                    transport's credentials file must be readable by this user and by no other \
                    (run it as the daemon's user), and each route must be reachable (not matched \
                    entirely by an earlier one), and the aliases file (local.aliases) must parse \
                    without a line left out. Problems go to standard error, one per line.

                    EXIT STATUS
                      0 valid; 78 invalid.
                    """
            )

            @OptionGroup var options: ConfigOptions

            func run() throws {
                let configuration = try options.load()
                output(configuration.rendered())
                var problems = configuration.credentialProblems().map(\.description) + configuration.unreachableRoutes()
                if !configuration.local.aliases.isEmpty {
                    problems += AliasesFile(path: configuration.local.aliases).load().problems.map(\.description)
                }
                for problem in problems { warn(problem) }
                if !problems.isEmpty { throw ExitCode(78) }
            }
        }
    }
}
