import ArgumentParser
import Config
import Delivery
import Foundation
import PosternCore
import Spool

extension Postern {
    /// `postern tls-policy`: the TLS policy direct delivery would apply to a domain.
    struct TLSPolicyCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tls-policy",
            abstract: "Show the TLS policy (DANE, MTA-STS, REQUIRETLS) delivery would apply to a domain.",
            discussion: """
                Looks up the domain as the daemon would, with the configured resolver: its MX hosts and \
                whether DNSSEC vouched for them (dns.trust_ad), its MTA-STS policy (from the spool's \
                cache, or fetched; a fetched policy is not stored), and for each MX host its TLSA \
                records and the resulting plan: STARTTLS required or opportunistic, what is verified, \
                or why the host would not be used. Sends no mail.

                With a route that sends the domain elsewhere (a relay), says so instead.

                EXIT STATUS
                  0 shown; 78 bad configuration.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ConfigOptions

        @Flag(help: "As for a message with REQUIRETLS (postern drop --require-tls).")
        var requireTLS = false

        @Argument(help: "The recipient domain.")
        var domain: String

        func run() throws {
            let configuration = try options.load()
            let router: Router
            do {
                router = try TransportFactory.router(configuration, spool: global.layout, storesPolicies: false)
            } catch {
                warn("\(error)")
                throw ExitCode(78)
            }
            let name = domain.lowercased()
            switch router.transport(sender: "", domain: name, attemptsMade: 0, override: nil) {
            case .failure(let unavailable):
                output("\(TerminalText.safe(name)): \(unavailable.reason)\n")
            case .success(let transport as DirectTransport):
                let lines = transport.tlsPolicyDescription(for: name, requireTLS: requireTLS ? true : nil)
                output(lines.map { TerminalText.safe($0) }.joined(separator: "\n") + "\n")
            case .success(let transport):
                output("\(TerminalText.safe(name)): routed to transport \(transport.name), whose TLS is configured; DANE and MTA-STS apply to direct delivery only\n")
            }
        }
    }

    /// `postern tlsrpt`: the TLSRPT results counted so far, as RFC 8460 reports.
    struct TLSRPT: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "tlsrpt",
            abstract: "Print the TLSRPT results (RFC 8460) counted per policy domain and UTC day.",
            discussion: """
                Reads SPOOL/tlsrpt/DAY/DOMAIN.json (spool-layout.md 11) and prints one RFC 8460 \
                report per domain and day, as JSON Lines (one report per line). Reports are not \
                mailed to the domains' rua addresses.

                EXIT STATUS
                  0 printed (nothing when nothing was counted); 78 bad configuration.
                """
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var options: ConfigOptions

        @Option(help: ArgumentHelp("Only this UTC day.", valueName: "YYYY-MM-DD"))
        var day: String?

        @Option(help: ArgumentHelp("Only this policy domain.", valueName: "domain"))
        var domain: String?

        func run() throws {
            let configuration = try options.load()
            let counter = TLSReportCounter(directory: global.layout.tlsReports)
            for counts in counter.days(day) where domain == nil || counts.domain == domain?.lowercased() {
                let report = counts.report(organization: configuration.hostname, contact: "postmaster@\(configuration.hostname)")
                output(report.encodedLine() + "\n")
            }
        }
    }
}
