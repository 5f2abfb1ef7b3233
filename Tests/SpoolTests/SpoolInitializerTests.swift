import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import Spool

struct SpoolInitializerTests {
    let spool: TemporarySpool

    init() throws {
        spool = try TemporarySpool()
    }

    func mode(_ path: String) -> mode_t {
        var info = stat()
        lstat(path, &info)
        return info.st_mode & 0o7777
    }

    /// A new spool gets every directory with the documented mode, VERSION and lock.
    @Test func createsLayout() throws {
        let layout = SpoolLayout(root: spool.directory + "/new/spool")
        let actions = try SpoolInitializer(layout: layout, owner: getuid(), ownerGroup: getgid(), dropGroup: 4321).run()
        #expect(actions.contains("created \(layout.root)"))
        #expect(mode(layout.root) == 0o755)
        #expect(mode(layout.tmp) == 0o3730)
        #expect(mode(layout.directory(.drop)) == 0o1730)
        for path in [layout.directory(.queue), layout.directory(.hold), layout.corrupt] { #expect(mode(path) == 0o700) }
        #expect(mode(layout.versionFile) == 0o644)
        #expect(mode(layout.lockFile) == 0o600)
        #expect(try String(contentsOfFile: layout.versionFile, encoding: .utf8) == "1\n")
        var info = stat()
        lstat(layout.directory(.drop), &info)
        #expect(info.st_gid == 4321)
    }

    /// Running init again changes nothing; a changed mode is repaired.
    @Test func idempotent() throws {
        let initializer = SpoolInitializer(layout: spool.layout, owner: getuid(), ownerGroup: getgid(), dropGroup: nil)
        #expect(try initializer.run().isEmpty)
        chmod(spool.layout.directory(.queue), 0o755)
        #expect(try initializer.run() == ["mode of \(spool.layout.directory(.queue)) set to 700"])
        #expect(try initializer.run().isEmpty)
    }

    /// A spool of another layout version is refused, not overwritten.
    @Test func refusesOtherVersion() throws {
        try Data("7\n".utf8).write(to: URL(fileURLWithPath: spool.layout.versionFile))
        #expect {
            try SpoolInitializer(layout: spool.layout, owner: getuid(), ownerGroup: getgid(), dropGroup: nil).run()
        } throws: { error in
            (error as? SpoolError)?.status == .config
        }
        #expect(try String(contentsOfFile: spool.layout.versionFile, encoding: .utf8) == "7\n")
    }

    /// The spool lock is exclusive: a second holder is refused with a temporary failure.
    @Test func lockIsExclusive() throws {
        let first = try SpoolLock(layout: spool.layout)
        #expect {
            try SpoolLock(layout: spool.layout)
        } throws: { error in
            (error as? SpoolError)?.status == .tempFail && "\(error)".contains("pid \(getpid())")
        }
        withExtendedLifetime(first) {}
    }
}
