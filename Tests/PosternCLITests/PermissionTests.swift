import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

/// The permission model of spool-layout.md section 3, with real users.
///
/// The tests run as root and drop privileges for the child with setpriv(1):
/// uid 65534 (nobody) is in the drop group 65534 (nogroup), uid 65533 is not.
struct PermissionTests {
    let spool: TemporarySpool
    let binary: String

    init() throws {
        spool = try TemporarySpool()
        chmod(spool.directory, 0o755)
        // A copy the unprivileged users can reach, wherever the build directory is.
        binary = try PosternProcess.copyBinaries(to: spool.directory)
        _ = try SpoolInitializer(layout: spool.layout, owner: getuid(), ownerGroup: getgid(), dropGroup: 65534).run()
    }

    func dropAs(uid: Int, gid: Int) throws -> PosternProcess.Result {
        try PosternProcess.run(["drop", "--spool", spool.layout.root, "-v", "bob@example.net"],
                               input: Data("Subject: from \(uid)\n\nhi\n".utf8),
                               command: ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(gid)", "--clear-groups", binary])
    }

    /// A member of the drop group can drop; the drop is its own, lets in the spool owner alone, and passes the scanner.
    @Test func dropGroupMemberDrops() throws {
        try #require(getuid() == 0, "needs root to change users")
        let result = try dropAs(uid: 65534, gid: 65534)
        #expect(result.status == 0, "\(result.stderr)")
        let id = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var info = stat()
        #expect(lstat(spool.layout.path(.drop, QueueID(id)!), &info) == 0)
        #expect(info.st_uid == 65534)
        #expect(info.st_gid == 65534)   // inherited from the set-group-ID tmp/
        // 2700 with the set-group-ID bit kept; the group bits shown are the
        // mask of the ACL entry for the spool owner (root here), rwx.
        #expect(info.st_mode & 0o7777 == 0o2770)
        #expect(FileACL.users(spool.layout.path(.drop, QueueID(id)!)) == [0: 0o7])
        var items: [ScanItem] = []
        let report = SpoolScanner(layout: spool.layout, mode: .readOnly).scan { items.append($0) }
        #expect(report.quarantined.isEmpty, "\(report.quarantined)")
        #expect(items.first?.envelope.uid == 65534)
    }

    /// A member's failed drop leaves nothing in tmp/ either, although the member
    /// may not list tmp/ (its directory is removed through an O_PATH descriptor).
    @Test func failedMemberDropLeavesNothing() throws {
        try #require(getuid() == 0, "needs root to change users")
        let result = try PosternProcess.run(["drop", "--spool", spool.layout.root],
                                            input: Data("Subject: no recipients\n\nhi\n".utf8),
                                            command: ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", binary])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(try spool.temporaryNames().isEmpty)
    }

    /// Someone outside the drop group is refused with EX_NOPERM and leaves nothing.
    @Test func outsiderIsRefused() throws {
        try #require(getuid() == 0, "needs root to change users")
        let result = try dropAs(uid: 65533, gid: 65533)
        #expect(result.status == 77)
        #expect(result.stderr.contains("not writable by this user"))
        #expect(try spool.names(.drop).isEmpty)
    }

    /// A drop-group member can neither list the drop area nor read the queue.
    @Test func membersCannotRead() throws {
        try #require(getuid() == 0, "needs root to change users")
        let dropped = try dropAs(uid: 65534, gid: 65534)
        #expect(dropped.status == 0, "\(dropped.stderr)")
        let list = try PosternProcess.run(["list", "--spool", spool.layout.root],
                                          command: ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", binary])
        #expect(list.status != 0 || list.stdout == "Mail queue is empty\n")
        #expect(!list.stdout.contains("bob@example.net"))
    }
}
