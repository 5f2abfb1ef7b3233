import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import FlyingFox
import FlyingSocks
import Logging
import Synchronization

/// Why the metrics server did not start, or stopped on its own.
public enum MetricsServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host is not an IPv4 or IPv6 literal (nor `localhost`).
    case invalidHost(String)
    /// Creating, binding or listening on the socket failed: `errno` is the
    /// system's (`EADDRINUSE` 98, `EACCES` 13, `EADDRNOTAVAIL` 99 on Linux).
    case listen(address: String, errno: Int32?, message: String)
    /// The socket did not listen within the start timeout.
    case startTimeout(address: String)
    /// The server stopped while starting.
    case stopped(address: String)
    /// `start()` was called on a server that runs or is starting.
    case alreadyStarted

    init(_ error: any Error, address: ListenAddress) {
        switch error {
        case let error as MetricsServerError:
            self = error
        case SocketError.failed(let type, let errno, let message):
            self = .listen(address: address.description, errno: errno, message: "\(type): \(message)")
        default:
            self = .listen(address: address.description, errno: nil, message: "\(error)")
        }
    }

    public var description: String {
        switch self {
        case .invalidHost(let host):
            "metrics.listen: \(host) is not an IP address"
        case .listen(let address, _, let message):
            "metrics.listen: cannot listen on \(address): \(message)"
        case .startTimeout(let address):
            "metrics.listen: \(address) did not start listening in time"
        case .stopped(let address):
            "metrics.listen: the server on \(address) stopped while starting"
        case .alreadyStarted:
            "the metrics server is already running"
        }
    }
}

/// The address to listen on, as a FlyingSocks socket address. Only literals:
/// a name would need a resolver call on start-up, and a metrics endpoint
/// should bind where the operator says, not wherever a name points today.
struct ListenAddress: Sendable, CustomStringConvertible {
    let host: String
    let port: UInt16
    let socketAddress: any SocketAddress

    init(host: String, port: UInt16) throws(MetricsServerError) {
        var literal = host
        if literal.hasPrefix("["), literal.hasSuffix("]") {
            literal = String(literal.dropFirst().dropLast())
        }
        if literal == "localhost" { literal = "127.0.0.1" }
        do {
            if literal.contains(":") {
                socketAddress = try sockaddr_in6.inet6(ip6: literal, port: port)
            } else if !literal.isEmpty, literal.allSatisfy({ $0 == "." || $0.isASCII && $0.isNumber }) {
                socketAddress = try sockaddr_in.inet(ip4: literal, port: port)
            } else {
                throw MetricsServerError.invalidHost(host)
            }
        } catch {
            throw .invalidHost(host)
        }
        self.host = literal
        self.port = port
    }

    private init(host: String, port: UInt16, socketAddress: any SocketAddress) {
        self.host = host
        self.port = port
        self.socketAddress = socketAddress
    }

    /// The same host with another port (the kernel's choice for port 0), for logs.
    func with(port: UInt16) -> ListenAddress {
        ListenAddress(host: host, port: port, socketAddress: socketAddress)
    }

    var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

extension Socket.Address {
    var port: UInt16? {
        switch self {
        case .ip4(_, let port), .ip6(_, let port): port
        case .unix: nil
        }
    }
}

/// A one-shot result handed from the server's tasks to the thread blocked in
/// `start()`. The first `finish` wins; later ones (the other task, a failure
/// after start-up) return false and change nothing.
final class StartupLatch: Sendable {
    private let result = Mutex<Result<UInt16?, MetricsServerError>?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func finish(_ outcome: Result<UInt16?, MetricsServerError>) -> Bool {
        let first = result.withLock { result in
            guard result == nil else { return false }
            result = outcome
            return true
        }
        if first { semaphore.signal() }
        return first
    }

    /// The outcome, or nil when nothing finished within `seconds`.
    func wait(seconds: Double) -> Result<UInt16?, MetricsServerError>? {
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return result.withLock { $0 }
    }
}

/// FlyingFox's log lines, into the daemon's swift-log `Logger`, all at debug
/// or trace: FlyingFox logs each connection at info, a client's reset as an
/// error, and every normal stop as "critical: server error: Disconnected".
/// What matters to an operator (listening, a bind failure, a failure after
/// start-up) `MetricsServer` logs itself.
struct FlyingFoxLogger: FlyingSocks.Logging {
    let logger: Logger

    func logDebug(_ debug: @autoclosure () -> String) {
        logger.trace("\(debug())", metadata: ["component": "http"])
    }

    func logInfo(_ info: @autoclosure () -> String) {
        logger.trace("\(info())", metadata: ["component": "http"])
    }

    func logWarning(_ warning: @autoclosure () -> String) {
        logger.debug("\(warning())", metadata: ["component": "http"])
    }

    func logError(_ error: @autoclosure () -> String) {
        logger.debug("\(error())", metadata: ["component": "http"])
    }

    func logCritical(_ critical: @autoclosure () -> String) {
        logger.debug("\(critical())", metadata: ["component": "http"])
    }
}
