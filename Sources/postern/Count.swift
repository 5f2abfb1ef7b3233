import ArgumentParser
import Spool

extension Postern {
    struct Count: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the number of messages in the spool, alone on a line, for scripts.",
            discussion: "Counts dropped, queued and held messages (or those in --state). Never modifies the spool."
        )

        @OptionGroup var global: GlobalOptions

        @Option(help: ArgumentHelp("Only messages in this state: dropped, queued or held.", valueName: "state"))
        var state: String?

        func validate() throws {
            _ = try selectedAreas(state)
        }

        func run() throws {
            let areas = try selectedAreas(state)
            do { try SpoolCheck.requireSpool(global.layout) } catch { throw failure(error) }
            let report = SpoolScanner(layout: global.layout, mode: .readOnly).scan(areas: areas) { _ in }
            for error in report.errors { warn(error) }
            print(report.total)
        }
    }
}
