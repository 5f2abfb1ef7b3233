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
            // Domains of a realistic length, each message with its own copy, as the
            // scanner makes them from each envelope (the worst case: no sharing).
            let domains = (0..<2000).map { "mx\($0).example-destination.net" }
            let before = csys_heap_in_use()
            let core = SchedulerCore(limits: SchedulerLimits())
            let start = Date()
            for index in 0..<count {
                core.insert(ids.next(), nextAttempt: start.addingTimeInterval(Double(index % 3600)),
                            domains: [String(decoding: Array(domains[index % domains.count].utf8), as: UTF8.self)], held: false)
            }
            let after = csys_heap_in_use()
            let perMessage = Double(after - before) / Double(count)
            print("messages=\(count) bytes_per_message=\(String(format: "%.0f", perMessage))")
            withExtendedLifetime(core) {}
        }
    }
}
