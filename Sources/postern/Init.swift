import ArgumentParser
import Glibc
import PosternCore
import Spool

extension Postern {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create the spool directory layout, or repair its modes and owners.",
            discussion: """
                Creates SPOOL/{tmp,drop,queue,hold,corrupt,control}, VERSION and lock with the modes \
                of spool-layout.md, owned by --owner. With --drop-group, members of that group \
                (in practice a set-group-ID postern binary, like Postfix's postdrop) may drop \
                mail but not read anyone's; without it only the owner and root can drop. \
                Running it again changes only what differs. Prints what it changed.

                EXIT STATUS
                  0 done; 67 unknown user or group; 73 cannot create; 77 not permitted.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("The user that owns the spool and runs the daemon (default: the invoking user).", valueName: "user"))
        var owner: String?

        @Option(name: .customLong("drop-group"), help: ArgumentHelp("The group allowed to drop mail.", valueName: "group"))
        var dropGroup: String?

        func run() throws {
            var uid = getuid()
            var gid = getgid()
            if let owner {
                guard let entry = getpwnam(owner) else {
                    warn("unknown user \(owner)")
                    throw ExitCode(67)
                }
                uid = entry.pointee.pw_uid
                gid = entry.pointee.pw_gid
            }
            var dropGID: gid_t?
            if let dropGroup {
                guard let entry = getgrnam(dropGroup) else {
                    warn("unknown group \(dropGroup)")
                    throw ExitCode(67)
                }
                dropGID = entry.pointee.gr_gid
            }
            let initializer = SpoolInitializer(layout: global.layout, owner: uid, ownerGroup: gid, dropGroup: dropGID)
            do {
                for action in try initializer.run() { print(action) }
            } catch {
                throw failure(error)
            }
        }
    }
}
