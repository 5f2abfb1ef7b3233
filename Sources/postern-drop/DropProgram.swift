import Glibc
import PosternBase
import SpoolDrop

/// The drop: sendmail's command line in, one durable drop out (spool-layout.md
/// 6.1), and a sysexits status.
enum DropProgram {
    static let defaultSpool = "/var/spool/postern"
    static let defaultConfiguration = "/etc/postern/postern.toml"

    static func run(_ arguments: [String], program: String) -> Int32 {
        let parsed: SendmailArguments
        do {
            parsed = try SendmailArguments.parse(arguments)
        } catch {
            warn(error.description, program: program)
            return ExitStatus.usage.rawValue
        }
        switch parsed.mode {
        case .help:
            print(help)
            return 0
        case .listQueue:
            listQueue(parsed.spool.map { ["--spool", $0] } ?? [])
        case .deliver:
            let environment = Environment()
            let ignored = (environment.trusted || parsed.spool == nil ? [] : ["--spool"]) + environment.ignored
            if !ignored.isEmpty { warn("set-group-ID: ignoring \(ignored.joined(separator: ", "))", program: program) }
            do {
                let id = try submit(parsed, environment: environment)
                if parsed.verbose { print(id) }
                return 0
            } catch {
                warn(error.message, program: program)
                return error.status.rawValue
            }
        }
    }

    static func submit(_ arguments: SendmailArguments, environment: Environment) throws(SpoolError) -> QueueID {
        let layout = SpoolLayout(root: (environment.trusted ? arguments.spool : nil) ?? environment["POSTERN_SPOOL"] ?? defaultSpool)
        let settings: DropSettings
        do {
            settings = try DropSettings.load(path: environment["POSTERN_CONFIG"] ?? defaultConfiguration, trustedOnly: !environment.trusted)
        } catch {
            throw SpoolError(.config, error.description)
        }
        let hostname = environment["POSTERN_HOSTNAME"].flatMap { $0.isEmpty ? nil : $0 } ?? settings.hostname
            ?? SystemHost.defaultMailName() ?? SystemHost.lastResort
        var sizeLimit = settings.maxMessageSize
        if let text = environment["POSTERN_MESSAGE_SIZE_LIMIT"] {
            guard let value = Int(text), value > 0 else {
                throw SpoolError(.config, "POSTERN_MESSAGE_SIZE_LIMIT=\(text) is not a positive number of octets")
            }
            sizeLimit = value
        }
        var recipients: [MailboxAddress] = []
        for argument in arguments.recipients {
            do {
                // `sendmail root`: a bare local part is this host's (MailboxAddress.init(parsing:completingWith:)).
                for text in try AddressList.addresses(in: argument) {
                    recipients.append(try MailboxAddress(parsing: text, completingWith: hostname))
                }
            } catch {
                throw SpoolError(.dataError, "bad recipient: \(error)")
            }
        }
        var submission = Submission(sender: try sender(arguments.sender, hostname: hostname), recipients: recipients,
                                    hostname: hostname, maxSize: sizeLimit, uid: Int(getuid()))
        submission.maxRecipients = settings.maxRecipients
        submission.extractRecipients = arguments.extractRecipients
        submission.fullName = arguments.fullName ?? (arguments.sender == nil ? User.fullName() : nil)
        submission.ignoreDots = arguments.ignoreDots
        submission.requireTLS = arguments.requireTLS
        submission.dsnReturn = arguments.dsnReturn
        submission.envelopeID = arguments.envelopeID
        var submitter = Submitter(layout: layout)
        #if DEBUG
        // The crash tests' hook: SIGKILL after a step of the protocol. Test builds only.
        if let step = environment["POSTERN_TEST_CRASH_AFTER"].flatMap(DropStep.init(rawValue:)) {
            submitter.observe = { if $0 == step { kill(getpid(), SIGKILL) } }
        }
        #endif
        return try submitter.submit(submission, input: STDIN_FILENO)
    }

    /// The envelope sender: `-f` as given (`<>` or empty for the null sender;
    /// a bare local part at this host), else the invoking user at this host.
    static func sender(_ text: String?, hostname: String) throws(SpoolError) -> MailboxAddress? {
        guard let text else {
            let user = User.loginName()
            do {
                return try MailboxAddress(parsing: "\(user)@\(hostname)")
            } catch {
                throw SpoolError(.config, "cannot make a sender address from user \"\(user)\" and host \"\(hostname)\": \(error); use -f")
            }
        }
        var address = text.trimmingWhitespace()
        if address.hasPrefix("<") && address.hasSuffix(">") { address = String(address.dropFirst().dropLast()) }
        if address.isEmpty { return nil }
        do {
            return try MailboxAddress(parsing: address, completingWith: hostname)
        } catch {
            throw SpoolError(.dataError, "bad sender: \(error)")
        }
    }

    /// `mailq`, `sendmail -bp`: `postern list`, run by the `postern` binary
    /// beside this one, without this program's group.
    static func listQueue(_ arguments: [String]) -> Never {
        User.relinquish()
        let postern = User.siblingExecutable("postern")
        let argv = ([postern, "list"] + arguments).map { strdup($0) } + [nil]
        execv(postern, argv)
        warn("cannot run \(postern): \(POSIX.errorText(errno))", program: "mailq")
        exit(ExitStatus.unavailable.rawValue)
    }

    static func warn(_ message: String, program: String) {
        let line = "\(program): \(TerminalText.safe(message, keeping: ["\n", "\t"]))\n"
        do throws(SystemCallError) { try POSIX.writeAll(STDERR_FILENO, Array(line.utf8)) } catch {
            // Standard error is where a failure would be reported; there is nowhere else.
        }
    }
}
