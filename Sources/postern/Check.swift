import ArgumentParser
import Foundation
import Glibc
import PosternCore
import Spool

extension Postern {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Scan the spool offline: quarantine what cannot be trusted, remove stale temporary files.",
            discussion: """
                Runs the scanner that the daemon runs at start-up. Every message directory in \
                queue/, hold/ and drop/ is checked: its name, its envelope (JSON, version, \
                fields, addresses), its message file (present, a regular file, of the size the \
                envelope records), owners, and links. What fails is moved to corrupt/NAME/entry \
                with the reason in corrupt/NAME/reason; nothing is ever deleted and no link is \
                followed. Entries of tmp/ older than --temporary-age are abandoned drops and \
                are removed.

                Takes the spool lock, so it refuses to run while the daemon runs; --dry-run \
                reports without changing anything and needs no lock.

                EXIT STATUS
                  0 the spool is clean; 65 something was (or, with --dry-run, would be)
                  quarantined; 73 no spool; 74 part of the spool could not be read or moved;
                  75 the spool is locked by a running daemon.
                """
        )

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Report what would be done without changing the spool.")
        var dryRun = false

        @Option(help: ArgumentHelp("Age after which a tmp/ entry counts as abandoned, e.g. 90s, 2h, 1d.", valueName: "duration"))
        var temporaryAge = "1d"

        func validate() throws {
            guard DurationText.parse(temporaryAge) != nil else {
                throw ValidationError("--temporary-age: \"\(temporaryAge)\" is not a duration like 90s, 2h or 1d")
            }
        }

        func run() throws {
            let age = DurationText.parse(temporaryAge) ?? 86400
            let layout = global.layout
            var lock: SpoolLock?
            do {
                try SpoolCheck.requireSpool(layout)
                if !dryRun { lock = try SpoolLock(layout: layout) }
            } catch {
                throw failure(error)
            }
            var scanner = SpoolScanner(layout: layout, mode: dryRun ? .readOnly : .repair)
            scanner.temporaryMaxAge = age
            // Progress for large spools, on a terminal only: scripts get the summary alone.
            let started = Date()
            let terminal = isatty(STDERR_FILENO) == 1
            var seen = 0
            let report = scanner.scan { _ in
                seen += 1
                if terminal, seen % 10_000 == 0 {
                    let rate = Double(seen) / max(0.001, Date().timeIntervalSince(started))
                    FileHandle.standardError.write(Data("\rscanned \(seen) messages (\(Int(rate))/s)".utf8))
                }
            }
            if terminal, seen >= 10_000 { FileHandle.standardError.write(Data("\n".utf8)) }
            withExtendedLifetime(lock) {}
            let counts = SpoolLayout.Area.allCases.map { "\(report.messages[$0] ?? 0) \($0.state)" }
            print("scanned \(report.total) messages: \(counts.joined(separator: ", "))")
            for item in report.quarantined {
                let target = item.destination.map { " -> \($0.dropFirst(layout.root.count + 1))" } ?? (dryRun ? " (would quarantine)" : "")
                print("quarantined \(item.origin)\(target): \(TerminalText.safe(item.reason))")
            }
            for path in report.removed {
                print(dryRun ? "would remove \(path)" : "removed \(path)")
            }
            for error in report.errors { warn(error) }
            if !report.quarantined.isEmpty { throw ExitCode(ExitStatus.dataError.rawValue) }
            if !report.errors.isEmpty { throw ExitCode(ExitStatus.ioError.rawValue) }
        }
    }
}
