import PosternCore

/// Rewrites the recipients of this machine's own domains when a message is
/// accepted: through the aliases, else to the admin address, as a null client
/// must (nullmailer's `adminaddr`, dma's and Postfix's `/etc/aliases`).
///
/// Postern has no mailboxes, yet cron writes to `root`, daemons to
/// `postmaster` and DSNs to `USER@HOSTNAME`: without this, such mail goes to
/// the host's own MX, which a machine called `vm` does not have. A recipient
/// whose domain is in `local.domains` is looked up by its local part; each
/// target that is local again is looked up in turn, at most `maxDepth` deep, a
/// name already on the way not again (a loop, or `root: root, x@y`, where the
/// name itself is meant). A name no alias resolves goes to the admin address
/// when one is set, and is otherwise left as it is (a target name is completed
/// with the host name): it goes to its domain's MX hosts, or the relay, as
/// before, because a smarthost or the domain's MX may well serve it.
///
/// Each address a recipient becomes keeps what the submitter wrote as its
/// `original` (RFC 3461 4.2 ORCPT), so DSNs and `postern explain` say
/// `root@vm` rather than only the admin's address. Addresses that several
/// recipients become are kept once.
public struct LocalRecipients: Sendable {
    /// What the configuration says (`[local]` and `hostname`).
    public struct Settings: Sendable, Equatable {
        /// Lower-case A-labels.
        public var domains: Set<String>
        /// The aliases file; "" for none.
        public var aliasesPath: String
        /// The catch-all, in SMTP form; nil for none.
        public var adminAddress: String?
        /// Completes a local target name (`root` in `postmaster: root`).
        public var hostname: String

        public init(domains: [String], aliasesPath: String, adminAddress: String?, hostname: String) {
            self.domains = Set(domains.map { $0.lowercased() })
            self.aliasesPath = aliasesPath
            self.adminAddress = adminAddress.flatMap { $0.isEmpty ? nil : $0 }
            self.hostname = hostname
        }
    }

    /// What became of one recipient, for the log.
    public struct Change: Sendable, Equatable {
        public var recipient: String
        public var addresses: [String]
        /// "alias" or "admin_address".
        public var by: String
    }

    /// The rewritten recipients, and what to log about them.
    public struct Rewrite: Sendable, Equatable {
        public var recipients: [Recipient]
        public var changes: [Change] = []
        /// Local recipients no alias or admin address resolved: left as they
        /// are, for the log to say where they go (their domain's MX hosts).
        public var unresolved: [String] = []
        public var warnings: [String] = []
    }

    /// How many aliases deep a name is followed (sendmail's MaxAliasRecursion).
    public static let maxDepth = 10

    public let settings: Settings
    public let aliases: AliasTable

    public init(settings: Settings, aliases: AliasTable) {
        self.settings = settings
        self.aliases = aliases
    }

    /// Whether anything could be rewritten at all.
    public var isActive: Bool { !settings.domains.isEmpty }

    /// The rewriting `settings` ask for, with the aliases as `file` holds
    /// them now (`settings.aliasesPath`, read again only when it changed);
    /// nil when no domain is local. What the daemon and offline control
    /// build before they accept drops, so that both rewrite alike.
    public static func current(_ settings: Settings, file: AliasesFile?) -> (rewriting: LocalRecipients?, problems: [AliasTable.Problem]) {
        guard !settings.domains.isEmpty else { return (nil, []) }
        guard let file, !settings.aliasesPath.isEmpty else { return (LocalRecipients(settings: settings, aliases: AliasTable()), []) }
        let (table, problems) = file.load()
        return (LocalRecipients(settings: settings, aliases: table), problems)
    }

    /// The recipients after rewriting; only pending ones are rewritten (at
    /// acceptance, all of them are).
    public func rewrite(_ recipients: [Recipient]) -> Rewrite {
        var result = Rewrite(recipients: [])
        var seen = Set<String>()
        func add(_ recipient: Recipient) {
            if seen.insert(recipient.address).inserted { result.recipients.append(recipient) }
        }
        for recipient in recipients {
            guard recipient.state == .pending, let address = try? MailboxAddress(parsing: recipient.address),
                  settings.domains.contains(address.routingDomain) else {
                add(recipient)
                continue
            }
            var how = Set<String>()
            var addresses = expand(address.localPart, as: address.smtpForm, path: [], how: &how, warnings: &result.warnings)
            if addresses.isEmpty { addresses = [recipient.address] }   // never lose a recipient
            if addresses == [recipient.address] {
                if how.isEmpty { result.unresolved.append(recipient.address) }
                add(recipient)
                continue
            }
            result.changes.append(Change(recipient: recipient.address, addresses: addresses, by: how.sorted().joined(separator: ",")))
            for target in addresses {
                add(Recipient(address: target, original: recipient.original ?? recipient.address))
            }
        }
        return result
    }

    /// The addresses the local `name` stands for. `address` is the mailbox it
    /// came as (nil for a bare target name); `path` the names followed so far.
    private func expand(_ name: String, as address: String?, path: [String], how: inout Set<String>,
                        warnings: inout [String]) -> [String] {
        let key = name.lowercased()
        let onPath = path.contains(key)
        if onPath, path.last != key {
            warnings.append("alias loop: \((path + [key]).joined(separator: " -> ")); \(key) is not followed again")
        }
        if let entry = aliases[key], !onPath {
            guard path.count < Self.maxDepth else {
                warnings.append("aliases nested deeper than \(Self.maxDepth): \((path + [key]).joined(separator: " -> ")); not followed further")
                return leaf(name, as: address, how: &how)
            }
            how.insert("alias")
            var found: [String] = []
            for target in entry.targets {
                switch target {
                case .address(let mailbox) where settings.domains.contains(mailbox.routingDomain):
                    found += expand(mailbox.localPart, as: mailbox.smtpForm, path: path + [key], how: &how, warnings: &warnings)
                case .address(let mailbox):
                    found.append(mailbox.smtpForm)
                case .local(let local):
                    found += expand(local, as: nil, path: path + [key], how: &how, warnings: &warnings)
                }
            }
            return found
        }
        return leaf(name, as: address, how: &how)
    }

    /// A name no alias resolves: the admin address, else the mailbox as it is.
    private func leaf(_ name: String, as address: String?, how: inout Set<String>) -> [String] {
        if let admin = settings.adminAddress {
            how.insert("admin_address")
            return [admin]
        }
        if let address { return [address] }
        // A bare target name is this host's, as a bare recipient of the drop is.
        guard let mailbox = try? MailboxAddress(parsing: name, completingWith: settings.hostname) else { return [] }
        return [mailbox.smtpForm]
    }
}
