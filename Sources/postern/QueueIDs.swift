import ArgumentParser
import PosternCore

extension Postern {
    /// Prints fresh queue IDs. Hidden: it exists so that tests can check that
    /// IDs made by several processes at once never collide.
    struct QueueIDs: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "queue-ids",
            abstract: "Print new queue IDs, one per line.",
            shouldDisplay: false
        )

        @Option(help: "How many.")
        var count = 1

        func run() {
            let generator = QueueIDGenerator()
            var text = ""
            text.reserveCapacity(count * 27)
            for _ in 0..<count { text += generator.next().rawValue + "\n" }
            output(text)
        }
    }
}
