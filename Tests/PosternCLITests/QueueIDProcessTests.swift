import Foundation
import PosternCore
import PosternTesting
import Testing

struct QueueIDProcessTests {
    /// Processes generating IDs at the same time never collide, and each one's IDs increase.
    @Test func uniqueAcrossProcesses() throws {
        let outputs = Outputs()
        // Dispatch threads, not Swift's cooperative pool: each waits on a child process.
        DispatchQueue.concurrentPerform(iterations: 4) { index in
            let ids = (try? PosternProcess.run(["queue-ids", "--count", "20000"]))?
                .stdout.split(separator: "\n").map(String.init) ?? []
            outputs.set(index, ids)
        }
        for ids in outputs.all {
            #expect(ids.count == 20000)
            #expect(ids == ids.sorted())
            #expect(ids.allSatisfy { QueueID($0) != nil })
        }
        let all = outputs.all.flatMap { $0 }
        #expect(Set(all).count == 80000)
    }
}

final class Outputs: @unchecked Sendable {
    private var values = [[String]](repeating: [], count: 4)
    private let lock = NSLock()
    func set(_ index: Int, _ ids: [String]) { lock.withLock { values[index] = ids } }
    var all: [[String]] { lock.withLock { values } }
}
