import Foundation
import Testing
@testable import PosternBase
@testable import PosternCore

struct QueueIDTests {
    /// An ID is 26 characters of the Crockford alphabet and parses back.
    @Test func formatAndParse() throws {
        let id = QueueIDGenerator().next()
        #expect(id.rawValue.count == 26)
        #expect(id.rawValue.utf8.allSatisfy { QueueID.alphabet.contains($0) })
        #expect(QueueID(id.rawValue) == id)
    }

    /// The first ten characters encode the creation time in milliseconds.
    @Test func encodesTime() {
        let date = Date(timeIntervalSince1970: 1_764_386_254.123)
        let id = QueueIDGenerator(now: { date }).next()
        #expect(id.milliseconds == 1_764_386_254_123)
    }

    /// IDs of later times sort after earlier ones as plain strings.
    @Test func sortsByTime() {
        let early = QueueIDGenerator(now: { Date(timeIntervalSince1970: 1_000) }).next()
        let late = QueueIDGenerator(now: { Date(timeIntervalSince1970: 1_000.001) }).next()
        #expect(early < late)
        #expect(early.rawValue < late.rawValue)
    }

    /// Within one millisecond, and with a clock stepping back, IDs still increase.
    @Test func monotonicWithinProcess() {
        let times = [5.0, 5.0, 5.0, 4.0, 5.0, 6.0]
        let clock = Mutex2(times)
        let generator = QueueIDGenerator(now: { Date(timeIntervalSince1970: clock.next()) })
        let ids = (0..<times.count).map { _ in generator.next() }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
    }

    /// Many IDs from one generator are all distinct.
    @Test func uniqueInProcess() {
        let generator = QueueIDGenerator()
        let ids = (0..<50_000).map { _ in generator.next() }
        #expect(Set(ids).count == ids.count)
    }

    /// Wrong lengths, characters outside the alphabet, lower case and path tricks are not IDs.
    @Test(arguments: ["", "01JDZ5K8B1X9H6W3FQ2M4N7PT", "01JDZ5K8B1X9H6W3FQ2M4N7PTRX", "01jdz5k8b1x9h6w3fq2m4n7ptr",
                      "01JDZ5K8B1X9H6W3FQ2M4N7PTI", "../DZ5K8B1X9H6W3FQ2M4N7PTR", "81JDZ5K8B1X9H6W3FQ2M4N7PTR"])
    func rejectsNonIDs(_ text: String) {
        #expect(QueueID(text) == nil)
    }
}

/// A tiny thread-safe sequence of clock readings for the generator under test.
final class Mutex2: @unchecked Sendable {
    private var values: [Double]
    private let lock = NSLock()
    init(_ values: [Double]) { self.values = values }
    func next() -> Double {
        lock.lock()
        defer { lock.unlock() }
        return values.isEmpty ? 0 : values.removeFirst()
    }
}
