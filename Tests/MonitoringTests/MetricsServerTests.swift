import Logging
import Testing
@testable import Monitoring

/// `MetricsServer` on 127.0.0.1, port 0, spoken to over a raw TCP socket. All
/// blocking calls (`start`, `stop`, the socket) run on plain threads
/// (`onPlainThread`), as in the daemon; `start` and `stop` are `noasync`.
///
/// Generous timeouts (60 s, still bounded): the server's tasks run on Swift's
/// cooperative pool, one thread per core, and in the full suite synchronous
/// tests of other suites block those threads for seconds at a time. A wait
/// that ends early would then fail a test for another test's sake.
@Suite struct MetricsServerTests {
    static let logger = Logger(label: "postern.metrics.test")
    static let patience = 60

    static func server(host: String = "127.0.0.1", port: UInt16 = 0,
                       _ metrics: PosternMetrics = PosternMetrics()) -> MetricsServer {
        // The request timeout too: FlyingFox answers 500 when a handler's task
        // waited longer for the cooperative pool, which other suites keep busy.
        MetricsServer(host: host, port: port, metrics: metrics, logger: logger,
                      startTimeout: Double(patience), stopTimeout: Double(patience), requestTimeout: Double(patience))
    }

    /// A server on 127.0.0.1 with a kernel-chosen port, started, and its port.
    static func started(_ metrics: PosternMetrics) async throws -> (MetricsServer, UInt16) {
        let server = server(metrics)
        let port = try await onPlainThread { () throws -> UInt16 in
            try server.start()
            return server.boundPort ?? 0
        }
        #expect(port != 0)
        return (server, port)
    }

    /// Runs `body` with a started server and stops the server afterwards.
    static func withServer<T: Sendable>(_ metrics: PosternMetrics = PosternMetrics(),
                                        _ body: (MetricsServer, UInt16) async throws -> T) async throws -> T {
        let (server, port) = try await started(metrics)
        let result: Result<T, any Error>
        do { result = .success(try await body(server, port)) } catch { result = .failure(error) }
        try await onPlainThread { server.stop() }
        return try result.get()
    }

    /// What `start()` throws, or nil (and then the server is stopped again).
    static func startError(_ server: MetricsServer) async throws -> MetricsServerError? {
        try await onPlainThread { () -> MetricsServerError? in
            do {
                try server.start()
                server.stop()
                return nil
            } catch let error as MetricsServerError {
                return error
            }
        }
    }

    @Test func getMetricsServesTheExposition() async throws {
        let metrics = PosternMetrics()
        metrics.inotifyOverflow()
        metrics.setInFlight(2)
        try await Self.withServer(metrics) { _, port in
            let response = try await onPlainThread { try rawHTTP(timeoutSeconds: Self.patience, port: port, path: "/metrics") }
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            #expect(response.headers["content-length"] == String(response.body.utf8.count))
            let parsed = ParsedExposition(response.body)
            #expect(parsed.samples["postern_inotify_overflows_total"] == "1")
            #expect(parsed.samples["postern_deliveries_in_flight"] == "2.0")
            #expect(parsed.types["postern_queue_delivery_duration_seconds"] == "histogram")

            // A later event shows in the next scrape; a query string is ignored.
            metrics.inotifyOverflow()
            let again = try await onPlainThread { try rawHTTP(timeoutSeconds: Self.patience, port: port, path: "/metrics?x=1") }
            #expect(again.status == 200)
            #expect(ParsedExposition(again.body).samples["postern_inotify_overflows_total"] == "2")
        }
    }

    @Test func otherPathsAre404AndOtherMethods405() async throws {
        let (other, root, post) = try await Self.withServer { _, port in
            try await onPlainThread {
                (try rawHTTP(timeoutSeconds: Self.patience, port: port, path: "/other"),
                 try rawHTTP(timeoutSeconds: Self.patience, port: port, path: "/"),
                 try rawHTTP(timeoutSeconds: Self.patience, port: port, method: "POST", path: "/metrics"))
            }
        }
        #expect(other.status == 404)
        #expect(root.status == 404)
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET")
    }

    @Test func aBindFailureIsThrownByStart() async throws {
        try await Self.withServer { _, port in
            let second = Self.server(port: port)
            let error = try await Self.startError(second)
            guard case .listen(let address, let errno, _) = error else {
                Issue.record("expected a listen error, got \(String(describing: error))")
                return
            }
            #expect(address == "127.0.0.1:\(port)")
            #expect(errno == 98)   // EADDRINUSE
            #expect(second.boundPort == nil)
            // The first server still answers.
            let response = try await onPlainThread { try rawHTTP(timeoutSeconds: Self.patience, port: port, path: "/metrics") }
            #expect(response.status == 200)
        }
    }

    @Test func stopClosesTheSocketAndTheServerCanStartAgain() async throws {
        let (server, port) = try await Self.started(PosternMetrics())
        #expect(try await onPlainThread { canConnect(port: port) })
        try await onPlainThread { server.stop() }
        #expect(server.boundPort == nil)
        try await onPlainThread { server.stop() }   // a second stop does nothing
        // The listening socket is closed: another server binds the very same port.
        let successor = Self.server(port: port)
        let reused = try await onPlainThread { () throws -> UInt16? in
            try successor.start()
            defer { successor.stop() }
            return successor.boundPort
        }
        #expect(reused == port)

        let again = try await onPlainThread { () throws -> UInt16? in
            try server.start()
            return server.boundPort
        }
        #expect(again != nil)
        try await onPlainThread { server.stop() }
    }

    @Test func startTwiceIsRefused() async throws {
        try await Self.withServer { server, _ in
            let error = try await onPlainThread { () -> MetricsServerError? in
                do {
                    try server.start()
                    return nil
                } catch let error as MetricsServerError {
                    return error
                }
            }
            #expect(error == .alreadyStarted)
            #expect(server.boundPort != nil)
        }
    }

    @Test(arguments: ["example.org", "", "1.2.3", "::zz", "[127.0.0.1"])
    func aHostThatIsNotAnAddressIsRefused(host: String) async throws {
        let server = Self.server(host: host)
        #expect(try await Self.startError(server) == .invalidHost(host))
    }

    @Test func listenAddressesPrintAsInTheConfiguration() throws {
        #expect(try ListenAddress(host: "127.0.0.1", port: 9464).description == "127.0.0.1:9464")
        #expect(try ListenAddress(host: "[::1]", port: 9464).description == "[::1]:9464")
        #expect(try ListenAddress(host: "::", port: 9464).description == "[::]:9464")
        #expect(try ListenAddress(host: "localhost", port: 1).description == "127.0.0.1:1")
    }
}
