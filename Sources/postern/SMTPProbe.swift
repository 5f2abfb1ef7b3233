import ArgumentParser
import Foundation
import PosternCore
import SMTP
import Spool
import TLS

extension Postern {
    /// `postern smtp-probe`: a mail admin's way to look at a peer through Postern's own client.
    struct SMTPProbe: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "smtp-probe",
            abstract: "Connect to an SMTP server with Postern's client and show what it says.",
            usage: "postern smtp-probe HOST[:PORT] [--tls-mode MODE] [--from SENDER --to RCPT ... < message]",
            discussion: """
                Prints each command and reply, the extensions, and the TLS session (protocol \
                version as OpenSSL names it, cipher, certificate subject, verification result). \
                With --to, sends the message read from standard input (line endings are made \
                CRLF) and prints each recipient's result; otherwise ends with QUIT after the \
                greeting, EHLO, STARTTLS and AUTH.

                Verification (--verify pkix, the default) is reported, not enforced, unless \
                --enforce is given: the probe shows a broken certificate instead of stopping at it.

                EXIT STATUS
                  0 success; 64 bad arguments; 69 the server refused permanently;
                  75 a temporary failure (network, timeout, TLS, 4xx).
                """
        )

        @Argument(help: ArgumentHelp("The server, as host, host:port, IPv4 or [IPv6]:port (default port 25).", valueName: "host[:port]"))
        var server: String

        @Option(help: ArgumentHelp("none, opportunistic, required or implicit (port 465).", valueName: "mode"))
        var tlsMode: String = "opportunistic"

        @Option(help: ArgumentHelp("Certificate checks: none or pkix.", valueName: "mode"))
        var verify: String = "pkix"

        @Flag(help: "Fail when verification fails, as a policy that requires it would.")
        var enforce = false

        @Option(help: ArgumentHelp("CA certificates (PEM) to trust instead of the system store.", valueName: "file"))
        var caFile: String?

        @Option(help: ArgumentHelp("The SNI and certificate name (default: the host).", valueName: "name"))
        var serverName: String?

        @Option(help: ArgumentHelp("The name to send in EHLO (default: this host's mail name: /etc/mailname, else the host name).", valueName: "name"))
        var ehlo: String?

        @Option(help: ArgumentHelp("Envelope sender; '' for the null sender.", valueName: "address"))
        var from: String = ""

        @Option(help: ArgumentHelp("A recipient; repeat for more. Sends the message on standard input.", valueName: "address"))
        var to: [String] = []

        @Option(help: ArgumentHelp("AUTH user name (the password is read from POSTERN_PROBE_PASSWORD).", valueName: "name"))
        var user: String?

        @Option(help: ArgumentHelp("Seconds to wait for each reply.", valueName: "seconds"))
        var timeout: Double = 30

        func validate() throws {
            guard TLSMode(rawValue: tlsMode) != nil else { throw ValidationError("--tls-mode must be none, opportunistic, required or implicit") }
            guard ["none", "pkix"].contains(verify) else { throw ValidationError("--verify must be none or pkix") }
            guard user == nil || ProcessInfo.processInfo.environment["POSTERN_PROBE_PASSWORD"] != nil else {
                throw ValidationError("--user needs the password in POSTERN_PROBE_PASSWORD")
            }
        }

        func run() throws {
            let mode = TLSMode(rawValue: tlsMode)!
            let (host, port) = try Self.split(server, defaultPort: mode == .implicit ? 465 : 25)
            let deadline = Deadline.after(timeout)
            let client: SMTPClient
            do {
                let ips = try TCPConnector.addresses(of: host)
                guard let ip = ips.first else { throw StreamError.system(operation: "resolve \(host)", code: 0) }
                let stream = try TCPConnector.connect(ip: ip, port: port, deadline: deadline)
                print("connected to \(ip) port \(port)")
                client = SMTPClient(stream: stream, options: try options(mode: mode, host: host))
            } catch let error as StreamError {
                throw failure(SpoolError(.tempFail, "cannot connect to \(server): \(error)"))
            }
            client.trace = { event in
                switch event {
                case .sent(let line): Self.say("C: \(line)")
                case .received(let reply): for line in reply.text.split(separator: "\n") { Self.say("S: \(line)") }
                case .tls(let info): Self.say("TLS: \(info.summary)" + (info.peerSubject.map { " subject=\($0)" } ?? ""))
                }
            }
            do {
                let facts = try client.open()
                Self.say("extensions: " + facts.extensions.keywords.keys.sorted().map { key in
                    ([key] + (facts.extensions.keywords[key] ?? [])).joined(separator: " ")
                }.joined(separator: ", "))
                Self.say("tls: " + (facts.tls?.summary ?? (facts.startTLSRefused.map { "refused: \($0.text)" } ?? "none")))
            } catch {
                Self.say("error: \(error)")
                throw ExitCode(error.isPermanent ? ExitStatus.unavailable.rawValue : ExitStatus.tempFail.rawValue)
            }
            var status = ExitStatus.ok
            if !to.isEmpty {
                let message = try Self.crlf(FileHandle.standardInput.readDataToEndOfFile())
                var transaction = Transaction(sender: from, recipients: to, message: BytesMessageSource(message))
                transaction.eightBit = message.contains { $0 >= 0x80 }
                for outcome in client.deliver(transaction).outcomes {
                    switch outcome.result {
                    case .success(let reply): Self.say("result: \(outcome.recipient): delivered: \(reply.text)")
                    case .failure(let error):
                        Self.say("result: \(outcome.recipient): \(error)")
                        status = error.isPermanent && status == .ok ? .unavailable : .tempFail
                    }
                }
            }
            client.quit()
            if status != .ok { throw ExitCode(status.rawValue) }
        }

        /// Prints one line of the transcript. Nearly all of it is the server's:
        /// replies, extension keywords, the certificate's subject, errors quoting
        /// replies. A server can send ESC and C1 controls in all of them, so each
        /// line is made terminal-safe, its own newlines included (issue #12 item 9).
        static func say(_ line: String) {
            print(TerminalText.safe(line))
        }

        func options(mode: TLSMode, host: String) throws -> SMTPClientOptions {
            var options = SMTPClientOptions(ehloName: ehlo ?? SystemHost.defaultMailName() ?? SystemHost.lastResort, tlsMode: mode)
            let name = serverName ?? host
            let isLiteral = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
            options.tls = TLSClientOptions(verification: verify == "pkix" ? .pkix(hostnames: [name]) : .none, enforce: enforce,
                                           serverName: isLiteral && serverName == nil ? nil : name,
                                           context: try TLSContext(trustAnchors: caFile.map(TrustAnchors.file) ?? .system))
            if let user, let password = ProcessInfo.processInfo.environment["POSTERN_PROBE_PASSWORD"] {
                options.credentials = Credentials(username: user, password: password)
            }
            options.timeouts = SMTPTimeouts(uniform: timeout)
            return options
        }

        /// `host`, `host:port`, `[v6]:port`, or a bare IPv6 address.
        static func split(_ text: String, defaultPort: UInt16) throws -> (String, UInt16) {
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                let host = String(text[text.index(after: text.startIndex)..<close])
                let rest = text[text.index(after: close)...]
                guard rest.isEmpty || rest.hasPrefix(":") else { throw ValidationError("bad server \(text)") }
                guard rest.isEmpty || UInt16(rest.dropFirst()) != nil else { throw ValidationError("bad port in \(text)") }
                return (host, rest.isEmpty ? defaultPort : UInt16(rest.dropFirst())!)
            }
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 2 {
                guard let port = UInt16(parts[1]) else { throw ValidationError("bad port in \(text)") }
                return (String(parts[0]), port)
            }
            return (text, defaultPort)
        }

        /// The message with every line ending made CRLF.
        static func crlf(_ data: Data) throws -> [UInt8] {
            var splitter = LineSplitter()
            var out: [UInt8] = []
            let append: (ArraySlice<UInt8>) -> Void = { line in
                out.append(contentsOf: line)
                out.append(contentsOf: [13, 10])
            }
            do {
                try splitter.feed(Array(data), line: append)
                try splitter.finish(line: append)
            } catch {
                throw ValidationError("the message on standard input has a line longer than 998 octets")
            }
            return out
        }
    }
}
