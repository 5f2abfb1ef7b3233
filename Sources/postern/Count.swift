import ArgumentParser
import PosternCore
import Spool

extension Postern {
    struct Count: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "count",
            abstract: "Print the number of messages in the spool, alone on a line, for scripts.",
            discussion: """
                Counts dropped, queued and held messages (or those in --state) from the directories' \
                names alone, without reading an envelope, so that it answers at once for a million \
                messages: an entry whose name is a queue ID counts, whatever state it is in \
                (`postern check` validates). Never modifies the spool.
                """
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
            // Packed IDs, sorted: a message moving between two areas while
            // they are listed counts once (16 bytes a name, no strings).
            var messages: [QueueID] = []
            for area in areas {
                do {
                    messages += try DirectoryHandle(path: global.layout.directory(area)).queueIDs().ids
                } catch {
                    throw failure(SpoolError(error.exitStatus, "cannot list \(area.rawValue)/: \(error)"))
                }
            }
            messages.sort()
            let distinct = messages.indices.count { $0 == 0 || messages[$0] != messages[$0 - 1] }
            print(distinct)
        }
    }
}
