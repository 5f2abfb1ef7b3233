import ArgumentParser
import Foundation
import CSysShim
import Glibc
import PosternCore
import Scheduler

extension Postern {
    /// Measures what the scheduler's index costs per queued message. Hidden: a
    /// measurement for tools/measure-index.sh, not an operator's command.
    struct IndexMemory: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "index-memory",
            abstract: "Print the heap bytes the scheduler index uses per message.",
            shouldDisplay: false
        )

        @Option(help: "Messages to index.")
        var count = 100_000

        func run() {
            let ids = QueueIDGenerator()
            let before = csys_heap_in_use()
            let core = SchedulerCore(limits: SchedulerLimits())
            let start = Date().timeIntervalSince1970
            // As the start-up scan indexes them: an ID and a due time each
            // (destinations are read from the envelope when a message is due).
            for index in 0..<count {
                core.insert(ids.next(), time: start + Double(index % 3600), held: false)
            }
            let after = csys_heap_in_use()
            let perMessage = Double(after - before) / Double(count)
            print("messages=\(count) bytes_per_message=\(String(format: "%.0f", perMessage))")
            withExtendedLifetime(core) {}
        }
    }
}
