import ArgumentParser

extension Postern {
    /// `postern sendmail`: the same as `postern drop`, under the name scripts know.
    struct Sendmail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The same as 'postern drop' (install a link named sendmail to use it as /usr/sbin/sendmail).",
            usage: "postern sendmail [flags] [--] [recipient ...]",
            discussion: "See 'postern drop --help' for the flags and exit statuses."
        )

        @Argument(parsing: .captureForPassthrough, help: "Sendmail flags and recipients.")
        var arguments: [String] = []

        func run() throws {
            let status = DropCommand.run(arguments, program: "sendmail")
            if status != 0 { throw ExitCode(status) }
        }
    }
}
