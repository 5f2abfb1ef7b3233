import Foundation
import Glibc
import PosternCore
import PosternTesting
import Testing
@testable import SMTP
@testable import TLS

/// A stream that counts the octets the client reads: the proof that a hostile
/// server cannot make the client read (and so buffer) without bound.
final class CountingStream: ByteStream {
    private let inner: ByteStream
    private(set) var octetsRead = 0

    init(_ inner: ByteStream) {
        self.inner = inner
    }

    var fileDescriptor: Int32 { inner.fileDescriptor }

    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int {
        let count = try inner.read(into: buffer, deadline: deadline)
        octetsRead += count
        return count
    }

    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError) {
        try inner.write(bytes, deadline: deadline)
    }
}

/// Issue #17, hostile servers: each one costs a bounded number of octets read
/// and a bounded wait (the configured timeout, never the server's goodwill),
/// and ends the attempt with a temporary failure that says why. The cases that
/// SMTPErrorPathTests already covers (a close after each command, a short
/// garbage greeting, a silent server) are not repeated here.
struct HostileServerTests {
    typealias H = SessionHarness

    /// What the client reads at most for one hostile reply: the longest line
    /// it keeps, plus one read of overshoot (ReplyReader reads 4 KiB at a
    /// time), plus the short replies of the script before it.
    static let oneLineBound = ReplyReader.maxLineLength + 1 + 4096 + 256
    static let replyBound = ReplyReader.maxLines * (ReplyReader.maxLineLength + 2) + 4096 + 256

    struct Run {
        var error: SMTPError?
        var octetsRead: Int
        var seconds: Double
        var outcome: ScriptedSMTPPeer.Outcome
    }

    /// Runs the client (open, then one transaction to a@x.example) against
    /// `script` on a socketpair and measures what it cost.
    static func attempt(_ script: [ScriptedSMTPPeer.Step], options: SMTPClientOptions = H.options(),
                        message: MessageSource = H.message("Subject: t\r\n\r\nhello\r\n")) throws -> Run {
        let peer = try ScriptedSMTPPeer(script)
        let started = Deadline.now
        var octets = 0
        let error: SMTPError? = try {
            let stream = CountingStream(try SocketStream(fileDescriptor: peer.clientSocket))
            defer { octets = stream.octetsRead }
            let client = SMTPClient(stream: stream, options: options)
            do throws(SMTPError) {
                try client.open()
            } catch {
                return error
            }
            let transaction = Transaction(sender: "alice@example.org", recipients: ["a@x.example"], message: message)
            return client.deliver(transaction).error(for: "a@x.example")
        }()
        let seconds = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        return Run(error: error, octetsRead: octets, seconds: seconds, outcome: peer.finish())
    }

    static func isProtocolViolation(_ error: SMTPError?, containing text: String) -> Bool {
        guard case .protocolViolation(let detail) = error?.kind else { return false }
        return detail.contains(text)
    }

    static let toData: [ScriptedSMTPPeer.Step] = H.opening() + [
        .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"), .expect("RCPT TO:<a@x.example>"), .send("250 ok"),
        .expect("DATA"), .send("354 go"),
    ]

    /// A reply whose continuation lines never end: refused at the 100th line,
    /// after reading no more than 100 lines' worth, although the server would
    /// have sent 64 MiB.
    @Test func endlessContinuationLines() throws {
        let run = try Self.attempt([.send("220 mx.example ESMTP"), .expect("EHLO client.example"),
                                    .flood(Array("250-STILL-GOING\r\n".utf8), limit: 64 << 20)])
        #expect(Self.isProtocolViolation(run.error, containing: "more than 100 lines"), "\(String(describing: run.error))")
        #expect(run.error?.command == "EHLO" && run.error?.isPermanent == false)
        #expect(run.octetsRead <= Self.replyBound)
        #expect(run.outcome.flooded < 64 << 20)
    }

    /// An EHLO reply of 10,000 lines is refused the same way; the client reads
    /// a bounded prefix of its 270 KB.
    @Test func tenThousandLineEHLO() throws {
        let lines = (0..<9_999).map { "250-X-EXTENSION-\($0)\r\n" }.joined() + "250 SIZE 1000\r\n"
        let run = try Self.attempt([.send("220 mx.example ESMTP"), .expect("EHLO client.example"),
                                    .sendRaw(Array(lines.utf8)), .waitForClose])
        #expect(Self.isProtocolViolation(run.error, containing: "more than 100 lines"), "\(String(describing: run.error))")
        #expect(run.error?.isPermanent == false)
        #expect(run.octetsRead <= Self.replyBound && run.octetsRead < lines.utf8.count / 10)
    }

    /// A reply line of 1 MiB: refused after one line's bound (about 8 KiB read).
    @Test func oneMegabyteReplyLine() throws {
        let line = Array("250 ".utf8) + [UInt8](repeating: 0x41, count: 1 << 20) + [13, 10]
        let run = try Self.attempt([.send("220 mx.example ESMTP"), .expect("EHLO client.example"), .sendRaw(line), .waitForClose])
        #expect(Self.isProtocolViolation(run.error, containing: "longer than 4096"), "\(String(describing: run.error))")
        #expect(run.error?.command == "EHLO" && run.error?.isPermanent == false)
        #expect(run.octetsRead <= Self.oneLineBound)
    }

    /// A greeting sent one octet at a time (slowloris): every octet resets no
    /// clock, so the greeting timeout bounds the whole reply and the attempt
    /// ends with a timeout long before the greeting would.
    @Test func slowlorisGreeting() throws {
        var options = H.options()
        options.timeouts.greeting = 0.5
        let greeting = Array("220 \(String(repeating: "s", count: 200)) ESMTP\r\n".utf8)
        let run = try Self.attempt([.drip(greeting, interval: 0.05)], options: options)
        #expect(run.error?.kind == .timeout && run.error?.command == "greeting" && run.error?.isPermanent == false)
        #expect(run.octetsRead < greeting.count)
        // Generous: twenty times the timeout; the greeting alone would take 10 s.
        #expect(run.seconds < 10)
    }

    /// Garbage instead of the reply after the final dot: a protocol error for
    /// the recipient, temporary, and the garbage read is bounded.
    @Test func garbageAfterData() throws {
        let run = try Self.attempt(Self.toData + [.receiveData, .flood(Array("\u{1}\u{2}garbage ".utf8), limit: 16 << 20)])
        #expect(Self.isProtocolViolation(run.error, containing: "longer than 4096"), "\(String(describing: run.error))")
        #expect(run.error?.command == "end of data" && run.error?.isPermanent == false)
        #expect(run.octetsRead <= 4096 + Self.oneLineBound)
    }

    /// A server that takes the message and never answers the final dot: the
    /// data termination timeout (RFC 5321 4.5.3.2.6) ends the wait.
    @Test func hangAfterData() throws {
        var options = H.options()
        options.timeouts.dataTermination = 0.5
        let run = try Self.attempt(Self.toData + [.receiveData, .waitForClose], options: options)
        #expect(run.error?.kind == .timeout && run.error?.command == "end of data" && run.error?.isPermanent == false)
        #expect(run.outcome.messages.count == 1)
        #expect(run.seconds < 10)
    }

    /// A server that stops reading in the middle of a large message (and
    /// dribbles garbage instead): the data block timeout (4.5.3.2.5) ends the
    /// blocked write.
    @Test func serverStopsReadingDuringData() throws {
        var options = H.options()
        options.timeouts.dataBlock = 0.5
        let message = BytesMessageSource(Array("Subject: big\r\n\r\n".utf8) + Array(repeating: Array("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n".utf8), count: 1 << 17).flatMap { $0 })
        let run = try Self.attempt(Self.toData + [.drip(Array("not reading\r\n".utf8), interval: 0.2)], options: options, message: message)
        #expect(run.error?.kind == .timeout && run.error?.isPermanent == false, "\(String(describing: run.error))")
        #expect(run.seconds < 10)
    }

    /// STARTTLS accepted, then not a byte of the handshake: the handshake
    /// timeout ends it, temporary, and nothing is sent in the clear.
    @Test func tlsHandshakeNeverCompletes() throws {
        var options = H.options(.required, tls: TLSClientOptions(context: try TLSContext()))
        options.timeouts.tlsHandshake = 0.5
        let run = try Self.attempt(H.opening(["STARTTLS"]) + [.expect("STARTTLS"), .send("220 go ahead"), .waitForClose], options: options)
        let error = try #require(run.error)
        #expect(error.command == "STARTTLS" && !error.isPermanent, "\(error)")
        #expect(error.description.contains("timed out"), "\(error)")
        #expect(!run.outcome.transcript.contains { $0.hasPrefix("C: MAIL") })
        #expect(run.seconds < 10)
    }

    /// The same hostile server with a handshake dribbled one octet at a time:
    /// the deadline is for the whole handshake.
    @Test func tlsHandshakeDripFed() throws {
        var options = H.options(.required, tls: TLSClientOptions(context: try TLSContext()))
        options.timeouts.tlsHandshake = 0.5
        // A TLS record header announcing a ServerHello that never comes whole.
        let stalled: [UInt8] = [0x16, 0x03, 0x03, 0x40, 0x00] + [UInt8](repeating: 0x02, count: 200)
        let run = try Self.attempt(H.opening(["STARTTLS"]) + [.expect("STARTTLS"), .send("220 go ahead"),
                                                              .drip(stalled, interval: 0.05)], options: options)
        let error = try #require(run.error)
        #expect(error.command == "STARTTLS" && !error.isPermanent, "\(error)")
        #expect(run.seconds < 10)
    }

    /// A TCP reset (not a FIN) at each step of the transaction, on a real
    /// loopback connection: a temporary network failure naming the step.
    @Test(arguments: [
        ([ScriptedSMTPPeer.Step.reset], "greeting"),
        ([.send("220 mx"), .expect("EHLO client.example"), .reset], "EHLO"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .reset], "MAIL FROM"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .reset], "RCPT TO"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .send("250 ok"), .expect("DATA"), .reset], "DATA"),
        ([.send("220 mx"), .expect("EHLO client.example"), .send("250 mx"), .expect("MAIL FROM:<alice@example.org>"), .send("250 ok"),
          .expect("RCPT TO:<a@x.example>"), .send("250 ok"), .expect("DATA"), .send("354 go"), .receiveData, .reset], "end of data"),
    ])
    func resetAt(_ script: [ScriptedSMTPPeer.Step], _ command: String) throws {
        let peer = try ScriptedSMTPPeer(listening: script)
        let error: SMTPError? = try {
            let stream = try TCPConnector.connect(ip: "127.0.0.1", port: peer.port, deadline: .after(10))
            let client = SMTPClient(stream: stream, options: H.options())
            do throws(SMTPError) {
                try client.open()
            } catch {
                return error
            }
            return client.deliver(H.transaction(["a@x.example"])).error(for: "a@x.example")
        }()
        _ = peer.finish()
        let failure = try #require(error)
        #expect(failure.command == command && !failure.isPermanent, "\(failure)")
        #expect(failure.kind == .network(.closed), "\(failure)")
    }

    /// The defaults are bounded, and are RFC 5321 4.5.3.2's minimums: no wait
    /// of the client is left to the server's goodwill.
    @Test func defaultTimeoutsAreBoundedByRFC5321() {
        let defaults = SMTPTimeouts()
        #expect(defaults.greeting == 300)        // 4.5.3.2.1
        #expect(defaults.mail == 300)            // 4.5.3.2.2
        #expect(defaults.recipient == 300)       // 4.5.3.2.3
        #expect(defaults.dataInitiation == 120)  // 4.5.3.2.4
        #expect(defaults.dataBlock == 180)       // 4.5.3.2.5
        #expect(defaults.dataTermination == 600) // 4.5.3.2.6
        #expect(defaults.command == 300)
        #expect(defaults.tlsHandshake == 60)
    }
}
