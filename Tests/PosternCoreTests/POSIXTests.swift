import Glibc
import Testing
@testable import PosternBase

/// A system call that follows a script: each step moves at most so many
/// octets or fails with an errno; once the script is used up, every call
/// moves all it is offered (or all that is left to read).
final class ScriptedCall {
    enum Step: Equatable {
        case move(Int)
        case fail(Int32)
    }

    private var steps: [Step]
    private let source: [UInt8]
    private var position = 0
    private(set) var written: [UInt8] = []
    private(set) var calls = 0

    init(_ steps: [Step], source: [UInt8] = []) {
        self.steps = steps.reversed()
        self.source = source
    }

    func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        calls += 1
        var count = bytes.count
        switch steps.popLast() {
        case .fail(let code)?:
            errno = code
            return -1
        case .move(let limit)?: count = min(limit, bytes.count)
        case nil: break
        }
        written += bytes[..<count]
        return count
    }

    func read(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        calls += 1
        var count = min(buffer.count, source.count - position)
        switch steps.popLast() {
        case .fail(let code)?:
            errno = code
            return -1
        case .move(let limit)?: count = min(limit, count)
        case nil: break
        }
        for index in 0..<count { buffer[index] = source[position + index] }
        position += count
        return count
    }
}

/// SplitMix64: the same "random" scripts on every run, so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The one write-all / read-all helper, under every fault a system call can return.
struct POSIXTests {
    let message = Array("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n".utf8)

    func writeAll(_ bytes: [UInt8], _ call: ScriptedCall) throws(SystemCallError) {
        var failure: SystemCallError?
        bytes.withUnsafeBytes { raw in
            do throws(SystemCallError) { try POSIX.writeAll(raw, with: call.write) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func expectFailure(_ code: Int32, transferred: Int, _ body: () throws(SystemCallError) -> Void) {
        do throws(SystemCallError) {
            try body()
            Issue.record("no error; expected errno \(code)")
        } catch {
            #expect(error == SystemCallError(code: code, transferred: transferred))
        }
    }

    /// EINTR before, between and after parts is repeated: every octet arrives once, in order.
    @Test func interruptedWritesAreRepeated() throws {
        let call = ScriptedCall([.fail(EINTR), .fail(EINTR), .move(5), .fail(EINTR), .move(1), .fail(EINTR)])
        try writeAll(message, call)
        #expect(call.written == message)
        #expect(call.calls == 7)
    }

    /// Short writes of every length from 1 octet to the whole buffer.
    @Test func shortWritesOfEveryLength() throws {
        for length in 1...message.count {
            let call = ScriptedCall(Array(repeating: .move(length), count: message.count))
            try writeAll(message, call)
            #expect(call.written == message, "parts of \(length)")
            #expect(call.calls == (message.count + length - 1) / length, "parts of \(length)")
        }
    }

    /// Every way of cutting 9 octets into parts (256 of them), each part after an EINTR.
    @Test func everySplitOfAShortBuffer() throws {
        let bytes = Array(message[..<9])
        for cuts in 0..<(1 << 8) {
            var steps: [ScriptedCall.Step] = []
            var part = 1
            for position in 0..<8 {
                if cuts & (1 << position) != 0 {
                    steps += [.fail(EINTR), .move(part)]
                    part = 1
                } else {
                    part += 1
                }
            }
            steps += [.fail(EINTR), .move(part)]
            let call = ScriptedCall(steps)
            try writeAll(bytes, call)
            #expect(call.written == bytes, "cuts \(cuts)")
        }
    }

    /// ENOSPC, EIO, EPIPE and EAGAIN after any number of octets: thrown with that
    /// number, and exactly those octets written.
    @Test(arguments: [ENOSPC, EIO, EPIPE, EAGAIN, EDQUOT])
    func errorsSayHowFarTheWriteGot(code: Int32) {
        for before in 0...message.count - 1 {
            let call = ScriptedCall(Array(repeating: .move(1), count: before) + [.fail(EINTR), .fail(code)])
            expectFailure(code, transferred: before) { () throws(SystemCallError) in try writeAll(message, call) }
            #expect(call.written == Array(message[..<before]))
        }
    }

    /// A non-blocking descriptor that fills up: the caller waits and goes on with
    /// the rest, and the peer gets every octet once.
    @Test func wouldBlockLetsTheCallerResume() throws {
        let call = ScriptedCall([.move(10), .fail(EAGAIN), .move(3), .fail(EWOULDBLOCK)])
        var offset = 0
        var stops = 0
        while offset < message.count {
            do throws(SystemCallError) {
                try writeAll(Array(message[offset...]), call)
                offset = message.count
            } catch {
                #expect(error.wouldBlock)
                stops += 1
                offset += error.transferred
            }
        }
        #expect(stops == 2)
        #expect(call.written == message)
    }

    /// A write(2) that accepts nothing would loop forever: it is an I/O error.
    @Test func aWriteOfNothingIsAnError() {
        let call = ScriptedCall([.move(4), .move(0)])
        expectFailure(EIO, transferred: 4) { () throws(SystemCallError) in try writeAll(message, call) }
    }

    /// Reads through EINTR and short reads up to the bound, and no further.
    @Test func readStopsAtTheBound() throws {
        let source = Array(0..<200).map { UInt8($0) }
        let call = ScriptedCall([.move(1), .fail(EINTR), .move(7), .fail(EINTR), .move(0 + 3)], source: source)
        #expect(try POSIX.read(upTo: 150, with: call.read) == Array(source[..<150]))
        #expect(try POSIX.read(upTo: 1000, with: call.read) == Array(source[150...]), "the rest, up to the end")
        #expect(try POSIX.read(upTo: 10, with: call.read) == [], "at the end of file")
    }

    /// A read error after some octets says how many arrived.
    @Test(arguments: [EIO, EAGAIN, EISDIR])
    func readErrorsSayHowFarTheReadGot(code: Int32) {
        for before in [0, 1, 5, 30] {
            let call = ScriptedCall(Array(repeating: .move(1), count: before) + [.fail(EINTR), .fail(code)], source: message)
            expectFailure(code, transferred: before) { () throws(SystemCallError) in _ = try POSIX.read(upTo: 100, with: call.read) }
        }
    }

    /// One block per call, EINTR repeated, for the copying loops.
    @Test func readSomeTakesOneBlock() throws {
        let call = ScriptedCall([.fail(EINTR), .fail(EINTR), .move(6), .fail(ENOMEM)], source: message)
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = try buffer.withUnsafeMutableBytes { try POSIX.readSome(into: $0, with: call.read) }
        #expect(Array(buffer[..<count]) == Array(message[..<6]))
        let second = buffer.withUnsafeMutableBytes { raw in
            Result { () throws(SystemCallError) in try POSIX.readSome(into: raw, with: call.read) }
        }
        #expect(second == .failure(SystemCallError(code: ENOMEM)))
    }

    /// Thousands of random scripts (seeded): whatever the faults, the octets
    /// written are a prefix of the buffer, the error is the first one that is
    /// not EINTR, and its count is exactly what was written.
    @Test func randomScripts() {
        var generator = SeededGenerator(state: 17)
        let faults: [Int32] = [EINTR, EINTR, EINTR, EAGAIN, ENOSPC, EIO]
        for round in 0..<3000 {
            let bytes = Array(message[..<Int.random(in: 0...message.count, using: &generator)])
            let steps: [ScriptedCall.Step] = (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                Bool.random(using: &generator) ? .move(Int.random(in: 1...8, using: &generator))
                    : .fail(faults.randomElement(using: &generator)!)
            }
            let expectedError = steps.first { if case .fail(let code) = $0 { code != EINTR } else { false } }
            let writer = ScriptedCall(steps)
            do throws(SystemCallError) {
                try writeAll(bytes, writer)
                #expect(writer.written == bytes, "round \(round)")
            } catch {
                #expect(.fail(error.code) == expectedError, "round \(round)")
                #expect(writer.written == Array(bytes[..<error.transferred]), "round \(round)")
            }
            let reader = ScriptedCall(steps, source: bytes)
            do throws(SystemCallError) {
                #expect(try POSIX.read(upTo: bytes.count + 1, with: reader.read) == bytes, "round \(round)")
            } catch {
                #expect(.fail(error.code) == expectedError, "round \(round)")
            }
        }
    }

    /// The real calls on a real pipe: a non-blocking pipe fills, writeAll stops
    /// with EAGAIN and the count, and reading gives back exactly that much.
    @Test func realPipe() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        #expect(fcntl(fds[1], F_SETFL, O_NONBLOCK) == 0)
        let big = [UInt8](repeating: 0x61, count: 1 << 20)
        var accepted = 0
        do throws(SystemCallError) {
            try POSIX.writeAll(fds[1], big)
            Issue.record("a pipe took 1 MiB without blocking")
        } catch {
            #expect(error.wouldBlock)
            accepted = error.transferred
        }
        #expect(accepted > 0 && accepted < big.count)
        close(fds[1])
        let back = try POSIX.read(fds[0], upTo: big.count)
        #expect(back.count == accepted)
        #expect(back.allSatisfy { $0 == 0x61 })
        expectFailure(EBADF, transferred: 0) { () throws(SystemCallError) in try POSIX.writeAll(fds[1], [1]) }
    }

    /// The errno's words, for messages that say what failed, on what and why.
    @Test func errorText() {
        #expect(POSIX.errorText(ENOSPC) == "No space left on device")
        #expect(SystemCallError(code: EIO, transferred: 3).description == "Input/output error")
        #expect(SystemCallError(code: EWOULDBLOCK).wouldBlock)
        #expect(!SystemCallError(code: EINTR).wouldBlock)
    }
}
