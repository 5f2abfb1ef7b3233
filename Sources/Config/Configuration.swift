import Foundation
import PosternCore

/// The settings of the `postern run` daemon, from one TOML file plus `-o key=value`
/// overrides.
///
/// Every key is described once, in `KeyTable.all`: its name, type, default,
/// validation and documentation. Parsing, `-o` overrides, `rendered()` and the
/// example file are all driven by that table, so adding a key means one entry
/// there plus the stored property here.
///
/// A configuration is built only by `defaults(hostname:)`, `parse` or `load`
/// and then adjusted through its `var`s, so that its default values live in one
/// place (the table) rather than in initializers too.
public struct Configuration: Sendable, Equatable {
    /// Announced in EHLO and used in Message-IDs and DSNs.
    public var hostname: String
    /// The smarthost that receives all mail; `nil` delivers directly to each
    /// domain's MX hosts.
    public var relay: RelayAddress?
    /// How TLS is used towards the relay.
    public var relayTLS: TLSMode
    public var direct: DirectSettings
    public var dns: DNSSettings
    public var mtaSTS: MTASTSSettings
    public var queue: QueueSettings
    public var dsn: DSNSettings
    public var drop: DropSettings
    public var local: LocalSettings
    public var log: LogSettings
    public var metrics: MetricsSettings
    public var smtp: SMTPSettings
    /// The `[transports.NAME]` tables, in file order.
    public var transports: [TransportDefinition]
    /// The `[[routes]]`, in file order: the first that matches wins.
    public var routes: [RouteDefinition]

    /// A configuration with every field zero, to be filled from the key table.
    init(unfilled: ()) {
        hostname = ""
        relay = nil
        relayTLS = .opportunistic
        direct = DirectSettings()
        dns = DNSSettings()
        mtaSTS = MTASTSSettings()
        queue = QueueSettings()
        dsn = DSNSettings()
        drop = DropSettings()
        local = LocalSettings()
        log = LogSettings()
        metrics = MetricsSettings()
        smtp = SMTPSettings()
        transports = []
        routes = []
    }

    /// Every default from the key table, computed once. A default that fails
    /// its own key's validation is a programming error, caught by the first test.
    private static let tableDefaults: Configuration = {
        var configuration = Configuration(unfilled: ())
        for key in KeyTable.all {
            guard let value = key.defaultValue else { continue }
            do throws(ValueProblem) {
                try key.store(value, &configuration)
            } catch {
                preconditionFailure("the default of \(key.name) fails its own validation: \(error.message)")
            }
        }
        return configuration
    }()

    /// The configuration of an empty file: every key at its default, with
    /// `hostname` (which has no fixed default) set to `hostname` unchecked.
    public static func defaults(hostname: String) -> Configuration {
        var configuration = tableDefaults
        configuration.hostname = hostname
        configuration.local.domains = LocalSettings.defaultDomains(hostname: hostname)
        return configuration
    }

    /// Parses `text` (the file's contents; `source` names it in errors) and
    /// applies `overrides` ("key=value" strings, later ones winning).
    ///
    /// `defaultHostname` (normally `systemHostname()`) is used, and then
    /// validated, only when neither the file nor an override sets `hostname`.
    public static func parse(_ text: String, source: String, overrides: [String],
                             defaultHostname: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationParser.build(text: text, source: source, overrides: overrides,
                                      defaultHostname: defaultHostname)
    }

    /// Reads the file at `path` and parses it like `parse`.
    ///
    /// A missing file is an error when `required` (the admin named it with
    /// `--config`) and means "all defaults" otherwise (the default path,
    /// `/etc/postern/postern.toml`, need not exist). Any other failure to read
    /// it (permissions, a directory, bad UTF-8) is an error either way: a file
    /// that exists but is ignored would silently run the wrong configuration.
    public static func load(path: String, required: Bool, overrides: [String],
                            defaultHostname: String) throws(ConfigurationError) -> Configuration {
        let text = try ConfigurationFile.read(path: path, required: required)
        return try ConfigurationParser.build(text: text, source: path, overrides: overrides,
                                             defaultHostname: defaultHostname)
    }

    /// The default path of the configuration file.
    public static let defaultPath = "/etc/postern/postern.toml"

    /// The default of `hostname`: `SystemHost.defaultMailName()` (the first
    /// line of `/etc/mailname`, as Debian's MTAs honour it, else this
    /// machine's host name from gethostname(2)).
    ///
    /// Returns "" if both fail; `parse` then reports that the system host
    /// name is unusable and asks for `hostname` in the file, rather than the
    /// daemon announcing a made-up name.
    public static func systemHostname() -> String {
        SystemHost.defaultMailName() ?? ""
    }
}

/// A relay (smarthost) address: a host name, IPv4 or IPv6 address, and a port.
public struct RelayAddress: Sendable, Equatable, CustomStringConvertible {
    /// A host name or an IP address; an IPv6 address without brackets.
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 address in brackets (`[2001:db8::1]:25`) so
    /// that the text parses back to the same address.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// Scheduling and retry settings: the `[queue]` table.
public struct QueueSettings: Sendable, Equatable {
    /// Deliveries in progress at once, across all destinations.
    public var maxConcurrent = 0
    /// Deliveries in progress at once to one destination domain.
    public var perDomain = 0
    /// Attempts before a message is bounced.
    public var maxAttempts = 0
    /// The delay after the first failed attempt.
    public var backoffBase: TimeInterval = 0
    /// What each further delay is multiplied by.
    public var backoffFactor: Double = 0
    /// The random spread added to each delay; 0 turns it off.
    public var jitter: TimeInterval = 0
    /// How long delivered or bounced messages are kept; 0 keeps none.
    public var keepRetired: TimeInterval = 0
    /// How long a shutdown waits for deliveries in progress.
    public var shutdownGrace: TimeInterval = 0
    /// The longest one delivery attempt may take.
    public var attemptTimeout: TimeInterval = 0
    /// Messages one SMTP connection may carry; 1 turns reuse off.
    public var reuseMaxMessages = 0
    /// How long an idle SMTP connection is kept for the next message.
    public var reuseIdleTimeout: TimeInterval = 0
    /// No message starts on an SMTP connection older than this.
    public var reuseMaxAge: TimeInterval = 0
}

/// Delivery status notification settings: the `[dsn]` table.
/// Direct delivery: the `[direct]` table.
public struct DirectSettings: Sendable, Equatable {
    public var port = 25
    public var connectTimeout: TimeInterval = 0
    public var connectBudget: TimeInterval = 0
    public var family: AddressFamily = .any
    /// "" for the kernel's choice.
    public var bindIPv4 = ""
    public var bindIPv6 = ""
}

/// The resolver: the `[dns]` table.
public struct DNSSettings: Sendable, Equatable {
    /// The nameserver; nil for /etc/resolv.conf.
    public var nameserver: RelayAddress?
    public var trustAD: TrustAD = .auto
}

/// MTA-STS (RFC 8461): the `[mta_sts]` table.
public struct MTASTSSettings: Sendable, Equatable {
    public var enabled = true
    /// The limit of one policy fetch (RFC 8461 3.3 asks for a short one).
    public var timeout: TimeInterval = 0
    /// The HTTPS port of `mta-sts.DOMAIN`: 443, another only for tests.
    public var port = 443
    /// CA certificates to verify policy hosts against; "" for the system store.
    public var caFile = ""
}

/// `dns.trust_ad`.
public enum TrustAD: String, Sendable, Equatable, CaseIterable {
    case auto, yes, no
}

public struct DSNSettings: Sendable, Equatable {
    /// After this many failed attempts the sender gets a "delayed" DSN; 0 never.
    public var delayWarningAttempts = 0
    /// The From: of DSNs; empty for MAILER-DAEMON@hostname.
    public var from = ""
    /// Failure DSNs carry the whole message up to this size; 0 headers only.
    public var returnFullUpTo = 0
    /// Where failures of null-sender messages go; empty for nowhere.
    public var postmaster = ""
    public var copyFailuresToPostmaster = false
}

/// Settings of the drop path as the daemon enforces them: the `[drop]` table.
public struct DropSettings: Sendable, Equatable {
    /// The largest message accepted, in octets.
    public var maxMessageSize = 0
    public var maxRecipients = 0
}

/// Mail for this machine's own users: the `[local]` table.
///
/// A null client has no mailboxes, yet cron, daemons and DSNs write to
/// `root` and `root@HOSTNAME`: nullmailer forwards them to its `adminaddr`,
/// dma and Postfix read `/etc/aliases`. Postern does both when it accepts a
/// drop (`LocalRecipients` in the Spool module).
public struct LocalSettings: Sendable, Equatable {
    /// A-labels, lower case, without repeats; empty: nothing is local.
    public var domains: [String] = []
    /// The aliases file; "" for none.
    public var aliases = ""
    /// The catch-all for local recipients no alias resolves; "" for none.
    public var adminAddress = ""

    /// The default of `local.domains`: the host name and `localhost`.
    public static func defaultDomains(hostname: String) -> [String] {
        let name = hostname.lowercased()
        return name.isEmpty || name == "localhost" ? ["localhost"] : [name, "localhost"]
    }

    /// One domain of `local.domains`, to its lower-case A-label form.
    static func domain(_ text: String) throws(ValueProblem) -> String {
        do {
            let ascii = try IDNA.toASCII(text).lowercased()
            try HostName.check(ascii)
            return ascii
        } catch {
            throw ValueProblem("\(TOMLText.quoted(text)) is not a domain")
        }
    }
}

/// Logging settings: the `[log]` table.
public struct LogSettings: Sendable, Equatable {
    public var format: LogFormat = .logfmt
}

/// The Prometheus endpoint: the `[metrics]` table.
public struct MetricsSettings: Sendable, Equatable {
    /// nil when turned off.
    public var listen: RelayAddress?
}

/// The daemon's log line format.
public enum LogFormat: String, Sendable, Equatable, CaseIterable {
    /// `key=value` pairs, for people and grep.
    case logfmt
    /// One JSON object per line, for log collectors.
    case json
}

/// Why a configuration was refused, located as precisely as an admin needs to
/// fix it: the file (or the `-o` option), the line, and the dotted key.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file's path, or `-o key=value` for an override.
    public var source: String
    /// The 1-based line of the key (or of the syntax error) in the file.
    public var line: Int?
    /// The 1-based column, given for TOML syntax errors only.
    public var column: Int?
    /// The dotted key (`queue.backoff_base`), when the error is about one.
    public var key: String?
    /// What is wrong, in words.
    public var message: String

    public init(source: String, line: Int? = nil, column: Int? = nil, key: String? = nil, message: String) {
        self.source = source
        self.line = line
        self.column = column
        self.key = key
        self.message = message
    }

    /// `file:line: key: message`, the compiler-style form editors can jump to.
    public var description: String {
        var location = source
        if let line {
            location += ":\(line)"
            if let column { location += ":\(column)" }
        }
        if let key { return "\(location): \(key): \(message)" }
        return "\(location): \(message)"
    }
}

/// The SMTP listener of `postern run`: the `[smtp]` table.
public struct SMTPSettings: Sendable, Equatable {
    /// Where to listen; empty: no listener.
    public var listen: [RelayAddress] = []
    /// Networks whose clients may relay without AUTH (`ADDRESS` or `ADDRESS/LENGTH`).
    public var relayNetworks: [String] = []
    /// Loopback clients may relay without AUTH.
    public var trustLoopback = true
    /// PEM files for STARTTLS; "" for none.
    public var tlsCertificate = ""
    public var tlsKey = ""
    /// Credentials files (username and password each) of the AUTH users.
    public var users: [String] = []
    public var maxConnections = 0
    public var maxConnectionsPerClient = 0
    public var maxErrors = 0
    public var timeout: TimeInterval = 0
}
