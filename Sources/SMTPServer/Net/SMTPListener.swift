import Foundation
import Glibc
import Logging
import Monitoring
import PosternCore
import SpoolDrop
import Synchronization
import TLS

/// The SMTP listener of `postern run` (`smtp.listen`): accepts connections on
/// its addresses and serves each on a thread of its own (`SessionThreads`,
/// which keeps the threads of ended sessions for the next ones), writing every
/// accepted message into the spool by the drop protocol: straight into
/// `queue/` when the daemon beside it takes it so (`QueueHandoff`), else into
/// `drop/`, where the daemon's inotify watch picks it up like any other drop.
///
/// Why threads, and not an event loop (SwiftNIO) or Swift concurrency: a
/// session is a sequence of blocking steps, and the slowest of them, the
/// `fsync`s that must finish before the 250 after the data, block a thread
/// whatever the I/O model, so an event loop would still need a thread pool
/// for them. Connections are bounded (`smtp.max_connections`), so a thread
/// each costs little; the sockets are non-blocking and every wait is a
/// `poll(2)` with a deadline (the TLS layer the client already uses), so no
/// client can hold a thread past `smtp.timeout`. SwiftNIO would add minutes
/// to a clean build and BoringSSL beside the system OpenSSL. The cooperative
/// pool and the daemon's event loop are never touched: the daemon learns of
/// each message from the handoff, or from inotify as of any drop.
public final class SMTPListener: @unchecked Sendable {
    /// What `postern run` configures.
    public struct Settings: Sendable {
        public var session: SessionSettings
        /// Where to listen: IP address (IPv6 without brackets) and port (0: the kernel's choice, for tests).
        public var addresses: [(host: String, port: UInt16)]
        public var maxConnections = 100
        public var maxConnectionsPerClient = 20
        /// RFC 5321 4.5.3.2.7: at least 5 minutes waiting for a command; also
        /// each read during DATA and the TLS handshake.
        public var timeout: Double = 300
        public var tls: TLSServerContext?
        /// The daemon beside the listener, when it takes messages straight
        /// into `queue/`; nil: every message is dropped into `drop/`.
        public var handoff: QueueHandoff?

        public init(session: SessionSettings, addresses: [(host: String, port: UInt16)]) {
            self.session = session
            self.addresses = addresses
        }
    }

    private let settings: Settings
    private let layout: SpoolLayout
    private let logger: Logger
    private let metrics: PosternMetrics
    private var context: ListenerContext!
    private var sockets: [Int32] = []
    /// The ports bound, in the order of `addresses` (port 0 resolved).
    public private(set) var ports: [UInt16] = []
    private var stopPipe: [Int32] = [-1, -1]
    /// At most 32 threads wait for the next session: enough for the
    /// connection-per-message clients of a busy host, few enough to cost
    /// nothing worth counting when idle (and they end after a minute).
    private let threads: SessionThreads
    /// Open connections by client address text.
    private let clients = Mutex<(total: Int, byClient: [String: Int])>((0, [:]))

    public init(settings: Settings, layout: SpoolLayout, logger: Logger, metrics: PosternMetrics) {
        self.settings = settings
        threads = SessionThreads(keepIdle: min(settings.maxConnections, 32))
        self.layout = layout
        self.logger = logger
        self.metrics = metrics
    }

    deinit {
        stop()
    }

    /// Binds every address, then accepts on a thread of its own. Throws
    /// before accepting anything when the spool cannot be written or one
    /// address cannot be bound.
    public func start() throws(SpoolError) {
        // Checked once here rather than at every message (Submitter.begin's
        // check costs a handful of system calls): a spool that goes away
        // later fails its drops, which are answered 451.
        try SpoolCheck.requireWritable(layout)
        context = ListenerContext(settings: settings.session, layout: layout, tls: settings.tls,
                                  timeout: settings.timeout, handoff: settings.handoff, logger: logger, metrics: metrics)
        do throws(StreamError) {
            try bind()
        } catch {
            throw SpoolError(.unavailable, "cannot listen for SMTP: \(error) (smtp.listen)")
        }
    }

    private func bind() throws(StreamError) {
        for address in settings.addresses {
            let fd = try Self.listen(host: address.host, port: address.port)
            sockets.append(fd)
            ports.append(Self.localPort(fd))
        }
        guard pipe(&stopPipe) == 0 else { throw .system(operation: "pipe", code: errno) }
        for fd in stopPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        context.metrics.declareSMTP()
        for (index, address) in settings.addresses.enumerated() {
            context.logger.info("smtp listening", metadata: ["address": "\(address.host)", "port": "\(ports[index])"])
        }
        let sockets = self.sockets
        let wake = stopPipe[0]
        Thread.detachNewThread { [self] in acceptLoop(sockets, wake: wake) }
    }

    /// Stops accepting; sessions in progress finish on their own threads,
    /// and the threads that wait for a session end.
    public func stop() {
        threads.close()
        guard stopPipe[1] >= 0 else { return }
        var byte: UInt8 = 0
        _ = write(stopPipe[1], &byte, 1)
        close(stopPipe[1])
        stopPipe[1] = -1
    }

    private func acceptLoop(_ sockets: [Int32], wake: Int32) {
        defer {
            for fd in sockets { close(fd) }
            close(wake)
        }
        var entries = sockets.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        entries.append(pollfd(fd: wake, events: Int16(POLLIN), revents: 0))
        while true {
            let ready = poll(&entries, nfds_t(entries.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                context.logger.error("smtp poll", metadata: ["error": "\(String(cString: strerror(errno)))"])
                return
            }
            if entries.last!.revents != 0 { return }
            for index in sockets.indices where entries[index].revents != 0 {
                acceptOne(sockets[index])
            }
        }
    }

    private func acceptOne(_ listening: Int32) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listening, $0, &length) }
        }
        guard fd >= 0 else {
            // EMFILE and the like: logged, and the next poll tries again.
            if errno != EAGAIN && errno != ECONNABORTED && errno != EINTR {
                context.logger.warning("smtp accept", metadata: ["error": "\(String(cString: strerror(errno)))"])
                usleep(10_000)
            }
            return
        }
        // The daemon starts no programs, but a descriptor must not leak into one anyway.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let (address, text) = Self.clientAddress(storage)
        let admitted = clients.withLock { state -> Bool in
            guard state.total < settings.maxConnections, state.byClient[text, default: 0] < settings.maxConnectionsPerClient else {
                return false
            }
            state.total += 1
            state.byClient[text, default: 0] += 1
            return true
        }
        guard admitted else {
            // RFC 5321 3.8: 421 to a client that cannot be served now.
            let reply = ServerReply(421, "4.7.0", "\(settings.session.hostname) Error: too many connections").wire
            _ = reply.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            close(fd)
            context.metrics.smtpSessionEnded(.refused)
            context.logger.info("smtp refused", metadata: ["client": "\(text)", "reason": "too many connections"])
            return
        }
        context.metrics.smtpSessionStarted()
        let context: ListenerContext = self.context
        threads.run { [self] in
            var nodelay: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &nodelay, socklen_t(MemoryLayout<Int32>.size))
            let end: SMTPSessionEnd
            do throws(StreamError) {
                let stream = try SocketStream(fileDescriptor: fd)
                end = ServerConnection(stream: stream, context: context, clientAddress: address, clientText: text).run()
            } catch {
                end = .disconnected
            }
            context.metrics.smtpSessionEnded(end)
            clients.withLock { state in
                state.total -= 1
                state.byClient[text, default: 1] -= 1
                if state.byClient[text] == 0 { state.byClient[text] = nil }
            }
        }
    }
}
