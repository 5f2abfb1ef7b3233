import Dispatch
import FlyingFox
import Foundation
import FlyingSocks
import Logging
import Synchronization

/// Serves `GET /metrics` (the Prometheus text format of a `PosternMetrics`)
/// over HTTP on one address: the `metrics.listen` setting.
///
/// Built on FlyingFox's `HTTPServer` rather than a hand-written HTTP parser:
/// request parsing, keep-alive and timeouts are a library's job, and FlyingFox
/// brings no SwiftNIO (a much heavier build) for one loopback endpoint.
///
/// ## Threads
/// The daemon is a synchronous poll loop on its own thread; FlyingFox is async.
/// `start()` and `stop()` bridge the two: they run the server in a detached
/// task on Swift's cooperative pool (FlyingFox's sockets are non-blocking and
/// its `epoll_wait` runs on a dispatch queue of its own, so it never holds a
/// pool thread) and block the calling thread on a semaphore until the server
/// listens, failed to, or stopped. Hence:
///
/// - Call `start()` and `stop()` from a plain thread (the daemon's main thread,
///   a `Thread`), never from async code or a task: blocking a thread of the
///   cooperative pool, which has one thread per core, can starve the very tasks
///   being waited for (each wait is bounded, so the worst case is a timeout
///   error, not a hang). They are marked `noasync` for this reason.
/// - A bind failure (`EADDRINUSE`, `EACCES`, an address not on this host) is
///   thrown by `start()` itself, so the daemon can refuse to start.
///
/// ## Responses
/// `GET /metrics` is 200 with `Content-Type: text/plain; version=0.0.4;
/// charset=utf-8`; `/metrics` with another method is 405 (`Allow: GET`); any
/// other path is 404. The query string is ignored.
public final class MetricsServer: Sendable {
    /// The content type of the Prometheus text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The host as given: an IPv4 or IPv6 literal (brackets allowed) or
    /// `localhost` (127.0.0.1). Names are not resolved.
    public let host: String
    /// The port as given; 0 asks the kernel for a free port (see `boundPort`).
    public let port: UInt16
    private let metrics: PosternMetrics
    private let logger: Logger
    /// How long `start()` waits for the socket to listen, and `stop()` for the
    /// server to wind down. Both are normally a few milliseconds.
    private let startTimeout: Double
    private let stopTimeout: Double
    private let requestTimeout: Double

    private struct Running: Sendable {
        var server: HTTPServer
        var task: Task<Void, Never>
        var port: UInt16
    }

    private struct State: Sendable {
        var running: Running?
        var starting = false
        var stopping = false
    }

    private let state = Mutex(State())

    /// A server for `metrics` on `host`:`port`, not yet started. `logger`
    /// gets "metrics listening", "metrics stopped" and failures after start-up
    /// at info/error, FlyingFox's own lines at debug and trace. The timeouts
    /// (seconds) bound how long `start()` and `stop()` may block, and how long
    /// one request may take before it is answered 500.
    public init(host: String, port: UInt16, metrics: PosternMetrics, logger: Logger,
                startTimeout: Double = 10, stopTimeout: Double = 5, requestTimeout: Double = 15) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.logger = logger
        self.startTimeout = startTimeout
        self.stopTimeout = stopTimeout
        self.requestTimeout = requestTimeout
    }

    /// The port the server listens on while it runs (the kernel's choice when
    /// `port` was 0); nil before `start()` and after `stop()`.
    public var boundPort: UInt16? {
        state.withLock { $0.running?.port }
    }

    /// Binds, listens and starts serving; returns once the socket listens.
    /// Throws `MetricsServerError` when the host is not an address, the bind
    /// or listen fails, the server is already running, or it did not listen
    /// within the start timeout. Blocks the calling thread: see the type's
    /// documentation.
    @available(*, noasync, message: "blocks the calling thread; call it from a plain thread")
    public func start() throws(MetricsServerError) {
        let address = try ListenAddress(host: host, port: port)
        try state.withLock { (state) throws(MetricsServerError) in
            guard state.running == nil, !state.starting else { throw .alreadyStarted }
            state.starting = true
            state.stopping = false
        }
        let server = HTTPServer(config: HTTPServer.Configuration(
            address: address.socketAddress, timeout: requestTimeout,
            logger: FlyingFoxLogger(logger: logger)),
            handler: MetricsHandler(metrics: metrics))

        let latch = StartupLatch()
        let task = Task.detached(executorPreference: Self.thread) { [logger, weak self] in
            // A failed accept (EMFILE: the daemon out of descriptors) ends
            // FlyingFox's run, and the metrics are most wanted then: once it
            // has started, the server runs again every second until stopped,
            // said once per run of failures.
            var failing = false
            while true {
                let began = ContinuousClock.now
                do {
                    try await server.run()
                    _ = latch.finish(.failure(.stopped(address: address.description)))
                    return
                } catch {
                    let first = latch.finish(.failure(MetricsServerError(error, address: address)))
                    func stopping() -> Bool { self?.state.withLock { $0.stopping } ?? true }
                    guard !first, !stopping() else { return }
                    if ContinuousClock.now - began > .seconds(10) { failing = false }
                    if !failing {
                        logger.error("metrics server failed; restarting it every second",
                                     metadata: ["listen": "\(address)", "error": "\(error)"])
                    }
                    failing = true
                    do { try await Task.sleep(for: .seconds(1)) } catch { return }
                    guard !stopping() else { return }
                }
            }
        }
        let waiter = Task.detached(executorPreference: Self.thread) { [startTimeout] in
            do {
                try await server.waitUntilListening(timeout: startTimeout)
                _ = latch.finish(.success(await server.listeningAddress?.port))
            } catch {
                _ = latch.finish(.failure(.startTimeout(address: address.description)))
            }
        }

        let outcome = latch.wait(seconds: startTimeout + 1)
            ?? .failure(.startTimeout(address: address.description))
        waiter.cancel()
        switch outcome {
        case .success(let port?):
            state.withLock {
                $0.running = Running(server: server, task: task, port: port)
                $0.starting = false
            }
            logger.info("metrics listening", metadata: ["listen": "\(address.with(port: port))"])
        case .success(nil), .failure:
            state.withLock { $0.starting = false; $0.stopping = true }
            Self.shutDown(server, task, timeout: stopTimeout)
            if case .failure(let error) = outcome { throw error }
            throw .startTimeout(address: address.description)
        }
    }

    /// Stops listening, lets requests in progress finish (briefly) and returns
    /// once the server has stopped, or after the stop timeout. Does nothing if
    /// the server is not running. Blocks the calling thread.
    @available(*, noasync, message: "blocks the calling thread; call it from a plain thread")
    public func stop() {
        let running = state.withLock { state -> Running? in
            let running = state.running
            state.running = nil
            if running != nil { state.stopping = true }
            return running
        }
        guard let running else { return }
        if Self.shutDown(running.server, running.task, timeout: stopTimeout) {
            logger.info("metrics stopped")
        } else {
            logger.warning("metrics server did not stop in time", metadata: ["timeout": "\(stopTimeout)"])
        }
    }

    /// How long requests in progress may take to finish once `stop()` closed
    /// the listening socket. FlyingFox waits this long in any case (its accept
    /// loop is not woken by the close, so the server task is canceled after
    /// the grace): keep it short, a scrape takes milliseconds.
    static let stopGraceSeconds = 0.2

    /// Where every metrics server's tasks run: off the cooperative pool.
    static let thread = ServerThread(name: "postern-metrics")

    /// Closes the listening socket, waits up to `timeout` seconds for the run
    /// task to end, and cancels it if it has not. True when it ended in time.
    @discardableResult
    private static func shutDown(_ server: HTTPServer, _ task: Task<Void, Never>, timeout: Double) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Task.detached(executorPreference: thread) {
            await server.stop(timeout: min(stopGraceSeconds, timeout))
            await task.value
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else {
            task.cancel()
            return false
        }
        return true
    }
}

/// Answers every request of the server: GET /metrics, 404 or 405.
struct MetricsHandler: HTTPHandler {
    let metrics: PosternMetrics

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.path == "/metrics" else {
            return HTTPResponse(statusCode: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: Data("not found; try /metrics\n".utf8))
        }
        guard request.method == .GET else {
            return HTTPResponse(statusCode: .methodNotAllowed,
                                headers: [.contentType: "text/plain; charset=utf-8", HTTPHeader("Allow"): "GET"],
                                body: Data("method not allowed\n".utf8))
        }
        return HTTPResponse(statusCode: .ok, headers: [.contentType: MetricsServer.contentType],
                            body: Data(metrics.exposition().utf8))
    }
}
