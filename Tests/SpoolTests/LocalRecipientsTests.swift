import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// Issue #19: mail for this machine's own users, rewritten through the
/// aliases (or to the admin address) when a drop is accepted.
struct LocalRecipientsTests {
    static let aliases = """
        mailer-daemon: postmaster
        postmaster: root
        root: alice@example.org, ops
        ops: bob@example.org, alice@example.org
        self: self, carol@example.org
        loop-a: loop-b
        loop-b: loop-a
        local-target: root@localhost
        """

    static func rewriter(admin: String? = nil, aliases text: String = aliases) -> LocalRecipients {
        LocalRecipients(settings: .init(domains: ["vm", "localhost"], aliasesPath: "/etc/aliases", adminAddress: admin, hostname: "vm"),
                        aliases: AliasTable.parse(text, source: "aliases").table)
    }

    static func addresses(_ rewrite: LocalRecipients.Rewrite) -> [String] { rewrite.recipients.map(\.address) }

    /// A chain of local names ends at mailboxes; duplicates are kept once; each keeps what the sender wrote.
    @Test func aliasesExpandAndKeepTheOriginal() {
        let rewrite = Self.rewriter().rewrite([Recipient(address: "MAILER-DAEMON@vm")])
        #expect(Self.addresses(rewrite) == ["alice@example.org", "bob@example.org"])
        #expect(rewrite.recipients.allSatisfy { $0.original == "MAILER-DAEMON@vm" })
        #expect(rewrite.changes == [.init(recipient: "MAILER-DAEMON@vm", addresses: ["alice@example.org", "bob@example.org", "alice@example.org"], by: "alias")])
        #expect(rewrite.warnings.isEmpty)
    }

    /// Recipients in other domains are left alone; an expansion that meets one is merged with it.
    @Test func otherDomainsAreUntouchedAndDuplicatesMerged() {
        let rewrite = Self.rewriter().rewrite([Recipient(address: "bob@example.org"), Recipient(address: "root@localhost"),
                                               Recipient(address: "root@example.net")])
        #expect(Self.addresses(rewrite) == ["bob@example.org", "alice@example.org", "root@example.net"])
        #expect(rewrite.recipients[0].original == nil && rewrite.recipients[2].original == nil)
    }

    /// Without an alias or an admin address, a local recipient is left as it is (to its MX, as before).
    @Test func unresolvedIsLeftAsItIs() {
        let rewrite = Self.rewriter().rewrite([Recipient(address: "daemon@vm")])
        #expect(rewrite.recipients == [Recipient(address: "daemon@vm")])
        #expect(rewrite.changes.isEmpty && rewrite.unresolved == ["daemon@vm"])
    }

    /// With an admin address, whatever no alias resolves goes there; aliased names still follow their aliases.
    @Test func adminAddressCatchesTheRest() {
        let rewriter = Self.rewriter(admin: "admin@example.net")
        let rewrite = rewriter.rewrite([Recipient(address: "daemon@vm"), Recipient(address: "postmaster@localhost")])
        #expect(Self.addresses(rewrite) == ["admin@example.net", "alice@example.org", "bob@example.org"])
        #expect(rewrite.recipients[0].original == "daemon@vm")
        #expect(rewrite.changes.map(\.by) == ["admin_address", "alias"])
    }

    /// A name that lists itself means itself (no warning); a longer loop is cut and reported.
    @Test func loopsAreCut() {
        let own = Self.rewriter().rewrite([Recipient(address: "self@vm")])
        #expect(Self.addresses(own) == ["self@vm", "carol@example.org"])
        #expect(own.warnings.isEmpty)

        let loop = Self.rewriter(admin: "admin@example.net").rewrite([Recipient(address: "loop-a@vm")])
        #expect(Self.addresses(loop) == ["admin@example.net"])
        #expect(loop.warnings == ["alias loop: loop-a -> loop-b -> loop-a; loop-a is not followed again"])
    }

    /// A local target with a domain is looked up again, as one without.
    @Test func localTargetWithDomainIsFollowed() {
        let rewrite = Self.rewriter().rewrite([Recipient(address: "local-target@vm")])
        #expect(Self.addresses(rewrite) == ["alice@example.org", "bob@example.org"])
    }

    /// Nesting deeper than the bound stops there, with a warning, and still delivers somewhere.
    @Test func depthIsBounded() {
        let chain = (0...LocalRecipients.maxDepth + 2).map { "n\($0): n\($0 + 1)" }.joined(separator: "\n")
        let rewrite = Self.rewriter(admin: "admin@example.net", aliases: chain).rewrite([Recipient(address: "n0@vm")])
        #expect(Self.addresses(rewrite) == ["admin@example.net"])
        #expect(rewrite.warnings.count == 1 && rewrite.warnings[0].hasPrefix("aliases nested deeper than 10: n0 -> n1"))
        // Without an admin address, the name where it stopped, at this host.
        let plain = Self.rewriter(aliases: chain).rewrite([Recipient(address: "n0@vm")])
        #expect(Self.addresses(plain) == ["n10@vm"])
    }

    /// Recipients that are no longer pending are never rewritten.
    @Test func onlyPendingRecipients() {
        var done = Recipient(address: "root@vm")
        done.state = .delivered
        #expect(Self.rewriter().rewrite([done]).recipients == [done])
    }

    // MARK: - At acceptance

    /// A trusted drop (root's, or a DSN of the daemon) with a local recipient is
    /// adopted with the rewritten envelope, every other field kept.
    @Test func trustedDropIsRewrittenAtAcceptance() throws {
        let spool = try TemporarySpool()
        let dropped = try spool.plant(.drop, recipients: ["root@vm", "x@example.net"]) {
            $0.sender = nil
            $0.notifyNever = true
        }
        var acceptance = DropAcceptance(layout: spool.layout, trustedOwners: [0], maxMessageSize: 1 << 20, maxRecipients: 10)
        acceptance.local = Self.rewriter()
        var reported: [LocalRecipients.Rewrite] = []
        acceptance.report = { _, rewrite in reported.append(rewrite) }
        guard case .accepted(let envelope, _, _) = acceptance.accept(dropped.id.rawValue) else {
            Issue.record("not accepted")
            return
        }
        #expect(envelope.recipients.map(\.address) == ["alice@example.org", "bob@example.org", "x@example.net"])
        #expect(envelope.recipients.map(\.original) == ["root@vm", "root@vm", nil])
        #expect(envelope.notifyNever)
        #expect(try Envelope.decode(spool.read("queue/\(dropped.id)/envelope.json")) == envelope)
        #expect(try spool.names(.drop).isEmpty && spool.temporaryNames().isEmpty)
        #expect(reported.count == 1)
    }

    /// A user's drop is rewritten as it is adopted; with nothing local, a trusted one is only renamed.
    @Test func userDropIsRewrittenAndOthersRenamed() throws {
        let spool = try TemporarySpool()
        let dropped = try spool.plant(.drop, recipients: ["daemon@localhost"])
        var acceptance = DropAcceptance(layout: spool.layout, trustedOwners: [], maxMessageSize: 1 << 20, maxRecipients: 10)
        acceptance.local = Self.rewriter(admin: "admin@example.net")
        guard case .accepted(let envelope, _, _) = acceptance.accept(dropped.id.rawValue) else {
            Issue.record("not accepted")
            return
        }
        #expect(envelope.recipients == [Recipient(address: "admin@example.net", original: "daemon@localhost")])

        let other = try spool.plant(.drop, recipients: ["bob@example.net"])
        let inode = try #require(MessageDirectory.lstatus(spool.layout.path(.drop, other.id))).st_ino
        var trusted = DropAcceptance(layout: spool.layout, trustedOwners: [0], maxMessageSize: 1 << 20, maxRecipients: 10)
        trusted.local = acceptance.local
        guard case .accepted = trusted.accept(other.id.rawValue) else {
            Issue.record("not accepted")
            return
        }
        #expect(MessageDirectory.lstatus(spool.layout.path(.queue, other.id))?.st_ino == inode)
    }

    /// drop.max_recipients bounds what the aliases make of a message: over it, it is quarantined with the reason.
    @Test func maxRecipientsBoundsTheExpansion() throws {
        let spool = try TemporarySpool()
        let dropped = try spool.plant(.drop, recipients: ["root@vm"])
        var acceptance = DropAcceptance(layout: spool.layout, trustedOwners: [0], maxMessageSize: 1 << 20, maxRecipients: 1)
        acceptance.local = Self.rewriter()
        guard case .invalid(let reason) = acceptance.accept(dropped.id.rawValue) else {
            Issue.record("accepted over the bound")
            return
        }
        #expect(reason == "2 recipients after local aliases, over drop.max_recipients (1)")
        #expect(try spool.names(.drop) == [dropped.id.rawValue] && spool.names(.queue).isEmpty)
    }
}
