import PosternCore

/// Every configuration key, in the order `rendered()` and the example file
/// list them (top-level keys first, then each table's).
///
/// This is the one place a key is defined: its name, type, default, validation
/// and documentation. Parsing the file, `-o` overrides, `rendered()`, the
/// example file and `Configuration.defaults` all read it. To add a key, add a
/// stored property to `Configuration` (or one of its settings structs) and one
/// entry here; the tests check that every default validates and round-trips.
enum KeyTable {
    static let all: [KeyDefinition] = [
        .text("hostname", summary: "host name",
              default: nil, defaultNote: "this machine's host name (gethostname)",
              example: .string("mail.example.com"), \.hostname,
              parse: { (text: String) throws(ValueProblem) -> String in
                  try HostName.check(text)
                  return text
              },
              encode: { $0 },
              doc: "The host name announced in EHLO and used in Message-IDs and DSNs.",
              details: [
                  "Letters, digits and hyphens in dot-separated labels; receiving servers may",
                  "check that it resolves, so use the machine's public name.",
              ]),
        .text("relay", summary: "\"HOST\", \"HOST:PORT\", \"[IPv6]:PORT\", or \"\" for none",
              default: .string(""), \.relay,
              parse: { (text: String) throws(ValueProblem) -> RelayAddress? in
                  text.isEmpty ? nil : try RelayAddress.parse(text)
              },
              encode: { $0?.description ?? "" },
              doc: "Send all mail through this smarthost; \"\" delivers directly to each domain's MX hosts.",
              details: [
                  "HOST alone means port 25; an IPv6 address needs brackets: \"[2001:db8::1]:587\".",
                  "Example: relay = \"smtp.example.net:587\"",
              ]),
        .choice("relay_tls", default: TLSMode.opportunistic, \.relayTLS,
                doc: "TLS towards the relay: none, opportunistic, required (STARTTLS or fail), implicit (port 465).",
                details: [
                    "\"opportunistic\" uses STARTTLS when the relay offers it and plaintext otherwise;",
                    "\"required\" fails the attempt when it does not; \"implicit\" speaks TLS from the start.",
                ]),

        .integer("direct.port", default: 25, minimum: 1, maximum: 65535, \.direct.port,
                 doc: "The port of recipients' mail servers when delivering directly (no relay).",
                 details: ["25 on the Internet; another port only for tests and special setups."]),
        .duration("direct.connect_timeout", default: "30s", positive: true, \.direct.connectTimeout,
                  doc: "How long one connection attempt to one IP address may take.",
                  details: ["Also the limit for relay, submission and proxy connections."]),
        .duration("direct.connect_budget", default: "3m", positive: true, \.direct.connectBudget,
                  doc: "How long one delivery attempt may spend connecting, over all hosts and addresses.",
                  details: ["When it is spent, the remaining hosts wait for the next attempt."]),
        .choice("direct.family", default: AddressFamily.any, \.direct.family,
                doc: "Which address families direct delivery dials: any, ipv4 or ipv6."),
        .text("direct.bind_ipv4", summary: "an IPv4 address, or \"\" for the kernel's choice", default: .string(""),
              \.direct.bindIPv4,
              parse: { (text: String) throws(ValueProblem) -> String in
                  guard text.isEmpty || IPText.isAddress(text, v6: false) else { throw ValueProblem("\(TOMLText.quoted(text)) is not an IPv4 address") }
                  return text
              },
              encode: { $0 },
              doc: "The local address outgoing IPv4 connections come from.",
              details: ["For a machine with several addresses, where one has the right reverse DNS."]),
        .text("direct.bind_ipv6", summary: "an IPv6 address, or \"\" for the kernel's choice", default: .string(""),
              \.direct.bindIPv6,
              parse: { (text: String) throws(ValueProblem) -> String in
                  guard text.isEmpty || IPText.isAddress(text, v6: true) else { throw ValueProblem("\(TOMLText.quoted(text)) is not an IPv6 address") }
                  return text
              },
              encode: { $0 },
              doc: "The local address outgoing IPv6 connections come from."),
        .text("dns.nameserver", summary: "\"IP:PORT\", \"[IPv6]:PORT\", or \"\" for /etc/resolv.conf", default: .string(""),
              \.dns.nameserver,
              parse: { (text: String) throws(ValueProblem) -> RelayAddress? in
                  text.isEmpty ? nil : try RelayAddress.parse(text)
              },
              encode: { $0?.description ?? "" },
              doc: "The DNS server for MX, address and TLSA lookups; \"\" uses the system's resolv.conf.",
              details: ["A local validating resolver (unbound on 127.0.0.1) is what DANE needs."]),
        .choice("dns.trust_ad", default: TrustAD.auto, \.dns.trustAD,
                doc: "Whether to believe the DNSSEC authenticated-data bit: auto (only from a loopback server), yes, no.",
                details: ["glibc clears the bit unless told to trust it; only a resolver on this machine can vouch for it."]),
        .boolean("mta_sts.enabled", default: true, \.mtaSTS.enabled,
                 doc: "Whether direct delivery honours recipient domains' MTA-STS policies (RFC 8461).",
                 details: ["Policies are cached in the spool (mta-sts/) until their max_age; DANE wins where both apply."]),
        .duration("mta_sts.timeout", default: "10s", positive: true, \.mtaSTS.timeout,
                  doc: "How long fetching one MTA-STS policy over HTTPS may take.",
                  details: ["The fetch runs on a delivery thread, which waits for it."]),
        .integer("mta_sts.https_port", default: 443, minimum: 1, maximum: 65535, \.mtaSTS.port,
                 doc: "The HTTPS port of policy hosts (mta-sts.DOMAIN): 443; another only for tests."),
        .text("mta_sts.ca_file", summary: "a PEM file, or \"\" for the system's trust store", default: .string(""),
              \.mtaSTS.caFile,
              parse: { (text: String) throws(ValueProblem) -> String in text },
              encode: { $0 },
              doc: "The CA certificates policy hosts are verified against; \"\" uses the system's store.",
              details: ["RFC 8461 3.3 asks for the web PKI: set this only for tests and private setups."]),
        .integer("queue.max_concurrent", default: 10, minimum: 1, \.queue.maxConcurrent,
                 doc: "How many deliveries may be in progress at once, across all destinations."),
        .integer("queue.per_domain", default: 1, minimum: 1, \.queue.perDomain,
                 doc: "How many deliveries may be in progress at once to one destination domain.",
                 details: ["Receiving servers throttle senders that open many connections at once."]),
        .integer("queue.max_attempts", default: 8, minimum: 1, \.queue.maxAttempts,
                 doc: "Delivery attempts before a message is given up and bounced to its sender.",
                 details: ["A message's envelope may set its own max_attempts (spool-layout.md)."]),
        .duration("queue.backoff_base", default: "7m30s", positive: true, \.queue.backoffBase,
                  doc: "The delay before the second attempt; each later delay is backoff_factor times longer.",
                  details: ["With the defaults the delays are 7m30s, 15m, 30m, 1h, 2h, 4h and 8h."]),
        .number("queue.backoff_factor", default: 2.0, minimum: 1.0, \.queue.backoffFactor,
                doc: "What each retry delay is multiplied by; 1 retries at a fixed interval.",
                details: ["An integer (2) is accepted as well as a float (2.0)."]),
        .duration("queue.jitter", default: "5s", positive: false, \.queue.jitter,
                  doc: "Random spread of each retry delay, so that messages queued together do not retry together.",
                  details: ["\"0s\" turns it off."]),
        .duration("queue.keep_retired", default: "0s", positive: false, \.queue.keepRetired,
                  doc: "How long delivered and bounced messages are kept in the spool for inspection.",
                  details: ["\"0s\" removes them at once."]),
        .duration("queue.attempt_timeout", default: "30m", positive: true, \.queue.attemptTimeout,
                  doc: "The longest one delivery attempt may take, all hosts and steps together, before it is aborted.",
                  details: ["A server that answers a byte a minute keeps within every per-step timeout; this bounds",
                            "how long it can hold a delivery slot. An aborted attempt is a temporary failure."]),
        .integer("queue.reuse_max_messages", default: 100, minimum: 1, \.queue.reuseMaxMessages,
                 doc: "How many messages one SMTP connection may carry before it is closed; 1 opens one per message.",
                 details: ["After a successful transaction the connection is kept (after RSET) for the next message to the",
                           "same server: same transport, host, address and TLS mode, whatever the recipient domain.",
                           "A server that refuses RSET or the next MAIL, or closes, costs no attempt: the message goes",
                           "on over a new connection."]),
        .duration("queue.reuse_idle_timeout", default: "2s", positive: false, \.queue.reuseIdleTimeout,
                  doc: "How long an idle SMTP connection waits for the next message before QUIT.",
                  details: ["\"0s\" closes each connection after its message, as reuse_max_messages = 1 does."]),
        .duration("queue.reuse_max_age", default: "5m", positive: true, \.queue.reuseMaxAge,
                  doc: "No message starts on an SMTP connection older than this.",
                  details: ["Bounds how long one connection is held, and how long a TLS session's verification is trusted."]),
        .duration("queue.shutdown_grace", default: "30s", positive: false, \.queue.shutdownGrace,
                  doc: "On shutdown, how long deliveries in progress may finish before they are aborted.",
                  details: ["Aborted deliveries count as temporary failures and are retried after a restart."]),

        .integer("dsn.delay_warning_attempts", default: 5, minimum: 0, \.dsn.delayWarningAttempts,
                 doc: "After this many failed attempts the sender is told the message is delayed; 0 never.",
                 details: ["The warning is a \"delayed\" delivery status notification (RFC 3464)."]),

        .text("dsn.from", summary: "a mailbox, or \"\" for MAILER-DAEMON@hostname", default: .string(""), \.dsn.from,
              parse: { (text: String) throws(ValueProblem) -> String in
                  guard text.isEmpty || (try? MailboxAddress(parsing: text)) != nil else {
                      throw ValueProblem("\(TOMLText.quoted(text)) is not a mail address")
                  }
                  return text
              },
              encode: { $0 },
              doc: "The From: address of delivery status notifications.",
              details: ["\"\" means MAILER-DAEMON at the configured hostname."]),
        .integer("dsn.return_full_up_to", default: 0, minimum: 0, \.dsn.returnFullUpTo,
                 doc: "Failure notifications return the whole message when it is at most this many octets.",
                 details: ["Larger messages, and all with 0, are returned as their headers only, unless the sender",
                           "asked for the whole message (RET=FULL, sendmail -R full: up to 10240000 octets).",
                           "A sender's RET=HDRS always gets the headers only."]),
        .text("dsn.postmaster", summary: "a mailbox, or \"\" for none", default: .string(""), \.dsn.postmaster,
              parse: { (text: String) throws(ValueProblem) -> String in
                  guard text.isEmpty || (try? MailboxAddress(parsing: text)) != nil else {
                      throw ValueProblem("\(TOMLText.quoted(text)) is not a mail address")
                  }
                  return text
              },
              encode: { $0 },
              doc: "Where failures of messages without a sender (bounces themselves) are reported.",
              details: ["\"\" logs them only."]),
        .boolean("dsn.copy_failures_to_postmaster", default: false, \.dsn.copyFailuresToPostmaster,
                 doc: "Also send dsn.postmaster a headers-only copy of every failure notification."),
        .integer("drop.max_message_size", default: 67_108_864, minimum: 1, \.drop.maxMessageSize,
                 doc: "The largest message, in octets, that postern drop (sendmail) accepts.",
                 details: ["67108864 is 64 MiB."]),
        .integer("drop.max_recipients", default: 1000, minimum: 1, \.drop.maxRecipients,
                 doc: "The most recipients one message may have; more is refused (exit 65).",
                 details: ["Each recipient's results live in the message's envelope, which may not outgrow 4 MiB."]),

        .make("local.domains", summary: "array of domains", default: nil,
              defaultNote: "the host name and \"localhost\"", example: .strings(["mail.example.com", "localhost"]),
              \.local.domains,
              decode: { (scalar: Scalar) throws(ValueProblem) -> [String] in
                  guard case .strings(let texts) = scalar else {
                      throw .wrongType(expected: "an array of domains such as [\"mail.example.com\", \"localhost\"]", got: scalar)
                  }
                  var domains: [String] = []
                  for text in texts {
                      let domain = try LocalSettings.domain(text)
                      if !domains.contains(domain) { domains.append(domain) }
                  }
                  return domains
              },
              encode: { .strings($0) },
              doc: "The domains of this machine's own users: their recipients are rewritten by local.aliases.",
              details: [
                  "A recipient in one of them (root@HOSTNAME, root@localhost) is looked up in the aliases when",
                  "a drop is accepted, else sent to local.admin_address; [] rewrites nothing.",
              ]),
        .text("local.aliases", summary: "an absolute path, or \"\" for none", default: .string("/etc/aliases"), \.local.aliases,
              parse: absolutePath,
              encode: { $0 },
              doc: "The aliases file (/etc/aliases style) for recipients in local.domains; a missing file is none.",
              details: [
                  "\"name: target, target\" lines, # comments, continuation lines that start with white space;",
                  "a target without @ is local and looked up again. :include:, |command and /file targets",
                  "are skipped with a warning, never run. Read again when it changes; at most 1 MiB.",
              ]),
        .text("local.admin_address", summary: "a mailbox outside local.domains, or \"\" for none", default: .string(""),
              \.local.adminAddress,
              parse: { (text: String) throws(ValueProblem) -> String in
                  guard !text.isEmpty else { return "" }
                  do {
                      return try MailboxAddress(parsing: text).smtpForm
                  } catch {
                      throw ValueProblem("\(TOMLText.quoted(text)) is not a mail address")
                  }
              },
              encode: { $0 },
              doc: "Where mail for a local recipient that no alias resolves goes, as nullmailer's adminaddr.",
              details: [
                  "\"\" leaves such a recipient as it is: it goes to its domain's MX hosts (or the relay).",
              ]),

        .text("metrics.listen", summary: "\"IP:PORT\", \"[IPv6]:PORT\", or \"\" for none", default: .string("127.0.0.1:9464"),
              \.metrics.listen,
              parse: { (text: String) throws(ValueProblem) -> RelayAddress? in
                  text.isEmpty ? nil : try RelayAddress.listenAddress(text, example: "127.0.0.1:9464")
              },
              encode: { $0?.description ?? "" },
              doc: "Where the Prometheus /metrics endpoint listens; \"\" turns it off.",
              details: ["Keep it on loopback, or behind a firewall: the metrics name your queue's domains' transports."]),
        .choice("log.format", default: LogFormat.logfmt, \.log.format,
                doc: "Log lines as logfmt (key=value, for people and grep) or json (one object per line)."),
    ] + smtpKeys

    /// The keys by dotted name.
    static let byName: [String: KeyDefinition] = {
        var keys: [String: KeyDefinition] = [:]
        for key in all {
            precondition(keys[key.name] == nil, "configuration key \(key.name) is defined twice")
            keys[key.name] = key
        }
        return keys
    }()

    /// The tables, in the order of their first key.
    static let tables: [String] = {
        var names: [String] = []
        for case let table? in all.map(\.table) where !names.contains(table) {
            names.append(table)
        }
        return names
    }()

    /// The keys directly in `table` (`nil` for the top level), in table order.
    static func keys(in table: String?) -> [KeyDefinition] {
        all.filter { $0.table == table }
    }

    /// "the keys of [queue] are max_concurrent, per_domain, ..." for an
    /// unknown-key error, so that the admin sees the spelling we expect.
    static func knownKeysText(in table: String?) -> String {
        let leaves = keys(in: table).map(\.leaf).joined(separator: ", ")
        guard let table else {
            let tableList = (tables.map { "[\($0)]" } + ["[transports.NAME]", "[[routes]]"]).joined(separator: ", ")
            return "top-level keys are \(leaves); tables are \(tableList)"
        }
        return "the keys of [\(table)] are \(leaves)"
    }
}
