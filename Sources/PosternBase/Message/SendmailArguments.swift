/// The command line of `sendmail`, as programs have called it for forty years.
///
/// swift-argument-parser cannot read it (`-oi`, `-fSENDER` and `-odb` are not
/// its grammar), so it is parsed here, by the rules of sendmail 8 and Postfix's
/// `sendmail(1)`: flags first, then recipients; `--` ends the flags; a flag's
/// value may be attached (`-ffoo@bar`) or the next argument (`-f foo@bar`).
public struct SendmailArguments: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        /// `-bm` (the default): read a message and queue it.
        case deliver
        /// `-bp`: list the queue, as `mailq`.
        case listQueue
        /// `--help`.
        case help
    }

    public var mode = Mode.deliver
    /// Recipient arguments, as written (each may hold a comma-separated list).
    public var recipients: [String] = []
    /// `-f` / `-r`: the envelope sender as written; `""` or `"<>"` is the null sender.
    public var sender: String?
    /// `-F`: the full name for a generated `From:`.
    public var fullName: String?
    /// `-t`.
    public var extractRecipients = false
    /// `-i` / `-oi`.
    public var ignoreDots = false
    /// `-v`: print the queue ID.
    public var verbose = false
    /// `--spool DIR` (Postern's own).
    public var spool: String?
    /// `--require-tls` (Postern's own): the message's envelope asks for
    /// REQUIRETLS (RFC 8689), which no sendmail flag expresses.
    public var requireTLS = false
    /// `-R full|hdrs`: RFC 3461 RET, what a failure DSN returns.
    public var dsnReturn: DSNReturn?
    /// `-V ENVID`: RFC 3461 ENVID, given as plain text (as Postfix's
    /// `sendmail -V` takes it), kept xtext-encoded as SMTP would carry it.
    public var envelopeID: String?

    public init() {}

    public struct UsageError: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Flags accepted for compatibility that change nothing here, with whether
    /// they take a value: `-B 8BITMIME` (body type: detected instead), `-N`
    /// (DSN notify), `-h` (hop count), `-L` (syslog tag), `-C` (configuration
    /// file), `-X` (traffic log).
    static let ignoredWithValue: Set<Character> = ["B", "N", "h", "L", "C", "X"]
    /// `-U` (initial submission), `-G` (gateway), `-n` (no aliasing), `-m` (me too),
    /// `-A`, and every `-o` and `-d` option except `-oi`: the delivery mode
    /// (`-odi`, `-odb`, `-odq`) and error mode (`-oem`, `-oee`, ...) make no
    /// difference to a spooler, which always queues and always reports by DSN.
    static let ignoredBare: Set<Character> = ["U", "G", "n", "m", "A"]

    public static func parse(_ arguments: [String]) throws(UsageError) -> SendmailArguments {
        var result = SendmailArguments()
        var index = 0
        func value(of flag: String, attached: Substring) throws(UsageError) -> String {
            if !attached.isEmpty { return String(attached) }
            index += 1
            guard index < arguments.count else { throw UsageError(description: "option \(flag) requires a value") }
            return arguments[index]
        }
        while index < arguments.count {
            let argument = arguments[index]
            defer { index += 1 }
            if argument == "--" {
                result.recipients.append(contentsOf: arguments[(index + 1)...])
                break
            }
            if argument == "--help" { result.mode = .help; continue }
            if argument == "--require-tls" { result.requireTLS = true; continue }
            if argument == "--spool" || argument.hasPrefix("--spool=") {
                result.spool = try value(of: "--spool", attached: argument.dropFirst("--spool=".count))
                continue
            }
            guard argument.hasPrefix("-"), argument.count > 1 else {
                result.recipients.append(argument)
                continue
            }
            if argument.hasPrefix("--") { throw UsageError(description: "unknown option \(argument)") }
            let flag = argument.dropFirst()
            let letter = flag.first!
            let rest = flag.dropFirst()
            switch letter {
            case "t" where rest.isEmpty: result.extractRecipients = true
            case "i" where rest.isEmpty: result.ignoreDots = true
            case "v" where rest.isEmpty: result.verbose = true
            case "f", "r": result.sender = try value(of: "-\(letter)", attached: rest)
            case "F": result.fullName = try value(of: "-F", attached: rest)
            case "R":
                // Postfix's sendmail refuses anything but full and hdrs (EX_USAGE) too.
                let text = try value(of: "-R", attached: rest)
                guard let ret = DSNReturn(keyword: text) else {
                    throw UsageError(description: "-R takes \"full\" or \"hdrs\" (RFC 3461 RET), not \(QuotedString.quoted(text))")
                }
                result.dsnReturn = ret
            case "V":
                // Where Postfix's sendmail warns and drops a bad -V, the message
                // is refused: the sender would otherwise miss the ID it counts on.
                switch EnvelopeIDParameter.xtext(fromPlain: try value(of: "-V", attached: rest)) {
                case .success(let xtext): result.envelopeID = xtext
                case .failure(let problem): throw UsageError(description: "-V: the envelope ID \(problem)")
                }
            case "o":
                if rest == "i" { result.ignoreDots = true }
                guard !rest.isEmpty else { throw UsageError(description: "option -o requires a letter") }
            case "d": continue
            case "b":
                switch rest {
                case "m": result.mode = .deliver
                case "p": result.mode = .listQueue
                default:
                    throw UsageError(description: "-b\(rest) is not supported: Postern only queues mail (-bm) and lists the queue (-bp)")
                }
            case "q":
                throw UsageError(description: "-q is not supported: the postern daemon retries queued mail by itself")
            case let letter where ignoredWithValue.contains(letter):
                _ = try value(of: "-\(letter)", attached: rest)
            case let letter where ignoredBare.contains(letter):
                continue
            default:
                throw UsageError(description: "unknown option \(argument)")
            }
        }
        return result
    }
}
