import ArgumentParser
import Config
import Foundation
import Glibc
import PosternCore
import Spool

extension Postern {
    /// `postern drop`: the sendmail-compatible way into the spool.
    struct Drop: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read one message on standard input and drop it into the spool.",
            usage: "postern drop [flags] [--] [recipient ...]",
            discussion: """
                Takes sendmail's command line, so the same binary serves as /usr/sbin/sendmail \
                for cron, PHP and scripts (invoked as 'sendmail', or as 'postern sendmail').

                The message is read until end of file, or until a line with a single dot unless \
                -i is given. Line endings are stored as CRLF. From:, Date: and Message-ID: are \
                added when missing; Bcc: is removed. Every address is checked (RFC 5321 syntax, \
                IDN domains stored in A-label form, control characters refused). A line longer \
                than 998 octets (RFC 5322 2.1.1) refuses the message rather than fold it silently.

                FLAGS
                  -t            Also take recipients from To:, Cc: and Bcc:.
                  -f SENDER     Envelope sender ('<>' or '' for the null sender); also -r.
                                Default: the invoking user at the configured hostname.
                  -F NAME       Full name for a generated From: header.
                  -i, -oi       A line with a single dot does not end the message.
                  -bm           Queue the message (the default).
                  -bp           List the queue, as mailq.
                  -v            Print the queue ID.
                  --spool DIR   The spool directory.
                Accepted and ignored for compatibility: -odi -odb -odq -oem -oee -om and other
                -o options, -B TYPE, -N DSN, -R RET, -V ENVID, -h N, -L TAG, -C FILE, -U, -G, -n, -m.

                Nothing is printed on success (the queue ID with -v). A failed drop leaves nothing \
                in the drop area. The host name and limits come from the configuration file \
                (hostname, drop.max_message_size, drop.max_recipients; POSTERN_CONFIG names another \
                file), and POSTERN_HOSTNAME and POSTERN_MESSAGE_SIZE_LIMIT override them. Installed \
                set-group-ID, the program ignores --spool and every POSTERN_ variable: it drops into \
                /var/spool/postern with the settings of /etc/postern/postern.toml.

                EXIT STATUS
                  0 queued; 64 bad flags; 65 bad address or header, no recipients, too many
                  recipients, NUL byte, over-long line or over-size message; 66 empty message; 73 no spool;
                  75 spool full, read-only or locked (try again); 77 not allowed to drop;
                  78 the configuration file is invalid.
                """
        )

        @Argument(parsing: .captureForPassthrough, help: "Sendmail flags and recipients.")
        var arguments: [String] = []

        func run() throws {
            let status = DropCommand.run(arguments, program: "postern drop")
            if status != 0 { throw ExitCode(status) }
        }
    }
}

/// The drop path: parse sendmail's flags, build a `Submission`, submit it.
enum DropCommand {
    /// Environment variable naming a `DropStep` after which the process kills
    /// itself with SIGKILL: the crash-safety tests' hook. Not for production.
    static let crashHook = "POSTERN_TEST_CRASH_AFTER"

    static func run(_ arguments: [String], program: String) -> Int32 {
        let parsed: SendmailArguments
        do {
            parsed = try SendmailArguments.parse(arguments)
        } catch {
            warn(error.description, program: program)
            return ExitStatus.usage.rawValue
        }
        var environment = ProcessInfo.processInfo.environment
        var spool = parsed.spool
        if SetID.active {
            // The user chooses neither the spool nor the limits of a privileged drop.
            let ignored = (spool == nil ? [] : ["--spool"]) + environment.keys.filter { $0.hasPrefix("POSTERN_") }.sorted()
            if !ignored.isEmpty { warn("set-group-ID: ignoring \(ignored.joined(separator: ", "))", program: program) }
            environment = environment.filter { !$0.key.hasPrefix("POSTERN_") }
            spool = nil
        }
        let layout = SpoolLayout(root: spool ?? environment["POSTERN_SPOOL"] ?? "/var/spool/postern")
        switch parsed.mode {
        case .help:
            print(Postern.Drop.helpMessage())
            return 0
        case .listQueue:
            SetID.relinquish()
            do {
                let list = try Postern.List.parse(["--spool", layout.root])
                try list.run()
                return 0
            } catch let exit as ExitCode {
                return exit.rawValue
            } catch {
                warn("\(error)", program: program)
                return ExitStatus.software.rawValue
            }
        case .deliver:
            do {
                let id = try submit(parsed, layout: layout, environment: environment)
                if parsed.verbose { print(id) }
                return 0
            } catch {
                warn(error.message, program: program)
                return error.status.rawValue
            }
        }
    }

    static func submit(_ arguments: SendmailArguments, layout: SpoolLayout,
                       environment: [String: String]) throws(SpoolError) -> QueueID {
        // The configuration file's hostname and drop.max_message_size, as the
        // daemon reads them; the environment overrides both (for tests, containers).
        let configuration: Configuration
        do {
            configuration = try Configuration.load(path: environment["POSTERN_CONFIG"] ?? Configuration.defaultPath, required: false,
                                                   overrides: [], defaultHostname: systemHostname())
        } catch {
            throw SpoolError(.config, error.description)
        }
        let hostname = environment["POSTERN_HOSTNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? configuration.hostname
        var sizeLimit = configuration.drop.maxMessageSize
        if let text = environment["POSTERN_MESSAGE_SIZE_LIMIT"] {
            guard let value = Int(text), value > 0 else {
                throw SpoolError(.config, "POSTERN_MESSAGE_SIZE_LIMIT=\(text) is not a positive number of octets")
            }
            sizeLimit = value
        }
        let sender = try senderAddress(arguments.sender, hostname: hostname)
        var recipients: [MailboxAddress] = []
        for argument in arguments.recipients {
            do {
                for text in try AddressList.addresses(in: argument) {
                    recipients.append(try MailboxAddress(parsing: text))
                }
            } catch {
                throw SpoolError(.dataError, "bad recipient: \(error)")
            }
        }
        var submission = Submission(sender: sender, recipients: recipients, hostname: hostname,
                                    maxSize: sizeLimit, uid: Int(getuid()))
        submission.maxRecipients = configuration.drop.maxRecipients
        submission.extractRecipients = arguments.extractRecipients
        submission.fullName = arguments.fullName ?? (arguments.sender == nil ? userFullName() : nil)
        submission.ignoreDots = arguments.ignoreDots
        var submitter = Submitter(layout: layout)
        if let step = environment[crashHook].flatMap(DropStep.init(rawValue:)) {
            submitter.observe = { if $0 == step { kill(getpid(), SIGKILL) } }
        }
        return try submitter.submit(submission, input: STDIN_FILENO)
    }

    /// The envelope sender: `-f` as given (`<>` or empty for the null sender),
    /// else the invoking user at this host.
    static func senderAddress(_ text: String?, hostname: String) throws(SpoolError) -> MailboxAddress? {
        guard let text else {
            let user = loginName()
            do {
                return try MailboxAddress(parsing: "\(user)@\(hostname)")
            } catch {
                throw SpoolError(.config, "cannot make a sender address from user \"\(user)\" and host \"\(hostname)\": \(error); use -f")
            }
        }
        var address = text.trimmingCharacters(in: .whitespaces)
        if address.hasPrefix("<") && address.hasSuffix(">") { address = String(address.dropFirst().dropLast()) }
        if address.isEmpty { return nil }
        do {
            return try MailboxAddress(parsing: address)
        } catch {
            throw SpoolError(.dataError, "bad sender: \(error)")
        }
    }

    static func systemHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
    }

    static func loginName() -> String {
        if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
        return "uid\(getuid())"
    }

    /// The GECOS full name of the invoking user, for a generated `From:`.
    static func userFullName() -> String? {
        guard let entry = getpwuid(getuid()), let gecos = entry.pointee.pw_gecos else { return nil }
        let name = String(cString: gecos).split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return name.isEmpty ? nil : name
    }
}
