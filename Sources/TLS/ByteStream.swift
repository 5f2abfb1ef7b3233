import Glibc
import PosternCore

/// Why a read or write on a connection failed. All of these are temporary
/// failures for delivery: the next attempt may find a working network.
public enum StreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The deadline passed while waiting for the peer.
    case timeout
    /// The peer closed the connection (or it was closed under us).
    case closed
    /// A system call failed with this errno.
    case system(operation: String, code: Int32)
    /// The TLS layer failed.
    case tls(TLSError)

    public var description: String {
        switch self {
        case .timeout: "timed out"
        case .closed: "connection closed by peer"
        case .system(let operation, let code): "\(operation): \(POSIX.errorText(code))"
        case .tls(let error): error.description
        }
    }
}

/// A connected byte stream with deadlines: a plain socket, or TLS over one.
///
/// The SMTP client speaks to this and so does not care whether STARTTLS has
/// happened. Every call is bounded by a deadline; none blocks a thread past it.
public protocol ByteStream: AnyObject {
    /// Reads at most `buffer.count` bytes; returns 0 at end of stream.
    func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int
    /// Writes all of `bytes`.
    func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError)
    /// The socket underneath, for STARTTLS to take over.
    var fileDescriptor: Int32 { get }
}

extension ByteStream {
    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        var failure: StreamError?
        bytes.withUnsafeBytes { raw in
            do throws(StreamError) { try write(raw, deadline: deadline) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

/// Waits until `fd` is ready for `events` (`POLLIN` or `POLLOUT`) or the deadline passes.
func waitFor(_ fd: Int32, events: Int16, deadline: Deadline) throws(StreamError) {
    while true {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let timeout = deadline.pollTimeout
        let ready = poll(&entry, 1, timeout)
        if ready > 0 { return }
        if ready == 0 { throw .timeout }
        if errno != EINTR { throw .system(operation: "poll", code: errno) }
    }
}

/// A plain TCP (or Unix, or socketpair) connection, made non-blocking so that
/// every wait goes through `poll(2)` with a deadline.
public final class SocketStream: ByteStream {
    public let fileDescriptor: Int32

    /// Takes ownership of a socket: it is closed when this goes away, or at
    /// once if it cannot be made non-blocking.
    public init(fileDescriptor: Int32) throws(StreamError) {
        self.fileDescriptor = fileDescriptor
        let flags = fcntl(fileDescriptor, F_GETFL)
        guard flags >= 0, fcntl(fileDescriptor, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .system(operation: "fcntl", code: errno)
        }
    }

    deinit {
        close(fileDescriptor)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int {
        while true {
            do throws(SystemCallError) {
                return try POSIX.readSome(into: buffer) { recv(fileDescriptor, $0.baseAddress, $0.count, 0) }
            } catch where error.wouldBlock {
                try waitFor(fileDescriptor, events: Int16(POLLIN), deadline: deadline)
            } catch where error.code == ECONNRESET {
                throw .closed
            } catch {
                throw .system(operation: "recv", code: error.code)
            }
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError) {
        var rest = bytes
        while true {
            do throws(SystemCallError) {
                // MSG_NOSIGNAL: a peer that vanishes costs an error, not the process (SIGPIPE).
                try POSIX.writeAll(rest) { send(fileDescriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                return
            } catch where error.wouldBlock {
                // The socket's buffer is full: the rest once poll says it has room.
                rest = UnsafeRawBufferPointer(rebasing: rest[error.transferred...])
                try waitFor(fileDescriptor, events: Int16(POLLOUT), deadline: deadline)
            } catch where error.code == EPIPE || error.code == ECONNRESET {
                throw .closed
            } catch {
                throw .system(operation: "send", code: error.code)
            }
        }
    }
}
