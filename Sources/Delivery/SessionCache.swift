import Foundation
import Glibc
import PosternCore
import SMTP
import Synchronization
import TLS

/// Idle SMTP sessions kept after a successful transaction, for the next
/// message to the same server: Postfix's connection cache (`scache`).
///
/// Sessions are keyed by the server reached (transport, host, IP address,
/// port) and how it was reached (the TLS mode and the verification that was
/// enforced, so that a session opened under no policy never carries mail that
/// DANE or MTA-STS requires verified), never by recipient domain,
/// so domains hosted by one provider share them, as Postfix shares by IP
/// address. The transport's name stands for everything configured with it:
/// credentials, client name, TLS policy; a session authenticated for one
/// route is never handed to another.
///
/// Any delivery thread may take any idle session: a session belongs to the
/// thread using it, and to the cache between uses. Idle sessions are closed
/// (QUIT) by a thread of the cache's own once their idle time is over; it
/// runs only while the cache holds sessions.
public final class SessionCache: Sendable {
    /// How long and how much one connection may serve (`[connections]`).
    public struct Limits: Sendable, Equatable {
        /// Messages per connection; 1 turns reuse off.
        public var maxMessages: Int
        /// How long an idle session is kept for the next message.
        public var idleTimeout: Double
        /// No message starts on a connection older than this.
        public var maxAge: Double

        public init(maxMessages: Int = 100, idleTimeout: Double = 2, maxAge: Double = 300) {
            self.maxMessages = max(1, maxMessages)
            self.idleTimeout = idleTimeout
            self.maxAge = maxAge
        }
    }

    public struct Key: Hashable, Sendable, CustomStringConvertible {
        public var transport: String
        public var host: String
        public var ip: String
        public var port: UInt16
        public var tlsMode: TLSMode
        /// The verification enforced on the handshake (`.unverified` when none was).
        public var verification: TLSVerificationMode

        public init(transport: String, host: String, ip: String, port: UInt16, tlsMode: TLSMode,
                    verification: TLSVerificationMode = .unverified) {
            self.transport = transport
            self.host = host
            self.ip = ip
            self.port = port
            self.tlsMode = tlsMode
            self.verification = verification
        }

        public var description: String { "\(transport):\(host)[\(ip)]:\(port)/\(tlsMode.rawValue)/\(verification.rawValue)" }
    }

    /// An open session between two messages. Used by one thread at a time.
    public final class Session: @unchecked Sendable {
        public let client: SMTPClient
        public let facts: SessionFacts
        let opened = Deadline.now
        /// Messages this connection has carried, the one in progress included.
        public internal(set) var uses = 0
        var idleUntil = Deadline.now

        init(client: SMTPClient, facts: SessionFacts) {
            self.client = client
            self.facts = facts
        }
    }

    public let limits: Limits
    private let idle = Mutex<(sessions: [Key: [Session]], reaping: Bool)>(([:], false))
    /// Told how many messages each connection carried when it closes (metrics).
    private let observer = Mutex<Observer?>(nil)

    /// The observer's closure, kept in a struct. A closure stored straight in
    /// `Mutex` is generic there: each `withLock`, which passes it `inout`,
    /// wraps it in two re-abstraction thunks and stores the wrapped one back.
    /// The wrappers piled up, two per closed connection, for the life of the
    /// daemon: memory that grew without end (the soak's RSS creep, issue #17)
    /// and a call chain that deepened until it would have overflowed the stack.
    private struct Observer: Sendable {
        let body: @Sendable (Int) -> Void
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Sets what is told, for each connection that closes, how many messages it carried.
    public func observeClosing(_ body: @escaping @Sendable (Int) -> Void) {
        observer.withLock { $0 = Observer(body: body) }
    }

    /// A new session, counted from its first message.
    public func adopt(_ client: SMTPClient, facts: SessionFacts) -> Session {
        let session = Session(client: client, facts: facts)
        session.uses = 1
        return session
    }

    /// The most recently idle session for `key`, its use counted; nil when none is left.
    public func take(_ key: Key) -> Session? {
        let session: Session? = idle.withLock { state in
            guard var list = state.sessions[key], let last = list.popLast() else { return nil }
            state.sessions[key] = list.isEmpty ? nil : list
            return last
        }
        session?.uses += 1
        return session
    }

    /// After a message: keeps the session for the next one if the server
    /// left it usable and the limits allow, else ends it.
    public func release(_ session: Session, for key: Key, usable: Bool) {
        let age = Double(Deadline.now.nanoseconds - session.opened.nanoseconds) / 1e9
        guard usable, session.uses < limits.maxMessages, age < limits.maxAge, limits.idleTimeout > 0 else {
            close(session)
            return
        }
        session.idleUntil = .after(min(limits.idleTimeout, limits.maxAge - age))
        let startReaper = idle.withLock { state in
            state.sessions[key, default: []].append(session)
            defer { state.reaping = true }
            return !state.reaping
        }
        if startReaper { startReaping() }
    }

    /// Ends a session: QUIT, and its count of messages reported.
    public func close(_ session: Session) {
        session.client.quit()
        reportClosed(uses: session.uses)
    }

    /// Tells the observer that a connection which carried `uses` messages closed.
    func reportClosed(uses: Int) {
        observer.withLock { $0 }?.body(uses)
    }

    /// Ends every idle session (shutdown, reload).
    public func closeAll() {
        let all = idle.withLock { state in
            defer { state.sessions = [:] }
            return state.sessions.values.flatMap { $0 }
        }
        for session in all { close(session) }
    }

    /// The number of idle sessions, for tests and status.
    public var idleCount: Int { idle.withLock { $0.sessions.values.reduce(0) { $0 + $1.count } } }

    private func startReaping() {
        Thread.detachNewThread { [self] in reap() }
    }

    /// Closes sessions whose idle time is over; ends when none are left.
    private func reap() {
        while true {
            let (expired, next): ([Session], Deadline?) = idle.withLock { state in
                var expired: [Session] = []
                var next: Deadline?
                for (key, list) in state.sessions {
                    let keep = list.filter { !$0.idleUntil.hasPassed }
                    expired += list.filter { $0.idleUntil.hasPassed }
                    state.sessions[key] = keep.isEmpty ? nil : keep
                    for session in keep where next == nil || session.idleUntil < next! { next = session.idleUntil }
                }
                if next == nil { state.reaping = false }
                return (expired, next)
            }
            for session in expired { close(session) }
            guard let next else { return }
            var pause = timespec(tv_sec: 0, tv_nsec: 0)
            let nanoseconds = next.nanoseconds > Deadline.now.nanoseconds ? next.nanoseconds - Deadline.now.nanoseconds : 0
            pause.tv_sec = Int(nanoseconds / 1_000_000_000)
            pause.tv_nsec = Int(nanoseconds % 1_000_000_000)
            nanosleep(&pause, nil)
        }
    }
}
