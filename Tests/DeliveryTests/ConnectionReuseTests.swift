import Foundation
import PosternCore
import PosternTesting
import SMTP
import TLS
import Synchronization
import Testing
@testable import Delivery

/// Connection reuse (issue #14): an SMTP session kept after a transaction carries the next message to the
/// same server; a server that ends reuse costs no message; sessions are keyed by server and transport.
struct ConnectionReuseTests {
    static func options() -> SMTPClientOptions {
        var options = SMTPClientOptions(ehloName: "client.postern.test", tlsMode: .plaintext)
        options.timeouts = SMTPTimeouts(uniform: 10)
        return options
    }

    static func relay(port: UInt16, sessions: SessionCache?, name: String = "relay") -> RelayTransport {
        RelayTransport(name: name, host: "127.0.0.1", port: port, options: options(), sessions: sessions)
    }

    static func request(to recipient: String, subject: String = "reuse") throws -> DeliveryRequest {
        let directory = NSTemporaryDirectory() + "/postern-reuse-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/message"
        try Data("Subject: \(subject)\r\n\r\nhello\r\n".utf8).write(to: URL(fileURLWithPath: path))
        let domain = String(recipient.split(separator: "@").last!)
        return DeliveryRequest(id: QueueIDGenerator().next(), messagePath: path, sender: "a@b.example", recipients: [recipient], domain: domain)
    }

    static func transaction(_ recipient: String, reply: String) -> [ScriptedSMTPPeer.Step] {
        [.expect("MAIL FROM:<a@b.example>"), .send("250 2.1.0 ok"), .expect("RCPT TO:<\(recipient)>"), .send("250 2.1.5 ok"),
         .expect("DATA"), .send("354 go on"), .receiveData, .send(reply)]
    }

    /// Three messages for three domains hosted by one server travel over the one connection the peer
    /// accepts (it serves a single one), with RSET between them; the session is idle in the cache after.
    @Test func threeMessagesOneConnection() throws {
        let peer = try ScriptedSMTPPeer(listening: [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"),
                                                    .send("250 peer.example")]
            + Self.transaction("bob@one.example", reply: "250 2.0.0 queued as 1") + [.expect("RSET"), .send("250 2.0.0 ok")]
            + Self.transaction("carol@two.example", reply: "250 2.0.0 queued as 2") + [.expect("RSET"), .send("250 2.0.0 ok")]
            + Self.transaction("dave@three.example", reply: "250 2.0.0 queued as 3")
            + [.expect("QUIT"), .send("221 2.0.0 bye")])
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let transport = Self.relay(port: peer.port, sessions: sessions)
        var uses: [Int?] = []
        for recipient in ["bob@one.example", "carol@two.example", "dave@three.example"] {
            let report = transport.deliver(try Self.request(to: recipient), cancellation: Cancellation())
            #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
            uses.append(report.connectionUse)
        }
        #expect(uses == [1, 2, 3])
        #expect(sessions.idleCount == 1)
        sessions.closeAll()
        let outcome = peer.finish()
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.messages.count == 3)
    }

    /// The message limit per connection: the session that carried the last allowed message is closed
    /// with QUIT instead of being kept.
    @Test func messageLimitEndsTheSession() throws {
        let peer = try ScriptedSMTPPeer(listening: [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"),
                                                    .send("250 peer.example")]
            + Self.transaction("bob@one.example", reply: "250 ok") + [.expect("RSET"), .send("250 ok")]
            + Self.transaction("carol@one.example", reply: "250 ok") + [.expect("QUIT"), .send("221 bye")])
        let closed = Counter()
        let sessions = SessionCache(limits: .init(maxMessages: 2, idleTimeout: 30, maxAge: 300))
        sessions.observeClosing { closed.add($0) }
        let transport = Self.relay(port: peer.port, sessions: sessions)
        for recipient in ["bob@one.example", "carol@one.example"] {
            #expect(transport.deliver(try Self.request(to: recipient), cancellation: Cancellation()).results.map(\.outcome) == [.delivered])
        }
        #expect(sessions.idleCount == 0)
        #expect(peer.finish().failures.isEmpty)
        #expect(closed.values == [2])
    }

    /// A server that refuses RSET, or hangs up at it, ends reuse: every message still arrives, each over
    /// a new connection, and none is reported as anything but delivered (no attempt lost or added).
    @Test(arguments: [["-r", "RSET"], ["-q", "RSET"]])
    func serverThatEndsReuseCostsNothing(options: [String]) throws {
        let sink = try LocalSink(options: options)
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let transport = Self.relay(port: sink.port, sessions: sessions)
        for index in 0..<4 {
            let report = transport.deliver(try Self.request(to: "r\(index)@one.example", subject: "s\(index)"), cancellation: Cancellation())
            #expect(report.results.map(\.outcome) == [.delivered], "\(report.results)")
            #expect(report.connectionUse == 1)
        }
        sessions.closeAll()
        #expect(BackgroundProcess.waitUntil(timeout: 10) { Set(sink.subjects()) == ["s0", "s1", "s2", "s3"] })
    }

    /// Sessions are never shared across transports (credentials, client name, policy) or servers.
    @Test func keysSeparateTransportsAndServers() throws {
        let peer = try ScriptedSMTPPeer([.expect("QUIT"), .send("221 bye")])
        let client = SMTPClient(stream: try SocketStream(fileDescriptor: peer.clientSocket), options: Self.options())
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let key = SessionCache.Key(transport: "smarthost", host: "mx.example", ip: "127.0.0.1", port: 25, tlsMode: .required)
        sessions.release(sessions.adopt(client, facts: client.facts), for: key, usable: true)
        var other = key
        other.transport = "submission"
        #expect(sessions.take(other) == nil)
        other = key
        other.ip = "127.0.0.2"
        #expect(sessions.take(other) == nil)
        other = key
        other.tlsMode = .opportunistic
        #expect(sessions.take(other) == nil)
        let same = try #require(sessions.take(key))
        #expect(same.uses == 2)
        sessions.close(same)
        #expect(peer.finish().failures.isEmpty)
    }

    /// A session the server left unusable (421 at the end of data) is closed, not kept.
    @Test func unusableSessionIsNotKept() throws {
        let peer = try ScriptedSMTPPeer(listening: [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"),
                                                    .send("250 peer.example")]
            + Self.transaction("bob@one.example", reply: "421 4.3.2 shutting down") + [.expect("QUIT"), .send("221 bye")])
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let report = Self.relay(port: peer.port, sessions: sessions).deliver(try Self.request(to: "bob@one.example"), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.deferred])
        #expect(sessions.idleCount == 0)
        #expect(peer.finish().failures.isEmpty)
    }
}

/// Collects values from another thread.
final class Counter: Sendable {
    private let list = Mutex<[Int]>([])
    func add(_ value: Int) { list.withLock { $0.append(value) } }
    var values: [Int] { list.withLock { $0 } }
}

extension ConnectionReuseTests {
    /// A kept session whose server answers the next MAIL with an error (here 421, it is going away)
    /// ends reuse: the message goes over a new connection within the same attempt and is delivered,
    /// reported once, on a connection of its own.
    @Test func mailRefusedOnAKeptSessionMovesToANewConnection() throws {
        let greeting: [ScriptedSMTPPeer.Step] = [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"), .send("250 peer.example")]
        let peer = try ScriptedSMTPPeer(listening: [
            greeting + Self.transaction("bob@one.example", reply: "250 2.0.0 queued as 1")
                + [.expect("RSET"), .send("250 2.0.0 ok"), .expect("MAIL FROM:<a@b.example>"), .send("421 4.3.2 closing, try again"),
                   .expect("QUIT"), .send("221 bye")],
            greeting + Self.transaction("carol@two.example", reply: "250 2.0.0 queued as 2") + [.expect("QUIT"), .send("221 bye")],
        ])
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 300))
        let transport = Self.relay(port: peer.port, sessions: sessions)
        let first = transport.deliver(try Self.request(to: "bob@one.example"), cancellation: Cancellation())
        #expect(first.results.map(\.outcome) == [.delivered])
        let second = transport.deliver(try Self.request(to: "carol@two.example"), cancellation: Cancellation())
        #expect(second.results.map(\.outcome) == [.delivered], "\(second.results)")
        #expect(second.connectionUse == 1)
        sessions.closeAll()
        let outcome = peer.finish()
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(outcome.messages.count == 2)
    }
}

extension ConnectionReuseTests {
    /// queue.reuse_idle_timeout: an idle session is closed with QUIT by the cache's own thread once its
    /// idle time is over, with no message to send (the peer's script ends only when QUIT arrives).
    @Test func idleSessionIsClosedByTheCache() throws {
        let peer = try ScriptedSMTPPeer(listening: [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"),
                                                    .send("250 peer.example")]
            + Self.transaction("bob@one.example", reply: "250 ok") + [.expect("QUIT"), .send("221 bye")])
        let closed = Counter()
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 0.2, maxAge: 300))
        sessions.observeClosing { closed.add($0) }
        let report = Self.relay(port: peer.port, sessions: sessions).deliver(try Self.request(to: "bob@one.example"), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        let outcome = peer.finish()
        #expect(outcome.failures.isEmpty, "\(outcome.failures)")
        #expect(BackgroundProcess.waitUntil(timeout: 10) { closed.values == [1] })
        #expect(sessions.idleCount == 0)
    }

    /// queue.reuse_max_age: a connection past its age is not kept for another message.
    @Test func sessionPastItsAgeIsNotKept() throws {
        let peer = try ScriptedSMTPPeer(listening: [.send("220 peer.example ESMTP"), .expect("EHLO client.postern.test"),
                                                    .send("250 peer.example")]
            + Self.transaction("bob@one.example", reply: "250 ok") + [.expect("QUIT"), .send("221 bye")])
        let sessions = SessionCache(limits: .init(maxMessages: 100, idleTimeout: 30, maxAge: 0))
        let report = Self.relay(port: peer.port, sessions: sessions).deliver(try Self.request(to: "bob@one.example"), cancellation: Cancellation())
        #expect(report.results.map(\.outcome) == [.delivered])
        #expect(sessions.idleCount == 0)
        #expect(peer.finish().failures.isEmpty)
    }
}

extension ConnectionReuseTests {
    /// The closing observer runs at the same stack depth after a thousand closed connections as
    /// after the first. Kept straight in a `Mutex`, the closure was wrapped in two more thunks at each
    /// call and stored back wrapped: the daemon's memory grew without end (the soak's RSS creep) and
    /// each call went deeper, on the way to overflowing a delivery thread's stack.
    @Test func closingObserverStaysAtOneDepth() {
        let sessions = SessionCache()
        let stackAddresses = Mutex<[Int]>([])
        sessions.observeClosing { _ in
            var marker = 0
            let address = withUnsafeMutablePointer(to: &marker) { Int(bitPattern: $0) }
            stackAddresses.withLock { $0.append(address) }
        }
        for _ in 0..<1000 { sessions.reportClosed(uses: 1) }
        let seen = stackAddresses.withLock { $0 }
        #expect(seen.count == 1000)
        #expect(Set(seen).count == 1, "the observer ran \((seen.first ?? 0) - (seen.last ?? 0)) bytes deeper after 1000 calls")
    }
}
